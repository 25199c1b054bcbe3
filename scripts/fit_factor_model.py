"""Fit the censored factor model (paper's §5, Table 10): Tobit by ML or a hierarchical Bayesian model.

Example:
    python scripts/fit_factor_model.py --data panel.csv \\
        --formula "Interact_PSS ~ LnHsh + LnFdi + LnMar + Tra + Den + LnCin + LnTec + LnPro" \\
        --lower 0 --upper 1 --method bayes --group tier --effects city,year --out post.nc

--data: one row per (city, year) (columns --id-column, --year-column) or a prepared .nc (its
panel table); the id column is needed only with --effects city, --group or --mundlak, otherwise
each row is a unit (a plain cross-section). --mundlak adds the city means of the factors that
vary within cities as regressors mean(x) (Mundlak's correlated random effects: with --method
bayes and --effects city the random city effects may then correlate with the factors; refused
with the Tobit's city dummies, which absorb the means). --method tobit writes the coefficient CSV (equation,term,estimate,std_error,
statistic,p_value; the scale as term sigma; fixed effects as dummies, not listed; with --group
one separate Tobit per group, terms x1[g]). --method bayes writes InferenceData to --out and
<stem>_summary.csv beside it (equation,term,mean,sd,hdi_low,hdi_high,r_hat,ess_bulk; 94 % HDIs;
overall slopes x1, group slopes x1[g], sigma), with --group also <stem>_contrasts.csv (every
group against the last), and with --plots DIR the posterior predictive check
DIR/<stem>_ppc.png. Bad input: one `error:` line, exit status 2, nothing written.
The modelling lives in models.spec.factor, models.frequentist.tobit and models.bayes.censored.
"""

from models.cli.fit_factor_model import main

if __name__ == "__main__":
    raise SystemExit(main())
