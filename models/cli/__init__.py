"""The command-line programs (installed commands and scripts/*.py): argument parsing and file writing over the Python API."""
