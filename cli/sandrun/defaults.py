"""Defaults that the command line shows in its help, kept apart so that `--help` imports nothing else."""

DEFAULT_CELL_TIMEOUT = 60.0
"""Seconds a cell may run unless the cell, the recipe or `--cell-timeout` says otherwise."""
