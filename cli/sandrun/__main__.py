"""`python -m sandrun`."""

from sandrun.app import main

main()
