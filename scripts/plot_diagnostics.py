"""Draw ArviZ diagnostics of a posterior written by sample_posteriors.py.

    python scripts/plot_diagnostics.py --posterior post.nc --out-dir figures/ [--prefix system_]

Writes trace, rank, forest and energy plots of the coefficients (PNG, all together or none) and
prints the convergence report stored with the posterior. Bad input (an --out-dir that is a file or
cannot be written included, checked first) prints `error: ...` and exits with status 2; Ctrl-C
prints `interrupted: ...` and exits with status 130.
"""

from models.cli.plot_diagnostics import main

if __name__ == "__main__":
    raise SystemExit(main())
