"""Fit the quadratic model y = c0 + c1·A + c2·A² + X·β (+ ρ·W·y) + ε (paper's Table 9).

Example:
    python scripts/fit_quadratic.py --data cities.csv --formula "ER ~ PSS + Gov + Fdi" \\
        --quadratic PSS --method ols --out quad.csv
    python scripts/fit_quadratic.py --data cities.csv --formula "ER ~ PSS + Gov + Fdi" \\
        --quadratic PSS --method bayes --weights cities.gal --spatial-lag \\
        --draws 1000 --tune 1000 --chains 4 --seed 1 --out quad.nc --plots figures

The square enters as term "A^2". --method ols writes the coefficient CSV (columns
equation,term,estimate,std_error,statistic,p_value,ci_low,ci_high) with a row turning_point
(-c1/(2c2), delta-method std_error, Fieller 95 % ci_low/ci_high, empty when the set is
unbounded) and a row lind_mehlum (statistic, one-sided p_value); with --spatial-lag the
estimator is the spatial 2SLS. --method bayes writes InferenceData to --out and its summary to
<stem>_summary.csv beside it (columns equation,term,mean,sd,hdi_low,hdi_high,r_hat,ess_bulk) with
rows turning_point and p_inverted_u (mean = posterior P(c1 > 0, c2 < 0), the slope signs at
A = 0), then p_inverted_u_range (P(slope > 0 at min A and < 0 at max A), the inverted U on the
observed range) and p_turning_point_in_range (P(min A < turning point < max A)). --plots DIR
adds the fitted curve with its band, the observed range, the turning point and a data rug.
bayes: --target-accept, --max-treedepth and --prior NAME=SCALE (repeatable; beta_sigma replaces
the slopes' VIF-based scale) tune the sampler and the priors. Bad input: a one-line
`error: ...` on stderr, exit status 2, nothing written. The modelling lives in models.spec.quadratic,
models.frequentist.quadratic and models.bayes.quadratic; this script parses arguments and
writes files.
"""

from models.cli.fit_quadratic import main

if __name__ == "__main__":
    raise SystemExit(main())
