"""Run the whole study and write results/ (docs/contracts.md contract 4).

    python scripts/run_all.py [--config FILE.toml] [--quick] [--out results] [--dry-run]

Without a config the embedded synthetic demo runs with ``models/study/configs/demo.toml``. Stages, in the
paper's order: data (indices, weights, spectrum → ``data.nc``); Table 1 and Moran's I (Figures
1–3) with maps; Tables 2–3 (the headline specification and the paper's, by GS3SLS, 3SLS and the
posterior, with the truth where the data are simulated) and the LOO comparisons; Tables 4–10
(robustness, regimes, quadratic, censored factor model); ``report.md`` and ``manifest.json``.
Before any estimation the data are loaded and the whole study is planned (every table, its
systems and their identification, ``models/study/plan.py``): every problem is listed at once,
each naming the config key to change, and nothing is written (exit 2). ``--dry-run`` prints
the plan and stops. The config keys are documented in ``models/study/config.py``. The script is
the Python API's ``run_study`` / ``plan_study`` (models.api.study); the modelling lives in
models/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.cli.arguments import run_reporting_errors



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path,
                        help="TOML file pointing at your data (default: the packaged demo config, the "
                             "embedded demo)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast look: 2 chains x 200 draws, Tables 4-10 frequentist only")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="output folder (default: results/); replaced only when the whole "
                             "study succeeded")
    parser.add_argument("--dry-run", action="store_true",
                        help="load the data, print the study plan (tables, fits, which are "
                             "skipped and why) and stop without writing anything")
    args = parser.parse_args(argv)
    return run_reporting_errors(_run, args, interrupted="nothing was written (the previous "
                                                        "results are untouched)")


def _run(args) -> int:
    from models.api.study import plan_study, run_study  # lazy: --help must answer without PyMC
    from models.study.run import say

    if args.dry_run:
        print(plan_study(args.config, args.quick).text())
        return 0
    written = run_study(args.config, args.out, args.quick)
    say(f"wrote {len(written)} files to {args.out}:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
