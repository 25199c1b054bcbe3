"""Draw ArviZ diagnostics of a posterior written by sample_posteriors.py.

The program is models/cli/plot_diagnostics.py (installed as `resilience-plot-diagnostics`);
`--help` lists its options.
"""

from models.cli.plot_diagnostics import main

if __name__ == "__main__":
    raise SystemExit(main())
