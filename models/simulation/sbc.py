"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

If θ̃ ~ p(θ), y ~ p(y | θ̃) and θ_1..θ_L are independent posterior draws given y, the rank of θ̃
among them, #{l : θ_l < θ̃} ∈ {0, …, L}, is uniform on {0, …, L} exactly when the posterior
computation is right. Three parts:

* :func:`prior_truth` draws θ̃ from the prior the Bayesian system uses on its fixed (original)
  scale (``build_system_model(..., standardise=False)``; the default, data-standardised prior
  would depend on y and break the argument): structural coefficients N(0, structural_sigma²)
  restricted to the admissible region by rejection (the model restricts them through the
  Jacobian's −∞, :func:`models.bayes.jacobian.log_jacobian_numpy` is the same criterion),
  slopes N(0, beta_sigma²), intercepts N(0, intercept_sigma²), error sds HalfNormal(sd_sigma),
  and for two equations the correlation r = 2u − 1, u ~ Beta(η, η) (the model's closed-form
  LKJ(η) for G = 2).
* :func:`thinned_ranks`: the posterior draws (chains concatenated) are thinned to L draws taken
  at a fixed stride S // L (S draws in all), which for the short autocorrelation of NUTS on
  this model leaves roughly independent draws; the bulk ESS of each fit is kept in the
  replication's notes so that a stride too short for the autocorrelation shows.
* :func:`rank_uniformity`: per coefficient a chi-square test of the ranks binned into B equal
  groups of rank values (B divides L + 1, expected count ≥ 5 per bin), and a Bonferroni family
  verdict over the coefficients (conservative under the dependence between them).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from data_prep.errors import InputError
from data_prep.synthetic.simulate import SystemTruth, structural_parts
from data_prep.terms import is_structural

RANK_COLUMNS = ("replication", "equation", "term", "truth", "rank", "draws")
MAX_REJECTIONS = 10_000


def prior_truth(template: SystemTruth, eigenvalues, priors: Mapping[str, float] | None,
                rng: np.random.Generator) -> SystemTruth:
    """A truth with the terms of ``template`` drawn from the model's fixed-scale prior.

    Raises InputError when no admissible structural draw is found in ``MAX_REJECTIONS`` tries
    (a prior that puts almost no mass on the admissible region) or for G > 2 equations.
    """
    # lazy: pytensor and PyMC only for SBC prior draws (the recovery study imports this module)
    from models.bayes.jacobian import log_jacobian_numpy
    from models.bayes.system import DEFAULT_PRIORS

    hp = {**DEFAULT_PRIORS, **(priors or {})}
    deps = template.dependents
    G = len(deps)
    if G > 2:
        raise InputError(f"SBC prior draws are implemented for one or two equations, not {G}")
    slots = [(eq, t) for eq in deps for t in template.coefficients[eq]]
    structural = [k for k in slots if is_structural(k[1], deps)]
    for _ in range(MAX_REJECTIONS):
        values = dict(zip(structural, rng.normal(0.0, hp["structural_sigma"], len(structural))))
        trial = SystemTruth({eq: {t: values.get((eq, t), 0.0) for t in template.coefficients[eq]}
                             for eq in deps}, np.eye(G))
        B0, B1, _ = structural_parts(trial)
        if np.isfinite(log_jacobian_numpy(B0, B1, eigenvalues)):
            break
    else:
        raise InputError(f"no admissible structural coefficients in {MAX_REJECTIONS} prior "
                         f"draws (structural_sigma {hp['structural_sigma']}); use a smaller one")
    coefficients: dict[str, dict[str, float]] = {}
    for eq in deps:
        coefficients[eq] = {}
        for t in template.coefficients[eq]:
            if (eq, t) in values:
                coefficients[eq][t] = float(values[(eq, t)])
            else:
                sd = hp["intercept_sigma"] if t == "Intercept" else hp["beta_sigma"]
                coefficients[eq][t] = float(rng.normal(0.0, sd))
    sd = np.abs(rng.normal(0.0, hp["sd_sigma"], G))
    corr = np.eye(G)
    if G == 2:
        r = 2.0 * rng.beta(hp["lkj_eta"], hp["lkj_eta"]) - 1.0
        corr = np.array([[1.0, r], [r, 1.0]])
    return SystemTruth(coefficients, corr * np.outer(sd, sd))


def thinned_ranks(replication: int, truth: SystemTruth, draws: Mapping[tuple[str, str], np.ndarray],
                  L: int) -> pd.DataFrame:
    """Rank of each true coefficient among L draws taken at stride S // L from its S draws."""
    rows = []
    for eq, terms in truth.coefficients.items():
        for term, value in terms.items():
            x = np.asarray(draws[(eq, term)], dtype=float)
            stride = x.size // L
            if stride < 1:
                raise InputError(f"{x.size} posterior draws cannot be thinned to {L}")
            kept = x[::stride][:L]
            rows.append((replication, eq, term, float(value), int(np.sum(kept < value)), L))
    return pd.DataFrame(rows, columns=list(RANK_COLUMNS))


def rank_bins(L: int, replications: int, max_bins: int = 20) -> int:
    """Number of bins B: the largest divisor of L + 1 not above ``max_bins`` that keeps the
    expected count R / B at least 5 (at least 2 bins)."""
    divisors = [b for b in range(2, L + 2) if (L + 1) % b == 0 and b <= max_bins
                and replications / b >= 5]
    return max(divisors) if divisors else 2 if (L + 1) % 2 == 0 else L + 1


def binned_ranks(ranks: np.ndarray, L: int, max_bins: int = 20) -> np.ndarray:
    """Counts of ranks 0..L in :func:`rank_bins` equal groups of rank values."""
    B = rank_bins(L, len(ranks), max_bins)
    return np.bincount(np.asarray(ranks) * B // (L + 1), minlength=B)


def rank_uniformity(ranks: pd.DataFrame, max_bins: int = 20) -> pd.DataFrame:
    """Per coefficient: the chi-square statistic of its binned ranks against the uniform, its
    degrees of freedom, p-value, and the Bonferroni-adjusted p-value (× number of coefficients)."""
    L = int(ranks["draws"].iloc[0])
    out = []
    groups = list(ranks.groupby(["equation", "term"], sort=False))
    for (eq, term), g in groups:
        counts = binned_ranks(g["rank"].to_numpy(), L, max_bins)
        B = counts.size
        chi2, p = stats.chisquare(counts)
        out.append({"equation": eq, "term": term, "replications": len(g), "bins": B,
                    "chi2": float(chi2), "df": B - 1, "p_value": float(p),
                    "p_bonferroni": float(min(1.0, p * len(groups)))})
    return pd.DataFrame(out)


def uniformity_verdict(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """One plain sentence on the family of rank tests."""
    worst = table.loc[table["p_value"].idxmin()]
    what = (f"chi-square test of binned ranks ({int(worst['bins'])} bins, "
            f"{int(worst['replications'])} replications) per coefficient; smallest p = "
            f"{worst['p_value']:.3g} for {worst['equation']}: {worst['term']}, "
            f"Bonferroni-adjusted over {len(table)} coefficients {worst['p_bonferroni']:.3g}")
    if worst["p_bonferroni"] >= alpha:
        return (f"SBC ranks are consistent with uniform at family-wise level {alpha} ({what}): "
                f"no sign that the posterior is miscalibrated.")
    bad = table[table["p_bonferroni"] < alpha]
    names = ", ".join(f"{e}: {t}" for e, t in zip(bad["equation"], bad["term"]))
    return (f"SBC ranks are NOT uniform for {names} ({what}): the posterior of these "
            f"coefficients is miscalibrated (or the draws were not thinned enough).")


def rank_histogram_figure(ranks: pd.DataFrame, max_bins: int = 20):
    """One panel per coefficient: histogram of the binned ranks with the 99 % band of a bin
    count under uniform ranks (Binomial(R, 1/B) quantiles 0.005 and 0.995; Talts et al. Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = int(ranks["draws"].iloc[0])
    groups = list(ranks.groupby(["equation", "term"], sort=False))
    cols = min(4, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, ((eq, term), g) in zip(axes.ravel(), groups):
        counts = binned_ranks(g["rank"].to_numpy(), L, max_bins)
        B = counts.size
        lo, hi = stats.binom.ppf([0.005, 0.995], len(g), 1.0 / B)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(len(g) / B, color="0.5", lw=0.8)
        ax.bar(np.arange(B), counts, width=0.9, color="tab:blue")
        ax.set_title(f"{eq}: {term}", fontsize=9)
        ax.set_xticks([])
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    fig.suptitle(f"SBC rank histograms ({len(groups[0][1])} replications, ranks among {L} "
                 f"thinned draws; grey: 99 % band under uniform)", fontsize=10)
    fig.tight_layout()
    return fig
