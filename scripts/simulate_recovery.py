"""Parameter recovery and simulation-based calibration of the system estimators on dask.

The program is models/cli/simulate_recovery.py (installed as `resilience-simulate-recovery`);
`--help` lists its options.
"""

from models.cli.simulate_recovery import main

if __name__ == "__main__":
    raise SystemExit(main())
