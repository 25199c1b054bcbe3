"""ArviZ diagnostic figures of a fitted system: trace, rank, forest and energy plots.

The plots show the posterior ``coef`` over the (equation, term) pairs that are present, one
labelled ``coefficient`` dimension (the posterior's own layout, :mod:`models.bayes.idata`).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402

from data_prep.errors import InputError  # noqa: E402
from data_prep.files import write_together  # noqa: E402
from models.bayes.idata import COEF_EQUATION, COEF_TERM, stacked_coef  # noqa: E402


def present_coefficients(posterior: xr.Dataset) -> xr.DataArray:
    """``coef`` restricted to its present (equation, term) pairs, dim ``coefficient`` labelled
    ``"ER: W(PSS)"`` (the posterior's stacked layout, :mod:`models.bayes.idata`; a grid with
    NaN cells is stacked)."""

    if "coef" not in posterior:
        raise InputError("the posterior has no variable 'coef' (write it with sample_posteriors.py)")
    return stacked_coef(posterior).drop_vars([COEF_EQUATION, COEF_TERM])


def diagnostic_figures(idata: az.InferenceData, folder, prefix: str = "") -> list[Path]:
    """Write trace, rank, forest (94 % HDI) and — when sampler stats exist — energy plots."""
    folder = Path(folder)
    coef = present_coefficients(idata.posterior)
    data = az.convert_to_inference_data(xr.Dataset({"coef": coef}))
    plots = {"trace": lambda: az.plot_trace(data, compact=True),
             "rank": lambda: az.plot_rank(data),
             "forest": lambda: az.plot_forest(data, combined=True, hdi_prob=0.94)}
    if "sample_stats" in idata.groups() and "energy" in idata.sample_stats:
        plots["energy"] = lambda: az.plot_energy(idata)
    rendered: list[tuple[Path, bytes]] = []
    for name, draw in plots.items():
        try:
            draw()
            buffer = io.BytesIO()
            plt.gcf().savefig(buffer, dpi=100, format="png", bbox_inches="tight")
        finally:
            plt.close("all")
        rendered.append((folder / f"{prefix}{name}.png", buffer.getvalue()))
    # all figures or none: each is rendered in memory first, then written together
    return write_together([(path, lambda tmp, png=png: Path(tmp).write_bytes(png))
                           for path, png in rendered])
