"""Sample the posterior of a spatial simultaneous equation system (full-information Bayesian fit).

Example:
    python scripts/sample_posteriors.py \\
        --equation "ER ~ PSS + W(ER) + W(PSS) + Gov + Fdi" \\
        --equation "PSS ~ ER + W(PSS) + W(ER) + Gov + Market" \\
        --data cities.csv --weights cities.gal --draws 1000 --tune 1000 --chains 4 --seed 1 \\
        --out post.nc

Writes an ArviZ InferenceData NetCDF (posterior ``coef`` with dims chain, draw, equation, term;
``Sigma``; ``rho`` with spatial errors; ``nu`` with --errors student-t; the impacts ``impact``; the PSIS-LOO result of the
leave-one-city-out conditional densities as a group ``loo`` (elpd_i, p_loo_i, pareto_k per city;
elpd_loo, se, p_loo in its attrs); the pointwise (chain, draw, city) ``log_likelihood`` group
only when chains x draws x cities <= 4e6 or with --keep-pointwise, so files stay small at large
n) and its summary beside it, named after it
(``post.nc`` -> ``post_summary.csv``; columns equation,term,mean,sd,hdi_low,hdi_high,r_hat,
ess_bulk; 94 % highest-density intervals).
The spectrum of W comes from the prepared .nc when it is stored there, else it is computed.
--panel: one row per (city, year); the Lee-Yu within transformation (models.bayes.panel_system)
removes city effects (and year effects, as T-1 Helmert contrast dummies year_contrast[k]); the
summary layout is unchanged, the impacts use the cross-section spectrum and LOO is skipped.
--predictive: a posterior_predictive group (one variable per dependent, dims chain, draw, city),
each chain thinned evenly to at most --predictive-draws draws (cross-section fits).
Bad input (including an output path that cannot be written, checked before any work): a
one-line `error: ...` on stderr, exit status 2, nothing written. Ctrl-C: one line
`interrupted: ...`, exit status 130, earlier outputs untouched; with --keep-partial the draws made
so far are written, marked partial (attrs ``partial = "true"``, ``draws_per_chain``). A fit that
does not converge is still written, with its diagnostics printed and stored in its attributes.
--target-accept, --max-treedepth and --prior NAME=SCALE (repeatable; the names of
models.bayes.system.DEFAULT_PRIORS) tune the sampler and the priors; the convergence messages name
the flag to change.
The modelling lives in models.spec.system and models.bayes; this script parses arguments and writes files.
"""

from models.cli.sample_posteriors import main

if __name__ == "__main__":
    raise SystemExit(main())
