"""Fit a (spatial) simultaneous equation system by GS3SLS, GS2SLS, 3SLS or 2SLS.

The program is models/cli/fit_gs3sls.py (installed as `resilience-fit-gs3sls`);
`--help` lists its options.
"""

from models.cli.fit_gs3sls import main

if __name__ == "__main__":
    raise SystemExit(main())
