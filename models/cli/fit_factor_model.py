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
The script is the Python API's ``CensoredFactorModel`` (models.api.censored; the modelling in
models.spec.factor, models.frequentist.tobit and models.bayes.censored): it parses arguments and
writes files.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from data_prep.errors import InputError
from data_prep.files import check_output_paths
from models.cli.arguments import (add_sampler_arguments, add_tuning_arguments, priors_argument,
                                  run_reporting_errors, write_outputs)

# models.bayes.censored.DEFAULT_PRIORS (standardised scale; not imported: --help stays fast)
PRIOR_NAMES = ("intercept_sd", "phi_sd", "group_sd", "city_sd", "year_sd", "sigma_sd")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Censored (Tobit) factor model: maximum likelihood or a hierarchical "
                    "Bayesian model with group-specific slopes (PyMC, nutpie).")
    p.add_argument("--data", required=True, metavar="D.csv|D.nc",
                   help="one row per (city, year), or a prepared dataset .nc")
    p.add_argument("--formula", required=True, metavar='"y ~ x1 + x2"',
                   help="outcome ~ regressors (plain column names; intercept always included)")
    p.add_argument("--lower", type=float, metavar="L", help="lower censoring bound")
    p.add_argument("--upper", type=float, metavar="U", help="upper censoring bound")
    p.add_argument("--method", required=True, choices=("tobit", "bayes"))
    p.add_argument("--group", metavar="COL",
                   help="city attribute whose groups get their own slopes (tobit: a separate "
                        "fit per group; bayes: slopes partially pooled toward the overall ones)")
    p.add_argument("--effects", default="", metavar="city,year",
                   help="city and/or year effects (tobit: dummies, with the incidental-parameter "
                        "caveat for cities; bayes: hierarchical city, fixed year effects)")
    p.add_argument("--mundlak", action="store_true",
                   help="add the city means of the within-city varying factors as regressors "
                        "mean(x) (correlated random effects); needs the id column")
    p.add_argument("--id-column", default="city",
                   help="city id column (default city); needed only with --effects city, "
                        "--group or --mundlak")
    p.add_argument("--year-column", default="year", help="year column (default year)")
    add_sampler_arguments(p)
    add_tuning_arguments(p, PRIOR_NAMES, target_accept=0.9)
    p.add_argument("--group-parametrisation", default="non-centred",
                   choices=("non-centred", "centred"),
                   help="bayes: group slopes phi + s*z_g (non-centred, default; small groups) or "
                        "sampled directly (centred; every group with many cities)")
    p.add_argument("--group-scale", default="shared", choices=("shared", "per-factor"),
                   help="bayes: one pooling scale for all factors (default; on the standardised "
                        "scale, better identified with few groups) or one per factor")
    p.add_argument("--city-parametrisation", default="auto",
                   choices=("auto", "centred", "non-centred"),
                   help="bayes: city effects; auto (default) is centred when cities differ much "
                        "more than years within a city")
    p.add_argument("--plots", metavar="DIR",
                   help="bayes: write the posterior predictive check DIR/<stem>_ppc.png")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="coefficient CSV (tobit) or InferenceData .nc (bayes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _validate_counts(args) -> None:
    for name in ("draws", "tune", "chains"):
        value = getattr(args, name)
        if value < (0 if name == "tune" else 1):
            raise InputError(f"--{name} must be a positive integer, not {value}")


def _print_warnings(caught) -> None:
    for message in dict.fromkeys(str(w.message) for w in caught
                                 if issubclass(w.category, UserWarning)
                                 and "BLAS" not in str(w.message)):
        print(f"warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    # lazy: --help stays fast, and a Ctrl-C while importing is reported in one line
    import pandas as pd

    from models.api.censored import CensoredFactorModel  # lazy: PyMC only past --help

    out = Path(args.out)
    bayes_files = [("summary", out.parent / f"{out.stem}_summary.csv")] + (
        [("contrasts", out.parent / f"{out.stem}_contrasts.csv")] if args.group else [])
    check_output_paths(files=[("--out", out)] + (bayes_files if args.method == "bayes" else []),
                       folders=[("--plots", Path(args.plots))] if args.plots else [])
    _validate_counts(args)
    priors = priors_argument(args.prior, PRIOR_NAMES)
    model = CensoredFactorModel(args.formula, args.data, lower=args.lower, upper=args.upper,
                                group=args.group, effects=args.effects, mundlak=args.mundlak,
                                id_column=args.id_column, year_column=args.year_column)
    if args.method == "tobit":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = model.fit()
        table = results.params
        _print_warnings(caught)
        if args.plots:
            print("note: --plots draws the posterior predictive check of --method bayes only")
        print(results.summary())
        write_outputs([(out, lambda tmp: table.to_csv(tmp, index=False))])
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return 0

    from models.bayes.censored_plots import plot_censored_ppc  # lazy: matplotlib
    from models.bayes.sampling import FULL

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = model.sample(draws=args.draws, tune=args.tune, chains=args.chains,
                            seed=args.seed, sampler=args.sampler, progress=not args.quiet,
                            priors=priors, city_parametrisation=args.city_parametrisation,
                            group_parametrisation=args.group_parametrisation,
                            group_scale=args.group_scale, target_accept=args.target_accept,
                            max_treedepth=args.max_treedepth, checks=FULL)
        summary = post.summary()
        contrasts = post.contrasts() if model.data.groups else None
    _print_warnings(caught)
    idata = post.idata
    figure = None
    if args.plots:
        figure = (Path(args.plots) / f"{out.stem}_ppc.png",
                  plot_censored_ppc(post.predictive(seed=args.seed), model.data))
    outputs = [(out, lambda tmp: idata.to_netcdf(tmp, engine="h5netcdf")),
               (out.parent / f"{out.stem}_summary.csv",
                lambda tmp: summary.to_csv(tmp, index=False))]
    if contrasts is not None:
        outputs.append((out.parent / f"{out.stem}_contrasts.csv",
                        lambda tmp: contrasts.to_csv(tmp, index=False)))
    write_outputs(outputs, [(figure[0], figure[1], 120)] if figure is not None else [])
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
