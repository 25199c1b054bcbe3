"""High and low agglomeration regimes (docs/method.md §4, paper's Tables 7–8).

For an index A (PSS or PSD) on the (city, year) panel:

    Ã_rt  = A_rt winsorised at the (1 %, 99 %) quantiles pooled over all city-years
            (``data_prep.indices.winsorize``; the paper winsorises before splitting),
    m_t   = (1 / n_t) Σ_r Ã_rt, the yearly cross-city mean of Ã over the cities defined in t,
    A_H   = Ã · 1[Ã > m_t],     A_L = Ã · 1[Ã ≤ m_t],

so A_H + A_L = Ã exactly and, in every cell, one of the two is 0. A missing Ã stays missing in
both. The seed splits at "the yearly average level" (以每年的平均产业专业化集聚水平为标准)
**(choice: the mean of the winsorised index, over cities, year by year)**. The cross-section of
``data_prep.dataset.cross_section`` then averages A_H and A_L over the years like every other
(city, year) variable.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import xarray as xr

from data_prep.errors import InputError
from data_prep.indices import winsorize

THRESHOLD = "yearly cross-city mean of the winsorised index"


def regime_split(da: xr.DataArray,
                 winsor: tuple[float, float] | None = (0.01, 0.99)) -> tuple[xr.DataArray,
                                                                               xr.DataArray]:
    """(A_H, A_L) of a (city, year) DataArray as in the module docstring."""
    if set(da.dims) != {"city", "year"}:
        raise InputError(f"regimes: {da.name} must have dims (city, year), not {da.dims}")
    values = winsorize(da, *winsor) if winsor is not None else da.copy()
    values = values.astype(np.float64)
    with np.errstate(invalid="ignore"):
        mean = values.mean("city", skipna=True)
        high = values > mean
    defined = values.notnull()
    zero = xr.zeros_like(values)
    a_high = xr.where(defined, xr.where(high, values, zero), np.nan)
    a_low = xr.where(defined, xr.where(high, zero, values), np.nan)
    levels = "none" if winsor is None else f"{winsor[0]:g},{winsor[1]:g}"
    name = str(da.name)
    out = []
    for part, da_part, word in (("H", a_high, "above"), ("L", a_low, "at or below")):
        da_part = da_part.transpose(*da.dims).rename(f"{name}_{part}")
        da_part.attrs = {"long_name": f"{name} where it is {word} the yearly mean, else 0",
                         "regime_threshold": THRESHOLD, "winsorized": levels}
        out.append(da_part)
    return out[0], out[1]


def add_regimes(ds: xr.Dataset, indices: Sequence[str] = ("PSS", "PSD"),
                winsor: tuple[float, float] | None = (0.01, 0.99)) -> xr.Dataset:
    """The Dataset with ``<A>_H`` and ``<A>_L`` for every A in ``indices`` (module docstring).

    The choice is recorded in each variable's attrs and in the ``choices`` JSON of ``ds.attrs``
    (key ``regimes``: indices, threshold, winsorising levels). ``winsor=None`` skips winsorising.
    """
    absent = [a for a in indices if a not in ds]
    if absent:
        raise InputError(f"regimes: the dataset has no variable {', '.join(absent)}")
    if winsor is not None:
        winsor = (float(winsor[0]), float(winsor[1]))
    out = ds.copy()
    for name in indices:
        high, low = regime_split(ds[name], winsor)
        out[high.name] = high
        out[low.name] = low
    choices = json.loads(ds.attrs.get("choices", "{}") or "{}")
    choices["regimes"] = {"indices": list(indices), "threshold": THRESHOLD,
                          "winsorize": None if winsor is None else list(winsor)}
    out.attrs["choices"] = json.dumps(choices, sort_keys=True)
    return out


__all__ = ["add_regimes", "regime_split", "THRESHOLD"]
