"""Compare a posterior summary with frequentist estimates, coefficient by coefficient.

    python scripts/compare_estimates.py --frequentist coef.csv --posterior summary.csv \\
        --out compare.csv [--markdown compare.md]

coef.csv is written by fit_gs3sls.py, summary.csv by sample_posteriors.py (DESIGN.md
contract 2). The output adds, per (equation, term), the difference of the posterior mean from the
estimate and z = difference / sqrt(sd² + std_error²); |z| > 2 is flagged (models.compare).
Bad input prints `error: ...` and exits with status 2, writing nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from data_prep.errors import InputError  # noqa: E402


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read as CSV ({err})") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frequentist", type=Path, required=True, help="coefficient CSV (fit_gs3sls.py)")
    p.add_argument("--posterior", type=Path, required=True, help="summary.csv (sample_posteriors.py)")
    p.add_argument("--out", type=Path, required=True, help="comparison CSV to write")
    p.add_argument("--markdown", type=Path, help="also write the comparison as a Markdown table")
    args = p.parse_args(argv)
    from models.compare import compare_estimates
    from models.results import to_markdown, write_csv_atomic, write_text_atomic

    try:
        table = compare_estimates(_read(args.frequentist), _read(args.posterior))
        if not (table["in"] == "both").any():
            raise InputError(f"{args.frequentist} and {args.posterior} share no (equation, term)")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_csv_atomic(table, args.out)
    print(f"wrote {args.out}")
    if args.markdown:
        write_text_atomic(to_markdown(table.round(4)), args.markdown)
        print(f"wrote {args.markdown}")
    flagged = table[(table["in"] == "both") & ~table["agree"]]
    print(f"{int((table['in'] == 'both').sum())} coefficients compared; "
          f"{len(flagged)} differ by more than 2 combined standard deviations"
          + (": " + ", ".join(f"{e}:{t}" for e, t in zip(flagged["equation"], flagged["term"]))
             if len(flagged) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
