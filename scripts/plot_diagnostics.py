"""Draw ArviZ diagnostics of a posterior written by sample_posteriors.py.

    python scripts/plot_diagnostics.py --posterior post.nc --out-dir figures/ [--prefix system_]

Writes trace, rank, forest and energy plots of the coefficients (PNG) and prints the convergence
report stored with the posterior. Bad input prints `error: ...` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from data_prep.errors import InputError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posterior", type=Path, required=True, help="InferenceData NetCDF (post.nc)")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for the PNG files")
    p.add_argument("--prefix", default="", help="file-name prefix of the figures")
    args = p.parse_args(argv)
    import arviz as az

    from models.bayes.diagnostics_plots import diagnostic_figures

    try:
        if not args.posterior.is_file():
            raise InputError(f"{args.posterior}: file not found")
        try:
            idata = az.from_netcdf(args.posterior)
        except (OSError, ValueError) as err:
            raise InputError(f"{args.posterior}: not an InferenceData NetCDF ({err})") from None
        if "posterior" not in idata.groups():
            raise InputError(f"{args.posterior}: no posterior group")
        written = diagnostic_figures(idata, args.out_dir, args.prefix)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stored = (idata.posterior.attrs.get("convergence_report")
              or getattr(idata, "attrs", {}).get("convergence_report", "[]"))
    for line in json.loads(stored):
        print(line)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
