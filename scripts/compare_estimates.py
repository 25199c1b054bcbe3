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

from models.cli.compare_estimates import main

if __name__ == "__main__":
    raise SystemExit(main())
