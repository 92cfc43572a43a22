"""sandrun: run Python recipes cell by cell in a sandbox."""

__version__ = "0.1.0"
