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
`rho` per such equation (docs/contracts.md contract 9). Bad input (an output path that cannot be written included, checked before
any work): a one-line `error: ...` on stderr, exit status 2, nothing written; Ctrl-C: one line
`interrupted: ...`, exit status 130, nothing written. The modelling lives in
models.spec.system and models.frequentist; this script only parses arguments and writes files.
"""

from models.cli.fit_gs3sls import main

if __name__ == "__main__":
    raise SystemExit(main())
