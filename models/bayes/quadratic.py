"""Bayesian quadratic model (paper's Table 9): posterior of the turning point and of the shape.

The model is the one-equation case (G = 1) of :func:`models.bayes.system.build_system_model`,

    y = c0 + c1·A + c2·A² + X·β (+ ρ·W·y) + ε,   ε ~ N(0, σ² I),

with that model's priors (standardised scale: intercept Normal(0, 2.5), σ HalfNormal(1),
ρ Normal(0, 0.5) restricted to the admissible region by the O(n) spectral Jacobian), except for
the slopes **(choice)**: Normal(0, s) with s = max(1, √VIF), VIF = 1/(1 − R²) the larger
variance-inflation factor of A and A² in the design. A and A² are nearly collinear for a positive
A (corr ≈ 0.98 for A uniform on [1, 5]), so their standardised coefficients are individually
large (opposite signs, about √VIF in size, for a curve whose vertex lies inside the range); the
system model's Normal(0, 1) would shrink them hard (measured: c1 = 2.79 by OLS, posterior mean
1.5 under Normal(0, 1)). s is about the marginal prior sd that unit-scale priors on the slope
at the mean of A and the curvature imply. Every prior is overridable through ``priors``.
Added as deterministics (docs/method.md §3):

* ``turning_point`` θ = −c1/(2c2);
* ``slope_ends`` s(x_l), s(x_h) with s(a) = c1 + 2c2·a at the ends of the observed range of A;
* ``inverted_u`` 1[c1 > 0, c2 < 0], ``u_shape`` 1[c1 < 0, c2 > 0],
  ``inside_range`` 1[x_l ≤ θ ≤ x_h] (posterior means are the probabilities), and
  ``lind_mehlum`` 1[s(x_l) > 0 > s(x_h)] for an inverted U (1[s(x_l) < 0 < s(x_h)] for a U, the
  shape of the posterior-mean c2): the Bayesian reading of the Lind–Mehlum hypothesis,
  a turning point of the right shape inside [x_l, x_h].

The summary (docs/contracts.md contract 6) carries ``p_inverted_u`` = P(c1 > 0, c2 < 0) as the contract
says, but that is the sign of the slope at A = 0, a point outside the data when A ≥ 1 (PSS), so
it is not the verdict. It adds the probabilities on the observed range (docs/method.md §3):
``p_inverted_u_range`` = P(s(x_l) > 0 > s(x_h)), the posterior mean of
``lind_mehlum_inverted_u`` whatever the shape of the posterior mean, and
``p_turning_point_in_range`` = P(x_l ≤ θ ≤ x_h), the posterior mean of ``inside_range``
(x_l, x_h = min and max of A over the rows of the fit, stored as ``range_of_A`` in the
posterior's attributes).

Prior values (computed, not sampled; checked against prior draws in the tests). c1 and c2 are
positive multiples of independent zero-centred Normal standardised slopes with equal sd, so
a priori P(inverted U) = P(U) = 1/4, and θ = −γ·Z1/Z2 with γ = (scale of c1)/(2·scale of c2) is
γ times a standard Cauchy variable, so P(x_l ≤ θ ≤ x_h) = [atan(x_h/γ) − atan(x_l/γ)]/π.
On data without any effect of A the posterior P(inverted U) is not 1/4 in general: the estimates
of c1 and c2 are correlated like −corr(A, A²) (near −1 for a positive A), and for a posterior
centred at zero the orthant probability is 1/4 + arcsin(corr(A, A²))/(2π) (Sheppard's formula).
That is why the turning point and ``inside_range`` / ``lind_mehlum`` matter more than P(inverted U).

With a spatial lag and a row-standardised W the total effect of A at level a is
(c1 + 2c2·a)/(1 − ρ); 1 − ρ > 0 in the admissible region, so its turning point is θ in every draw
and the total slope has the sign of s(a) at both ends: the range probabilities above are those of
the total effect too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum, as_spectrum, spectrum
from models.bayes.idata import coef_grid
from models.bayes.postprocess import summary_frame
from models.bayes import sampling  # sampling.sample looked up per call: tests replace it
from models.bayes.sampling import quiet_arviz
from models.bayes.system import build_system_model
from models.spec.quadratic import QuadraticData

PRIOR_INVERTED_U = 0.25
HDI_PROB = 0.94
# summary rows on the observed range -> the indicator deterministic whose mean each one is
RANGE_ROWS = {"p_inverted_u_range": "lind_mehlum_inverted_u",
              "p_turning_point_in_range": "inside_range"}


def spectrum_for(data: QuadraticData, eigenvalues=None) -> Spectrum | None:
    """The spectrum of W for the Jacobian: ``eigenvalues`` as given (a
    :class:`~data_prep.spectrum.chooser.Spectrum` or an array of exact eigenvalues), else the
    one chooser's (exact up to its threshold, quadrature above); None without W (a Durbin
    term W(x) alone also brings W, whose spectrum the system model checks)."""
    if data.system.W is None:
        return None
    return as_spectrum(eigenvalues) if eigenvalues is not None else spectrum(data.system.W)


def _term_scale(layout, term: str) -> float:
    """Positive factor mapping a standardised slope to the original scale (diagonal of T)."""
    j = layout.exogenous.index((0, term))
    return float(layout.T[len(layout.structural) + j, len(layout.structural) + j])


def prior_probabilities(model: pm.Model, data: QuadraticData) -> dict[str, float]:
    """A-priori P(inverted U), P(U) and P(turning point inside [x_l, x_h]) (module docstring)."""
    layout = model.layout  # type: ignore[attr-defined]
    gamma = _term_scale(layout, data.term) / (2 * _term_scale(layout, data.square))
    lo, hi = data.range
    inside = (np.arctan(hi / gamma) - np.arctan(lo / gamma)) / np.pi
    return {"inverted_u": PRIOR_INVERTED_U, "u_shape": PRIOR_INVERTED_U,
            "inside_range": float(inside)}


def slope_prior_sd(data: QuadraticData) -> float:
    """max(1, √VIF) over A and A²: VIF = 1/(1 − R²) of each regressed on the other exogenous
    columns of the design (the spatial lag W·y left out)."""
    terms = list(data.terms)
    X = data.design()
    keep = [k for k, t in enumerate(terms) if not t.startswith(f"W({data.outcome})")]
    worst = 1.0
    for term in (data.term, data.square):
        j = terms.index(term)
        others = X[:, [k for k in keep if k != j]]
        target = X[:, j]
        fitted = others @ np.linalg.lstsq(others, target, rcond=None)[0]
        centred = target - target.mean() if "Intercept" in terms else target
        r2 = 1.0 - np.sum((target - fitted) ** 2) / np.sum(centred ** 2)
        worst = max(worst, 1.0 / max(1.0 - r2, 1e-12))
    return float(np.sqrt(worst))


def build_quadratic_model(data: QuadraticData, eigenvalues=None,
                          priors: Mapping[str, Any] | None = None, *,
                          errors: str = "normal") -> pm.Model:
    """PyMC model of the quadratic (module docstring); ``eigenvalues`` of W with a spatial lag
    (computed when None); ``errors="student-t"`` for Student-t(ν) errors (the G = 1 case of
    ``models.bayes.system``, free variable ``nu``). The model's ``coef`` is the system model's
    (equation, term) grid; after sampling the posterior holds it stacked over ``coefficient``
    (:mod:`models.bayes.idata`) plus the deterministics listed above."""
    settings = {"beta_sigma": slope_prior_sd(data)}
    settings.update(priors or {})
    model = build_system_model(data.system, spectrum_for(data, eigenvalues), settings,
                               errors=errors)
    terms = list(model.layout.terms)  # type: ignore[attr-defined]
    lo, hi = data.range
    with model:
        coef = model["coef"]
        c1, c2 = coef[0, terms.index(data.term)], coef[0, terms.index(data.square)]
        theta = pm.Deterministic("turning_point", -c1 / (2.0 * c2))
        model.add_coord("end", ["low", "high"])
        ends = pm.Deterministic("slope_ends", pt.stack([c1 + 2.0 * c2 * lo, c1 + 2.0 * c2 * hi]),
                                dims="end")
        pm.Deterministic("inverted_u", pt.cast((c1 > 0) & (c2 < 0), "float64"))
        pm.Deterministic("u_shape", pt.cast((c1 < 0) & (c2 > 0), "float64"))
        pm.Deterministic("inside_range", pt.cast((theta >= lo) & (theta <= hi), "float64"))
        pm.Deterministic("lind_mehlum_inverted_u",
                         pt.cast((ends[0] > 0) & (ends[1] < 0), "float64"))
        pm.Deterministic("lind_mehlum_u", pt.cast((ends[0] < 0) & (ends[1] > 0), "float64"))
    model.quadratic = data  # type: ignore[attr-defined]
    model.prior_probabilities = prior_probabilities(model, data)  # type: ignore[attr-defined]
    model.rhat_advice = ("Draw more samples ({draws}): A and A² are strongly correlated, which slows "
                         "the sampler.")  # type: ignore[attr-defined]
    return model


@dataclass
class QuadraticPosterior:
    """Posterior summaries of the shape; ``summary`` is the contract-6 summary frame."""

    outcome: str
    term: str
    summary: pd.DataFrame
    turning_point_median: float
    turning_point_hdi: tuple[float, float]
    probabilities: dict[str, float]          # inverted_u, u_shape, inside_range, lind_mehlum,
                                             # inverted_u_range
    prior: dict[str, float]
    shape: str                               # shape of the posterior-mean curvature
    range: tuple[float, float]
    spatial_lag: bool
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        p, q = self.probabilities, self.prior
        lines = [
            f"Turning point of {self.outcome} in {self.term}: posterior median "
            f"{self.turning_point_median:.4g}, {HDI_PROB:.0%} HDI [{self.turning_point_hdi[0]:.4g},"
            f" {self.turning_point_hdi[1]:.4g}]; observed range [{self.range[0]:.4g}, "
            f"{self.range[1]:.4g}]",
            f"P(inverted U on the observed range: slope positive at {self.range[0]:.4g} and "
            f"negative at {self.range[1]:.4g}) = {p['inverted_u_range']:.3f}",
            f"P(turning point inside the observed range) = {p['inside_range']:.3f} "
            f"(prior {q['inside_range']:.3f})",
            f"P({self.shape} with its turning point inside the range, i.e. the slopes at the two "
            f"ends have the Lind-Mehlum signs) = {p['lind_mehlum']:.3f}",
            f"slope signs at {self.term} = 0, outside the data when the range excludes 0: "
            f"P(c1 > 0, c2 < 0) = {p['inverted_u']:.3f} (prior {q['inverted_u']:.2f}); "
            f"P(c1 < 0, c2 > 0) = {p['u_shape']:.3f} (prior {q['u_shape']:.2f})"]
        if self.spatial_lag:
            lines.append(f"Total effect of {self.term}: (c1 + 2c2·{self.term}) times the spatial "
                         f"multiplier, which does not depend on {self.term}, so its turning point "
                         f"is the same point in every draw")
        return "\n".join(lines + [f"warning: {n}" for n in self.notes])


def _scalar_row(idata, name: str, outcome: str, term: str, probability: bool) -> dict:
    import arviz as az

    da = idata.posterior[name]
    values = da.values
    finite = values[np.isfinite(values)]
    row = {"equation": outcome, "term": term, "mean": float(np.mean(finite)),
           "sd": float(np.std(finite, ddof=1)), "hdi_low": np.nan, "hdi_high": np.nan,
           "r_hat": np.nan, "ess_bulk": np.nan}
    if not probability:
        hdi = az.hdi(idata.posterior[[name]], hdi_prob=HDI_PROB)[name].values
        row.update(hdi_low=float(hdi[0]), hdi_high=float(hdi[1]))
    if np.ptp(values) > 0:
        if da.sizes["chain"] > 1:
            row["r_hat"] = float(az.rhat(idata.posterior[[name]])[name])
        row["ess_bulk"] = float(az.ess(idata.posterior[[name]], method="bulk")[name])
    return row


def quadratic_posterior(idata, model: pm.Model) -> QuadraticPosterior:
    """Summaries after sampling: the contract-6 frame (coefficients, ``turning_point``,
    ``p_inverted_u``, then ``p_inverted_u_range`` and ``p_turning_point_in_range``) and the
    probabilities of the shape, with their prior values."""
    import warnings

    import arviz as az

    data: QuadraticData = model.quadratic  # type: ignore[attr-defined]
    post = idata.posterior
    with warnings.catch_warnings(), quiet_arviz():
        warnings.simplefilter("ignore")
        rows = summary_frame(idata, hdi_prob=HDI_PROB)
        extra = pd.DataFrame([
            _scalar_row(idata, "turning_point", data.outcome, "turning_point", False),
            _scalar_row(idata, "inverted_u", data.outcome, "p_inverted_u", True),
            *(_scalar_row(idata, name, data.outcome, term, True)
              for term, name in RANGE_ROWS.items())])
        hdi = az.hdi(post[["turning_point"]], hdi_prob=HDI_PROB)["turning_point"].values
    c2 = coef_grid(post).sel(term=data.square).values
    c2_mean = float(np.mean(c2))
    shape = "inverted U" if c2_mean < 0 else "U"
    lm_name = "lind_mehlum_inverted_u" if c2_mean < 0 else "lind_mehlum_u"
    probs = {k: float(post[k].mean()) for k in ("inverted_u", "u_shape", "inside_range")}
    probs["lind_mehlum"] = float(post[lm_name].mean())
    probs["inverted_u_range"] = float(post["lind_mehlum_inverted_u"].mean())
    notes = []
    if np.mean(np.sign(c2) != np.sign(c2_mean)) > 0.05:
        notes.append(f"the sign of the curvature {data.square} is uncertain (more than 5 % of the "
                     f"draws have the other sign), so the turning point's posterior has heavy "
                     f"tails: read its median and HDI, not its mean")
    return QuadraticPosterior(
        outcome=data.outcome, term=data.term,
        summary=pd.concat([rows, extra], ignore_index=True),
        turning_point_median=float(post["turning_point"].median()),
        turning_point_hdi=(float(hdi[0]), float(hdi[1])), probabilities=probs,
        prior=dict(model.prior_probabilities),  # type: ignore[attr-defined]
        shape=shape, range=data.range, spatial_lag=data.spatial_lag, notes=notes)


def sample_quadratic(data: QuadraticData, *, draws: int = 1000, tune: int = 1000,
                     chains: int = 4, seed: int = 0, sampler: str = "nutpie",
                     progress: bool = False, eigenvalues=None,
                     priors: Mapping[str, Any] | None = None,
                     target_accept: float | None = None, max_treedepth: int | None = None,
                     checks=None, errors: str = "normal"):
    """Build, sample (:func:`models.bayes.sampling.sample`) and summarise; returns
    (InferenceData, :class:`QuadraticPosterior`). The shape summary and the prior values are
    stored in ``idata.posterior.attrs`` as JSON. ``priors`` override the system model's
    (:data:`models.bayes.system.DEFAULT_PRIORS`; ``beta_sigma`` replaces the VIF-based slope
    scale); ``target_accept``, ``max_treedepth`` and ``checks`` go to the sampler."""
    for name, value, least in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if int(value) < least:
            raise InputError(f"--{name} must be at least {least}, not {value}")
    model = build_quadratic_model(data, eigenvalues, priors, errors=errors)
    idata = sampling.sample(model, draws=draws, tune=tune, chains=chains, seed=seed,
                            sampler=sampler, progress=progress, target_accept=target_accept,
                            max_treedepth=max_treedepth, checks=checks)
    result = quadratic_posterior(idata, model)
    idata.posterior.attrs.update({
        "quadratic_term": data.term, "outcome": data.outcome,
        "spatial_lag": int(data.spatial_lag), "range_of_A": json.dumps(list(data.range)),
        "shape_probabilities": json.dumps(result.probabilities),
        "prior_probabilities": json.dumps(result.prior),
        "convergence_report": idata.attrs.get("convergence_report", "[]"),
        "seed": int(seed), "sampler": idata.attrs.get("sampler", sampler)})
    return idata, result
