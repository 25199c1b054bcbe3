"""Draw ArviZ diagnostics of a posterior written by sample_posteriors.py.

    python scripts/plot_diagnostics.py --posterior post.nc --out-dir figures/ [--prefix system_]

Writes trace, rank, forest and energy plots of the coefficients (PNG, all together or none) and
prints the convergence report stored with the posterior. Bad input (an --out-dir that is a file or
cannot be written included, checked first) prints `error: ...` and exits with status 2; Ctrl-C
prints `interrupted: ...` and exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data_prep.errors import InputError
from data_prep.files import check_output_paths
from models.cli.arguments import run_reporting_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posterior", type=Path, required=True, help="InferenceData NetCDF (post.nc)")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for the PNG files")
    p.add_argument("--prefix", default="", help="file-name prefix of the figures")
    return p


def run(args: argparse.Namespace) -> int:
    check_output_paths(folders=[("--out-dir", args.out_dir)])
    if not args.posterior.is_file():
        raise InputError(f"--posterior {args.posterior}: file not found")
    import arviz as az

    # lazy: fast --help, and a one-line Ctrl-C while ArviZ and matplotlib load
    from models.bayes.diagnostics_plots import diagnostic_figures

    try:
        idata = az.from_netcdf(args.posterior)
    except (OSError, ValueError) as err:
        raise InputError(f"--posterior {args.posterior}: not an InferenceData NetCDF "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
                         ) from None
    if "posterior" not in idata.groups():
        raise InputError(f"--posterior {args.posterior}: no posterior group")
    written = diagnostic_figures(idata, args.out_dir, args.prefix)
    stored = (idata.posterior.attrs.get("convergence_report")
              or getattr(idata, "attrs", {}).get("convergence_report", "[]"))
    for line in json.loads(stored):
        print(line)
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
