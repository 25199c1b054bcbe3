"""Sample the posterior of a spatial simultaneous equation system (full-information Bayesian fit).

Example:
    python scripts/sample_posteriors.py \\
        --equation "ER ~ PSS + W(ER) + W(PSS) + Gov + Fdi" \\
        --equation "PSS ~ ER + W(PSS) + W(ER) + Gov + Market" \\
        --data cities.csv --weights cities.gal --draws 1000 --tune 1000 --chains 4 --seed 1 \\
        --out post.nc

Writes an ArviZ InferenceData NetCDF in the layout of models.bayes.idata (posterior ``coef`` with
dims chain, draw, coefficient: one entry per present (equation, term) pair, labelled "ER: W(PSS)",
coordinates coef_equation and coef_term; ``Sigma``; ``rho`` over the equations with a spatial
error; ``nu`` with --errors student-t; the impacts ``impact``; the sampling-scale variables in
the group ``unconstrained_posterior``; the PSIS-LOO result of the
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
The script is the Python API's ``SpatialSystem(...).sample(...)`` (models.api.system), whose
complete fit is models.bayes.fit.fit_posterior (spectrum, model, draws, impacts, LOO); it only
parses arguments and writes files.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from data_prep.errors import InputError
from models.cli.arguments import (EXIT_INTERRUPTED, FORMULA_HELP, add_sampler_arguments,
                        add_system_arguments, add_tuning_arguments, priors_argument,
                        run_reporting_errors)

# the prior settings of models.bayes.system.DEFAULT_PRIORS (not imported: --help stays fast)
# the system model's DEFAULT_PRIORS, then STUDENT_T_PRIORS (only with --errors student-t)
PRIOR_NAMES = ("structural_sigma", "beta_sigma", "intercept_sigma", "sd_sigma", "lkj_eta",
               "nu_shape", "nu_rate")

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Bayesian full-information fit of a spatial simultaneous equation system "
                    "(PyMC model, nutpie NUTS sampler); writes InferenceData and its summary "
                    "<out stem>_summary.csv.",
        epilog=FORMULA_HELP)
    add_system_arguments(p, "extra excluded instruments (comma-separated column names); the "
                            "full-information likelihood does not need them, they are only checked")
    add_sampler_arguments(p)
    add_tuning_arguments(p, PRIOR_NAMES)
    p.add_argument("--no-effects", action="store_true",
                   help="skip the direct/indirect/total impacts and the LOO densities")
    p.add_argument("--keep-pointwise", action="store_true",
                   help="also store the pointwise leave-one-city-out densities (group "
                        "log_likelihood, chains x draws x cities values); by default only "
                        "fits with at most 4e6 such values keep them, larger ones store the "
                        "per-city LOO result alone")
    p.add_argument("--panel", action="store_true",
                   help="panel mode: the data have one row per (city, year); city fixed effects "
                        "(and year effects) are removed by the Lee-Yu orthonormal within "
                        "transformation, so any intercept is dropped")
    p.add_argument("--year-column", default="year",
                   help="year column of panel data (default year)")
    p.add_argument("--no-year-effects", action="store_true",
                   help="panel mode without year effects (default: year effects as T-1 "
                        "Helmert contrast dummies, terms year_contrast[k])")
    p.add_argument("--predictive", action="store_true",
                   help="add a posterior_predictive group (one replicate per draw, each chain "
                        "thinned evenly to at most --predictive-draws draws in all); "
                        "cross-section only")
    p.add_argument("--predictive-draws", type=int, default=500, metavar="N",
                   help="most posterior draws used for --predictive (default 500)")
    p.add_argument("--errors", choices=("normal", "student-t"), default="normal",
                   help="error law of each city's error vector: normal (default) or "
                        "multivariate Student-t with degrees of freedom nu ~ Gamma(2, 0.1) "
                        "(summary row errors,nu; LOO by the scale-mixture route); in panel "
                        "mode one scale per city for all its years")
    p.add_argument("--out", required=True, metavar="post.nc", help="InferenceData file to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--keep-partial", action="store_true",
                   help="on Ctrl-C during sampling, write the draws made so far (every chain "
                        "cut to the shortest), marked partial in the file's attributes")
    return p


def summary_path(out) -> Path:
    """The summary CSV beside the InferenceData file, named after it: post.nc → post_summary.csv."""
    out = Path(out)
    return out.with_name(f"{out.stem}_summary.csv")


def _validate_counts(args) -> None:
    for name in ("draws", "tune", "chains", "predictive_draws"):
        value = getattr(args, name)
        if value < (0 if name == "tune" else 1):
            raise InputError(f"--{name.replace('_', '-')} must be a positive integer, "
                             f"not {value}")


class _Warnings:
    """The run's warnings as one ``warning: ...`` line each on stderr (UserWarnings, once each,
    PyTensor's BLAS notice left out), printed when :meth:`flush` is called: before sampling
    starts and after the post-processing."""

    def __init__(self, caught: list) -> None:
        self.caught = caught
        self.shown: set[str] = set()

    def flush(self) -> None:
        for w in self.caught:
            message = str(w.message)
            if (issubclass(w.category, UserWarning) and "BLAS" not in message
                    and message not in self.shown):
                print(f"warning: {message}", file=sys.stderr)
                self.shown.add(message)


def run(args: argparse.Namespace) -> int:
    _validate_counts(args)
    # lazy: --help stays fast, and a Ctrl-C while importing is reported in one line
    import pandas as pd

    # lazy: fast --help, and a one-line Ctrl-C while PyMC loads
    from data_prep.files import check_output_paths, write_together
    from models.api.system import SpatialSystem  # lazy: as above
    from models.bayes.fit import posterior_summary  # lazy: as above
    from models.bayes.sampling import FULL, SamplingInterrupted, check_sampler_settings

    priors = priors_argument(args.prior, PRIOR_NAMES)
    check_sampler_settings(args.target_accept, args.max_treedepth)
    out = Path(args.out)
    summary_file = summary_path(out)
    check_output_paths(files=[("--out", out), ("summary", summary_file)])

    def started() -> None:
        shown.flush()
        print(f"sampling: {args.chains} chains x {args.draws} draws after {args.tune} tuning "
              f"steps ({args.sampler}); Ctrl-C stops", flush=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shown = _Warnings(caught)
        model = SpatialSystem(args.equation, args.data, args.weights or None,
                              instruments=args.instruments, spatial_errors=args.spatial_errors,
                              id_column=args.id_column, island_policy=args.island_policy,
                              panel=args.panel, year_column=args.year_column,
                              year_effects=not args.no_year_effects)
        try:
            post = model.sample(draws=args.draws, tune=args.tune, chains=args.chains,
                                seed=args.seed, sampler=args.sampler, progress=not args.quiet,
                                started=started, target_accept=args.target_accept,
                                max_treedepth=args.max_treedepth, priors=priors,
                                errors=args.errors, effects=not args.no_effects,
                                keep_pointwise=True if args.keep_pointwise else None,
                                predictive=args.predictive,
                                predictive_draws=args.predictive_draws, checks=FULL)
        except SamplingInterrupted as stop:
            shown.flush()
            if not args.keep_partial:
                raise
            return _write_partial(stop, args, out, summary_file)
        for message in post.messages:
            print(f"note: {message}")
        shown.flush()
    idata = post.idata
    summary = posterior_summary(idata)
    write_together([(out, lambda tmp: idata.to_netcdf(tmp, engine="h5netcdf")),
                    (summary_file, lambda tmp: summary.to_csv(tmp, index=False))])
    print(f"wrote {out}")
    print(f"wrote {summary_file}")
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _write_partial(stop, args, out: Path, summary_file: Path) -> int:
    """--keep-partial after Ctrl-C: the draws made so far, marked partial (no impacts, no LOO)."""
    # lazy: the sampler's modules are loaded by run() already; --help stays fast
    from data_prep.files import write_together
    from models.bayes.fit import posterior_summary

    done = ", ".join(str(d) for d in stop.draws_per_chain)
    if stop.idata is None:
        print(f"interrupted: no chain completed a draw after tuning (draws per chain: {done}); "
              f"nothing written, earlier outputs left as they were", file=sys.stderr)
        return EXIT_INTERRUPTED
    idata = stop.idata
    kept = int(idata.posterior.sizes["draw"])
    attrs = {"partial": "true", "draws_per_chain": json.dumps(stop.draws_per_chain),
             "draws_requested": int(args.draws), "draws_kept_per_chain": kept,
             "equations": json.dumps(list(args.equation)), "seed": int(args.seed),
             "sampler": args.sampler}
    idata.attrs.update(attrs)
    idata.posterior.attrs.update(attrs)
    summary = posterior_summary(idata)
    write_together([(out, lambda tmp: idata.to_netcdf(tmp, engine="h5netcdf")),
                    (summary_file, lambda tmp: summary.to_csv(tmp, index=False))])
    print(f"interrupted: PARTIAL posterior written to {out} and {summary_file}: {kept} of "
          f"{args.draws} draws per chain kept (completed per chain: {done}); marked "
          f"partial=\"true\" in its attributes", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
