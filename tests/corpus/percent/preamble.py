"""A module docstring before the first marker."""

import os
import sys

# %% First marked cell
print(os.sep, sys.version_info[0])
