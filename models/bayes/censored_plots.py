"""Posterior predictive check of the censored factor model: the point masses at the bounds.

A Tobit predicts a share of observations exactly at each bound and a continuous density
between; a model that fits the interior but misses the point mass (or vice versa) shows it
here. One panel per bound: the replicated share of censored observations (histogram over
replicates) against the observed share (vertical line); a last panel: the observed density of
the uncensored values against the replicated ones (Gelman et al., BDA3 §6.3).
"""

from __future__ import annotations

import numpy as np

from data_prep.files import atomic_write
from models.spec.factor import FactorData


def plot_censored_ppc(replicates: np.ndarray, data: FactorData, path=None, *,
                      title: str | None = None):
    """Figure of the check from (S, n) replicated outcomes (models.bayes.censored.
    posterior_predictive); saved atomically to ``path`` (PNG) when given. Returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bounds = [(b, word) for b, word in ((data.lower, "lower"), (data.upper, "upper"))
              if b is not None]
    fig, axes = plt.subplots(1, len(bounds) + 1, figsize=(4.2 * (len(bounds) + 1), 3.4))
    for ax, (bound, word) in zip(axes, bounds):
        rep = (replicates <= bound) if word == "lower" else (replicates >= bound)
        observed = (data.at_lower if word == "lower" else data.at_upper).mean()
        ax.hist(rep.mean(axis=1), bins=20, color="0.7", label="replicated")
        ax.axvline(observed, color="C3", lw=2, label=f"observed {observed:.3f}")
        ax.set_xlabel(f"share at the {word} bound {bound:g}")
        ax.set_ylabel("replicates")
        ax.legend(fontsize=8)
    ax = axes[-1]
    inside = ~(data.at_lower | data.at_upper)
    lo = data.y[inside].min() if inside.any() else np.min(replicates)
    hi = data.y[inside].max() if inside.any() else np.max(replicates)
    bins = np.linspace(lo, hi, 25)
    above = replicates > (data.lower if data.lower is not None else -np.inf)
    below = replicates < (data.upper if data.upper is not None else np.inf)
    pooled = replicates[above & below]
    ax.hist(pooled, bins=bins, density=True, color="0.75", label="replicated (pooled)")
    for s in range(min(10, replicates.shape[0])):
        r = replicates[s][above[s] & below[s]]
        ax.hist(r, bins=bins, density=True, histtype="step", color="C0", alpha=0.3,
                label="replicates" if s == 0 else None)
    ax.hist(data.y[inside], bins=bins, density=True, histtype="step", color="C3", lw=2,
            label="observed")
    ax.set_xlabel(f"{data.outcome} strictly inside the bounds")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.suptitle(title or f"Posterior predictive check: {data.outcome}")
    fig.tight_layout()
    if path is not None:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120), create_folder=True)
    return fig
