"""The paper's Table 9: the quadratic (inverted-U) model of ER in PSS and in PSD, OLS beside posterior.

For each index A the outcome is regressed on A, A² and the controls (docs/method.md §3), by OLS (or
the spatial 2SLS with ``spatial_lag``; :mod:`models.frequentist.quadratic`) and by the Bayesian
model of :mod:`models.bayes.quadratic`. Layout: two columns per index, "A: OLS" (coefficient
with stars over its t statistic) and "A: posterior" (posterior mean with † when the 94 % HDI
excludes 0, over the posterior sd); rows A and A² (labelled generically, the column says which
index A is), the controls, the constant, then

* Turning point — OLS: −c1/(2c2) over its Fieller 95 % interval (or "unbounded");
  posterior: median over the 94 % HDI;
* Lind–Mehlum test — OLS: statistic with stars over its one-sided p-value; posterior: the
  probability that the slopes at min A and max A have the Lind–Mehlum signs (the shape with its
  turning point inside the range);
* P(inverted U on the observed range) = P(slope > 0 at min A and < 0 at max A) and P(turning
  point inside range) over its prior value (which depends on the range of A), posterior only:
  the verdict (docs/method.md §3);
* Observations, R² (OLS);
* P(c1 > 0, c2 < 0), labelled as the slope signs at A = 0 (a point outside the data when
  min A > 0; prior value 1/4, in the note), posterior only, last: shown, not the summary.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from models.frequentist.quadratic import fit_quadratic_frequentist
from models.spec.coefficient_tables import paper_table, posterior_table, stars
from models.spec.quadratic import build_quadratic

NOTE = ("OLS: t statistics in parentheses, *** p < 0.01, ** p < 0.05, * p < 0.10; turning "
        "point over its Fieller 95 % interval; Lind-Mehlum statistic over its one-sided p-value. "
        "Posterior: mean over sd, † the 94 % HDI excludes 0; turning point as posterior median "
        "over its 94 % HDI; Lind-Mehlum row = P(slopes at min A and max A have the signs of the "
        "shape); P(inverted U on the observed range) = P(slope > 0 at min A and < 0 at max A); "
        "the last row is P(c1 > 0, c2 < 0), the slope signs at A = 0 (outside the data when "
        "min A > 0), a priori 0.25.")
AT_ZERO = "P(c1 > 0, c2 < 0): slope sign at A = 0"
RANGE_TERMS = ("turning_point", "p_inverted_u", "p_inverted_u_range", "p_turning_point_in_range")


def quadratic_fits(frame: pd.DataFrame, outcome: str, indices: Sequence[str],
                   controls: Sequence[str], weights=None, eigenvalues=None,
                   spatial_lag: bool = False, *, draws: int, tune: int, chains: int, seed: int,
                   sampler: str = "nutpie", progress: bool = False, bayes: bool = True,
                   priors: Mapping[str, float] | None = None,
                   target_accept: float | None = None, max_treedepth: int | None = None,
                   checks=None) -> dict:
    """Fit the quadratic model for every index: {A: (frequentist fit, InferenceData,
    QuadraticPosterior)}. The formula is ``outcome ~ A + controls`` (A² added, W·outcome too
    with ``spatial_lag``). ``bayes=False`` skips the posterior (None, None). ``priors``,
    ``target_accept``, ``max_treedepth`` and ``checks`` go to
    :func:`models.bayes.quadratic.sample_quadratic`."""
    # lazy: PyMC only to sample; planning the study (--dry-run) goes without it
    from models.bayes.quadratic import sample_quadratic

    if not indices:
        raise InputError("quadratic_table needs at least one agglomeration index")
    fits = {}
    for k, index in enumerate(indices):
        formula = f"{outcome} ~ " + " + ".join([index, *controls])
        data = build_quadratic(frame, formula, index, weights=weights, spatial_lag=spatial_lag)
        fit = fit_quadratic_frequentist(data)
        if not bayes:
            fits[index] = (fit, None, None)
            continue
        idata, post = sample_quadratic(data, draws=draws, tune=tune, chains=chains,
                                       seed=seed + k, sampler=sampler, progress=progress,
                                       eigenvalues=eigenvalues, priors=priors,
                                       target_accept=target_accept,
                                       max_treedepth=max_treedepth, checks=checks)
        fits[index] = (fit, idata, post)
    return fits


def _generic(frame: pd.DataFrame, index: str) -> pd.DataFrame:
    out = frame.copy()
    out["term"] = out["term"].replace({index: "A", f"{index}^2": "A²"})
    return out


def _fmt(x: float, digits: int = 3) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def quadratic_table_from_fits(fits: dict, digits: int = 3) -> pd.DataFrame:
    """The Table 9 frame from :func:`quadratic_fits` (layout in the module docstring); when a
    posterior did not converge its column has no † and a last row "Posterior" says which."""
    # lazy: PyMC only to sample; planning the study (--dry-run) goes without it
    from models.bayes.sampling import convergence_word

    ols = paper_table({f"{a}: OLS": _generic(f.coefficients, a) for a, (f, _, _) in fits.items()},
                      digits=digits)
    if any(post is None for _, _, post in fits.values()):
        return _ols_only(ols, fits)
    verdicts = {a: convergence_word(json.loads(idata.attrs.get("convergence_report", "[]"))
                                    if idata is not None else [])
                for a, (_, idata, _) in fits.items()}
    failed = {f"{a}: posterior" for a, word in verdicts.items() if word.startswith("did NOT")}
    bayes = posterior_table(
        {f"{a}: posterior": _generic(p.summary[~p.summary["term"].isin(
            list(RANGE_TERMS))], a) for a, (_, _, p) in fits.items()},
        digits=digits, unmarked=failed)
    if ols["term"].tolist() != bayes["term"].tolist():
        raise InputError("the OLS and posterior tables have different rows")
    table = pd.DataFrame({"term": ols["term"]})
    for a, (fit, _, post) in fits.items():
        table[f"{a}: OLS"] = ols[f"{a}: OLS"]
        table[f"{a}: posterior"] = bayes[f"{a}: posterior"]

    def rows_for(index, fit, post):
        fs, lm, pr = fit.fieller, fit.lind_mehlum, post.probabilities
        interval = f"[{_fmt(fs.low)}, {_fmt(fs.high)}]" if fs.bounded else "(unbounded)"
        hdi = post.turning_point_hdi
        return [
            (_fmt(fit.turning_point), _fmt(post.turning_point_median)),
            (interval, f"[{_fmt(hdi[0])}, {_fmt(hdi[1])}]"),
            (f"{_fmt(lm.statistic)}{stars(lm.p_value)}", _fmt(pr["lind_mehlum"])),
            (f"(p = {_fmt(lm.p_value)})", ""),
            ("", _fmt(pr["inverted_u_range"])),
            ("", _fmt(pr["inside_range"])),
            ("", f"(prior {_fmt(post.prior['inside_range'])})"),
            (str(fit.nobs), str(fit.nobs)),
            (_fmt(fit.rsquared), ""),
            ("", _fmt(pr["inverted_u"])),
        ] + ([("", verdicts[index])] if failed else [])

    labels = ["Turning point", "", "Lind–Mehlum test", "", "P(inverted U on the observed range)",
              "P(turning point inside range)", "", "Observations", "R²", AT_ZERO] + (["Posterior"] if failed else [])
    extra = pd.DataFrame({"term": labels})
    for a, (fit, _, post) in fits.items():
        cells = rows_for(a, fit, post)
        extra[f"{a}: OLS"] = [c[0] for c in cells]
        extra[f"{a}: posterior"] = [c[1] for c in cells]
    return pd.concat([table, extra], ignore_index=True)


def _ols_only(ols: pd.DataFrame, fits: dict) -> pd.DataFrame:
    """Table 9 without posterior columns (a fast look: the posterior was not sampled)."""
    extra = pd.DataFrame({"term": ["Turning point", "", "Lind–Mehlum test", "", "Observations",
                                   "R²"]})
    for a, (fit, _, _) in fits.items():
        fs, lm = fit.fieller, fit.lind_mehlum
        interval = f"[{_fmt(fs.low)}, {_fmt(fs.high)}]" if fs.bounded else "(unbounded)"
        extra[f"{a}: OLS"] = [_fmt(fit.turning_point), interval,
                              f"{_fmt(lm.statistic)}{stars(lm.p_value)}",
                              f"(p = {_fmt(lm.p_value)})", str(fit.nobs), _fmt(fit.rsquared)]
    return pd.concat([ols[ols["term"] != "Observations"], extra], ignore_index=True)


def quadratic_table(frame: pd.DataFrame, outcome: str, indices: list[str], controls: list[str],
                    weights=None, eigenvalues=None, spatial_lag: bool = False, *, draws: int,
                    tune: int, chains: int, seed: int, sampler: str = "nutpie",
                    progress: bool = False) -> pd.DataFrame:
    """The paper's Table 9 (data only; the caller writes files, e.g. with :data:`NOTE`).

    ``frame``: one row per city (id column ``city``); ``weights`` are needed for
    ``spatial_lag`` (then ``eigenvalues`` of W are computed when not given). Index k is sampled
    with seed ``seed + k``.
    """
    fits = quadratic_fits(frame, outcome, indices, controls, weights, eigenvalues, spatial_lag,
                          draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                          progress=progress)
    return quadratic_table_from_fits(fits)
