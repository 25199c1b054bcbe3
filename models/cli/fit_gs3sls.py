"""Fit a (spatial) simultaneous equation system by GS3SLS, GS2SLS, 3SLS or 2SLS.

Example:
    python scripts/fit_gs3sls.py \\
        --equation "ER ~ PSS + W(ER) + W(PSS) + Gov + log(PGDP)" \\
        --equation "PSS ~ ER + W(PSS) + W(ER) + Gov + Fdi" \\
        --data cities.csv --weights cities.gal --method gs3sls --out coef.csv --table table3

Writes the coefficient CSV (columns equation,term,estimate,std_error,statistic,p_value) and,
with --table PREFIX, the paper-style table as PREFIX.csv, PREFIX.md and PREFIX.tex, all written
together or not at all. --cov clustered --cluster COL reports standard errors clustered by the
data column COL (the cluster-robust sandwich; the default --cov unadjusted treats the rows as
independent). --heteroskedastic estimates each spatial-error rho by the
heteroskedasticity-robust GM (Arraiz, Drukker, Kelejian & Prucha 2010) and reports
heteroskedasticity-robust standard errors; with spatial errors the CSV then has a row with term
`rho` per such equation (docs/contracts.md contract 9). Bad input (an output path that cannot
be written included, checked before any work): a one-line `error: ...` on stderr, exit status 2, nothing written; Ctrl-C: one line
`interrupted: ...`, exit status 130, nothing written. The script is the Python API's
``SpatialSystem(...).fit(...)`` (models.api.system; the modelling in models.spec.system and
models.frequentist): it only parses arguments and writes files.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from data_prep.errors import InputError
from models.cli.arguments import FORMULA_HELP, add_system_arguments, run_reporting_errors

METHOD_CHOICES = ("gs3sls", "gs2sls", "3sls", "2sls")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Estimate a spatial simultaneous equation system (Kelejian-Prucha GS3SLS "
                    "and relatives) and write its coefficient table.", epilog=FORMULA_HELP)
    add_system_arguments(p)
    p.add_argument("--method", default="gs3sls", choices=METHOD_CHOICES,
                   help="estimator (default gs3sls)")
    p.add_argument("--cov", default="unadjusted", choices=("unadjusted", "clustered"),
                   help="standard errors: unadjusted (default) or clustered by --cluster")
    p.add_argument("--cluster", metavar="COL",
                   help="data column holding the cluster of each row (with --cov clustered)")
    p.add_argument("--heteroskedastic", action="store_true",
                   help="heteroskedasticity-robust GM for rho and robust standard errors; the "
                        "CSV gains a 'rho' row per spatial-error equation")
    p.add_argument("--out", required=True, metavar="coef.csv", help="coefficient CSV to write")
    p.add_argument("--table", metavar="PREFIX",
                   help="also write the paper-style table as PREFIX.csv, PREFIX.md, PREFIX.tex")
    return p


def _table_path(prefix: str, suffix: str) -> str:
    return prefix[: -len(suffix)] + suffix if prefix.endswith(suffix) else prefix + suffix


def output_paths(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(option, path) of every file this run writes: --out, then the three table files."""
    paths = [("--out", args.out)]
    if args.table:
        paths += [("--table", _table_path(args.table, s)) for s in (".csv", ".md", ".tex")]
    return paths


def _check_cov(args: argparse.Namespace) -> None:
    """--cov clustered goes with --cluster COL, and excludes --heteroskedastic."""
    if (args.cov == "clustered") != bool(args.cluster):
        raise InputError("--cov clustered and --cluster COL go together")
    if args.heteroskedastic and args.cov == "clustered":
        raise InputError("--heteroskedastic and --cov clustered exclude each other: the "
                         "clustered sandwich is already robust to heteroskedasticity")


def run(args: argparse.Namespace) -> int:
    # lazy: --help stays fast, and a Ctrl-C while importing is reported in one line
    from data_prep.files import check_output_paths, write_together
    from models.api.system import SpatialSystem
    from models.spec.coefficient_tables import FREQUENTIST_NOTE, to_latex, to_markdown

    paths = output_paths(args)
    check_output_paths(files=paths)
    _check_cov(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SpatialSystem(args.equation, args.data, args.weights or None,
                              instruments=args.instruments, spatial_errors=args.spatial_errors,
                              id_column=args.id_column, island_policy=args.island_policy,
                              panel=False)
        results = model.fit(args.method, cov="robust" if args.heteroskedastic else args.cov,
                            clusters=args.cluster or None)
        frame = results.params
        outputs = [lambda tmp: frame.to_csv(tmp, index=False)]
        if args.table:
            table = results.table()
            md = to_markdown(table, note=FREQUENTIST_NOTE)
            tex = to_latex(table, note=FREQUENTIST_NOTE)
            outputs += [lambda tmp: table.to_csv(tmp, index=False),
                        lambda tmp: Path(tmp).write_text(md, encoding="utf-8"),
                        lambda tmp: Path(tmp).write_text(tex, encoding="utf-8")]

    known = set(results.warnings)
    for message in dict.fromkeys(str(w.message) for w in caught):
        if message not in known:
            print(f"warning: {message}", file=sys.stderr)
    write_together([(path, write) for (_, path), write in zip(paths, outputs)])
    print(results.summary())  # printed after writing: a closed pipe (| head) loses no file
    for _, path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
