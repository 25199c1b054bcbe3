"""Sample the posterior of a spatial simultaneous equation system (full-information Bayesian fit).

The program is models/cli/sample_posteriors.py (installed as `resilience-sample-posteriors`);
`--help` lists its options.
"""

from models.cli.sample_posteriors import main

if __name__ == "__main__":
    raise SystemExit(main())
