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
`error: ...` on stderr, exit status 2, nothing written. The script is the Python API's
``QuadraticModel`` (models.api.quadratic; the modelling in models.spec.quadratic,
models.frequentist.quadratic and models.bayes.quadratic): it parses arguments and writes files.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from data_prep.files import check_output_paths
from models.cli.arguments import (add_sampler_arguments, add_tuning_arguments, priors_argument,
                        run_reporting_errors, write_outputs)

# the quadratic is the one-equation system model: its priors are models.bayes.system's
PRIOR_NAMES = ("structural_sigma", "beta_sigma", "intercept_sigma", "sd_sigma")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Quadratic (inverted-U) model of one outcome in A: OLS / spatial 2SLS with "
                    "turning point, Fieller interval and Lind-Mehlum test, or its Bayesian "
                    "posterior.")
    p.add_argument("--data", required=True, metavar="D.csv|D.nc",
                   help="one row per city (id column 'city') or a prepared dataset .nc")
    p.add_argument("--formula", required=True, metavar="FORMULA",
                   help='one equation, e.g. "ER ~ PSS + Gov + Fdi"; an intercept is included '
                        "unless '- 1'")
    p.add_argument("--quadratic", required=True, metavar="A",
                   help="the term of the formula that also enters squared (term A^2)")
    p.add_argument("--method", required=True, choices=("ols", "bayes"),
                   help="ols (spatial 2SLS with --spatial-lag) or bayes (posterior, nutpie)")
    p.add_argument("--weights", metavar="W.gal",
                   help="spatial weights (.gal/.gwt or polygon file; default: those stored in "
                        "the .nc)")
    p.add_argument("--spatial-lag", action="store_true",
                   help="add the spatial lag rho·W·y (a one-equation SAR); needs weights")
    p.add_argument("--island-policy", default="refuse", choices=("refuse", "nearest", "keep"),
                   help="cities without neighbours in a --weights file (default refuse)")
    p.add_argument("--id-column", default="city", help="id column of the data (default city)")
    add_sampler_arguments(p)
    add_tuning_arguments(p, PRIOR_NAMES)
    p.add_argument("--plots", metavar="DIR",
                   help="also write the fitted curve figure quadratic_<y>_<A>.png into DIR")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="coefficient CSV (ols) or InferenceData .nc (bayes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    # lazy: --help stays fast, and a Ctrl-C while importing is reported in one line
    from models.api.quadratic import QuadraticModel
    from models.bayes.sampling import check_sampler_settings

    priors = priors_argument(args.prior, PRIOR_NAMES)
    check_sampler_settings(args.target_accept, args.max_treedepth)

    out = Path(args.out)
    summary_path = out.parent / f"{out.stem}_summary.csv"
    check_output_paths(files=[("--out", out)] + ([("summary", summary_path)]
                                                 if args.method == "bayes" else []),
                       folders=[("--plots", Path(args.plots))] if args.plots else [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = QuadraticModel(args.formula, args.data, args.quadratic, args.weights or None,
                               spatial_lag=args.spatial_lag, id_column=args.id_column,
                               island_policy=args.island_policy)
    for message in dict.fromkeys(str(w.message) for w in caught
                                 if issubclass(w.category, UserWarning)):
        print(f"warning: {message}", file=sys.stderr)
    if args.weights and not model.uses_weights:
        print("note: --weights is not used: the model has no spatial lag (add --spatial-lag)")
    data = model.data
    figure = (Path(args.plots) / f"quadratic_{data.outcome}_{data.term}.png"
              if args.plots else None)

    if args.method == "ols":
        results = model.fit()
        frame = results.params
        fig = None
        if figure is not None:
            from models.study.quadratic_plot import quadratic_figure  # lazy: matplotlib

            fig = quadratic_figure(data, fit=results.fit)
        print(results.summary())
        write_outputs([(out, lambda tmp: frame.to_csv(tmp, index=False))],
                      [(figure, fig, 120)] if fig is not None else [])
        return 0

    from models.bayes.sampling import FULL  # lazy: PyMC only with --method bayes

    post = model.sample(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                        sampler=args.sampler, progress=not args.quiet, priors=priors,
                        target_accept=args.target_accept, max_treedepth=args.max_treedepth,
                        checks=FULL)
    idata, summary = post.idata, post.summary()
    fig = None
    if figure is not None:
        from models.study.quadratic_plot import quadratic_figure  # lazy: matplotlib

        fig = quadratic_figure(data, idata=idata)
    print(post.describe())
    write_outputs([(out, lambda tmp: idata.to_netcdf(tmp, engine="h5netcdf")),
                   (summary_path, lambda tmp: summary.to_csv(tmp, index=False))],
                  [(figure, fig, 120)] if fig is not None else [])
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
