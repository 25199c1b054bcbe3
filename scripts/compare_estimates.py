"""Compare a posterior summary with frequentist estimates, coefficient by coefficient.

The program is models/cli/compare_estimates.py (installed as `resilience-compare-estimates`);
`--help` lists its options.
"""

from models.cli.compare_estimates import main

if __name__ == "__main__":
    raise SystemExit(main())
