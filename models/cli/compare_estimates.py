"""Compare a posterior summary with frequentist estimates, coefficient by coefficient.

    python scripts/compare_estimates.py --frequentist coef.csv --posterior post_summary.csv \\
        --out compare.csv [--markdown compare.md]

coef.csv is written by fit_gs3sls.py, post_summary.csv by sample_posteriors.py (docs/contracts.md
contract 2). The output adds, per (equation, term), the difference of the posterior mean from the
estimate, that difference in GS3SLS standard errors (gap_se) and in posterior sds (gap_sd), and
within_1se = |gap_se| <= 1; coefficients beyond one standard error are listed (models.study.compare
says why the GS3SLS standard error is the scale).
Tables of different systems (their equations differ) are refused; terms found in one table only
are warned about. Bad input prints `error: ...` naming the file at fault and exits with status 2,
writing nothing; the CSV and the Markdown table are written together or not at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.errors import InputError
from data_prep.files import check_output_paths, write_together
from models.cli.arguments import run_reporting_errors


def _read(path: Path, validate, option: str):
    """The table at ``path`` checked by ``validate``; errors name the option and the file."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{option} {path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{option} {path}: is a folder, not a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{option} {path}: cannot read as CSV "
                         f"({str(err).splitlines()[0]})") from None
    try:
        return validate(frame)
    except InputError as err:
        raise InputError(f"{option} {path}: {err}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frequentist", type=Path, required=True, help="coefficient CSV (fit_gs3sls.py)")
    p.add_argument("--posterior", type=Path, required=True,
                   help="posterior summary CSV, <name>_summary.csv (sample_posteriors.py)")
    p.add_argument("--out", type=Path, required=True, help="comparison CSV to write")
    p.add_argument("--markdown", type=Path, help="also write the comparison as a Markdown table")
    return p


def run(args: argparse.Namespace) -> int:
    outputs = [("--out", args.out)] + ([("--markdown", args.markdown)] if args.markdown else [])
    check_output_paths(files=outputs)

    # lazy: fast --help, and a one-line Ctrl-C while numpy, pandas and the models load
    from models.study.compare import compare_estimates, match_report, outside_one_se
    from models.spec.coefficient_tables import coefficient_frame, posterior_frame, to_markdown

    freq = _read(args.frequentist, coefficient_frame, "--frequentist")
    post = _read(args.posterior, posterior_frame, "--posterior")
    warning = match_report(freq, post, str(args.frequentist), str(args.posterior))
    table = compare_estimates(freq, post)
    writers = [lambda tmp: table.to_csv(tmp, index=False)]
    if args.markdown:
        md = to_markdown(table.round(4))
        writers.append(lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))
    write_together([(path, write) for (_, path), write in zip(outputs, writers)])
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    for _, path in outputs:
        print(f"wrote {path}")
    flagged = outside_one_se(table)
    print(f"{int((table['in'] == 'both').sum())} coefficients compared; "
          f"{len(flagged)} differ by more than one GS3SLS standard error"
          + (": " + ", ".join(f"{e}:{t}" for e, t in zip(flagged["equation"], flagged["term"]))
             if len(flagged) else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
