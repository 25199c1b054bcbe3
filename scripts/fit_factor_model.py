"""Fit the censored factor model (paper's §5, Table 10): Tobit by ML or a hierarchical Bayesian model.

The program is models/cli/fit_factor_model.py (installed as `resilience-fit-factor-model`);
`--help` lists its options.
"""

from models.cli.fit_factor_model import main

if __name__ == "__main__":
    raise SystemExit(main())
