"""Prepare the study dataset: indices, weights and spectrum in one NetCDF file.

The program is models/cli/prepare_data.py (installed as `resilience-prepare-data`);
`--help` lists its options.
"""

from models.cli.prepare_data import main

if __name__ == "__main__":
    raise SystemExit(main())
