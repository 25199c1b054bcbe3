"""The study's indices from ``employment(city, year, industry)`` (docs/method.md §1).

Every function takes and returns :class:`xarray.DataArray` objects and is vectorised over cities
and years (float64). Notation: E_rit employment of city r in industry i in year t;
E_rt = Σ_i E_rit, E_·it = Σ_r E_rit, E_·t = Σ_i E_·it; shares s_rit = E_rit / E_rt and national
shares s_·it = E_·it / E_·t.

Degenerate inputs are never divided silently:
* a city-year with total employment 0 has no shares: its share-based indices are NaN, with a
  warning naming the city-years;
* an industry with national employment 0 has no location quotient (0/0): it is left out of the
  maximum and its named LQ is NaN;
* the sensitivity index is flagged where the counterfactual change is near zero (see
  :func:`sensitivity_index`).

The few lines of array algebra are written by hand: no maintained library computes these
regional-science indices on a labelled (city, year, industry) cube.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import xarray as xr
from scipy.special import xlogy

from data_prep.errors import InputError

DIMS = ("city", "year", "industry")
# Near-zero counterfactual change: |ΔE^C_r,t+1| <= ER_THRESHOLD · E_rt. With national growth of a
# few per cent a year, a counterfactual change below 0.1 % of the city's employment makes the
# ratio 10-100 times the actual deviation (the paper's ±20 extremes); such cells are flagged.
ER_THRESHOLD = 1e-3


def _few(cells: Sequence, limit: int = 4) -> str:
    cells = list(cells)
    return ", ".join(str(c) for c in cells[:limit]) + (" ..." if len(cells) > limit else "")


def _cells(mask: np.ndarray, da, limit: int = 4) -> tuple[int, str]:
    """(count, '(city, year), ... ...') of the True cells of a (city, year) mask; only the
    first ``limit`` are formatted, so a mask with millions of cells stays cheap."""
    where = np.argwhere(mask)
    cities, years = da.city.values, da.year.values
    shown = ", ".join(f"({cities[r]}, {years[t]})" for r, t in where[:limit])
    return len(where), shown + (" ..." if len(where) > limit else "")


def _cube(employment: xr.DataArray,
          quantity: str = "employment") -> tuple[np.ndarray, xr.DataArray]:
    """(float64 array in (city, year, industry) order, the DataArray so ordered)."""
    if not isinstance(employment, xr.DataArray):
        raise InputError(f"{quantity} must be an xarray DataArray with dims city, year, industry")
    if set(employment.dims) != set(DIMS):
        raise InputError(f"{quantity} must have dims {DIMS}, not {employment.dims}")
    da = employment.transpose(*DIMS)
    E = np.asarray(da.values, dtype=np.float64)
    if (E < 0).any():
        r, t, i = np.argwhere(E < 0)[0]
        raise InputError(f"{quantity} is negative, e.g. city {da.city.values[r]}, year "
                         f"{da.year.values[t]}, industry {da.industry.values[i]}")
    return E, da


def _city_year(values: np.ndarray, da: xr.DataArray, name: str) -> xr.DataArray:
    return xr.DataArray(values, dims=("city", "year"), name=name,
                        coords={"city": da.city.values, "year": da.year.values})


def _city_totals(E: np.ndarray, da: xr.DataArray, what: str,
                 quantity: str = "employment") -> np.ndarray:
    """E_rt, with NaN (and a warning naming them) where the city has no employment."""
    total = E.sum(axis=2)
    zero = total <= 0
    if zero.any():
        count, shown = _cells(zero, da)
        warnings.warn(f"{what}: {count} city-years have total {quantity} 0 and get NaN: "
                      f"{shown}", stacklevel=3)
        total = np.where(zero, np.nan, total)
    return total


def _national_shares(E: np.ndarray) -> np.ndarray:
    """s_·it as a (year, industry) array (NaN where the whole country has no employment)."""
    national = E.sum(axis=0)
    grand = national.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return national / grand


ER_BENCHMARKS = ("industry_mix", "national")


def _counterfactual_change(E: np.ndarray, benchmark: str) -> np.ndarray:
    """ΔE^C_r,t+1 as a (city, year − 1) array for the benchmark (see :func:`sensitivity_index`)."""
    n, T, _ = E.shape
    if benchmark == "national":
        grand = E.sum(axis=(0, 2))  # E_··t
        with np.errstate(invalid="ignore", divide="ignore"):
            growth = np.where(grand[:-1] > 0, grand[1:] / grand[:-1] - 1.0, np.nan)
        return E[:, :-1, :].sum(axis=2) * growth[None, :]
    national = E.sum(axis=0)  # (year, industry)
    with np.errstate(invalid="ignore", divide="ignore"):
        growth = np.where(national[:-1] > 0, national[1:] / national[:-1] - 1.0, 0.0)
    # an industry born from zero national employment has infinite growth but E_rit = 0: drop it
    growth = np.where(np.isfinite(growth), growth, 0.0)
    # one matrix-vector product per year (einsum's generic loop is ~100x slower here)
    counterfactual = np.empty((n, T - 1))
    for t in range(T - 1):
        counterfactual[:, t] = E[:, t, :] @ growth[t]
    return counterfactual


def sensitivity_index(employment: xr.DataArray, threshold: float = ER_THRESHOLD,
                      winsorize: float | tuple[float, float] | None = None,
                      keep_flagged: bool = False,
                      benchmark: str = "industry_mix") -> xr.Dataset:
    """Martin sensitivity (resilience) index ER with a near-zero-denominator flag.

    Martin, Sunley, Gardiner & Tyler (2016), "How regions react to recessions: resilience and
    the role of economic structure", Regional Studies 50(4):

        ΔE^A_r,t+1   = E_r,t+1 − E_rt                            (actual change)
        ER_rt        = (ΔE^A_r,t+1 − ΔE^C_r,t+1) / |ΔE^C_r,t+1|

    with the counterfactual change ΔE^C by ``benchmark``:

    * "industry_mix" (default, docs/method.md §1): each industry grows at its national rate,
          g_i,t+1 = (E_·i,t+1 − E_·it) / E_·it,   ΔE^C_r,t+1 = Σ_i g_i,t+1 · E_rit.
      This nets out the shift-share structural (industry-mix) part of the city's change, the
      channel through which specialisation and diversity act.
    * "national": the whole city grows at the aggregate national rate,
          g_·,t+1 = (E_··,t+1 − E_··t) / E_··t,   ΔE^C_r,t+1 = g_·,t+1 · E_rt,
      which keeps the structural part in ER (Martin et al.'s aggregate form).

    ER is labelled with year t and is NaN in the last year. An industry with E_·it = 0 has
    E_rit = 0 in every city, so it contributes 0 to the industry-mix ΔE^C (its g is taken as 0);
    a year with no national employment has no national rate (ER NaN).

    ``ER_flag`` marks cells with |ΔE^C_r,t+1| <= ``threshold`` · E_rt (near-zero counterfactual
    change relative to the city's size; default 0.001, and always when E_rt = 0). Flagged cells
    become NaN unless ``keep_flagged`` (then cells with ΔE^C = 0 exactly are still NaN); a
    warning gives their count and a few city-years. ``winsorize`` (p, or (lower, upper)
    quantiles) clips the defined cells afterwards, as the paper does at 1 %.

    Returns a Dataset with ``ER(city, year)`` and ``ER_flag(city, year)`` (bool); ``ER.attrs``
    record the benchmark.
    """
    if benchmark not in ER_BENCHMARKS:
        raise InputError(f"the ER benchmark must be one of {', '.join(ER_BENCHMARKS)}, "
                         f"not {benchmark!r}")
    if not threshold >= 0:
        raise InputError(f"the ER threshold must be a non-negative number, not {threshold}")
    E, da = _cube(employment)
    n, T, _ = E.shape
    if T < 2:
        raise InputError("the sensitivity index needs at least two years of employment")
    counterfactual = _counterfactual_change(E, benchmark)
    total = E.sum(axis=2)  # (city, year)
    actual = total[:, 1:] - total[:, :-1]
    flag = np.zeros((n, T), dtype=bool)
    with np.errstate(invalid="ignore"):
        near_zero = np.abs(counterfactual) <= threshold * total[:, :-1]
    flag[:, :-1] = near_zero
    er = np.full((n, T), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        er[:, :-1] = (actual - counterfactual) / np.abs(counterfactual)
    er[~np.isfinite(er)] = np.nan
    if near_zero.any():
        count, shown = _cells(near_zero, da)
        action = "kept" if keep_flagged else "set to NaN"
        which = "" if benchmark == "industry_mix" else f" ({benchmark} benchmark)"
        warnings.warn(f"sensitivity index{which}: {count} city-years have a near-zero "
                      f"counterfactual change (|dE^C| <= {threshold:g} x employment), {action}: "
                      f"{shown}", stacklevel=2)
        if not keep_flagged:
            er[flag] = np.nan
    out = _city_year(er, da, "ER")
    if winsorize is not None:
        lower, upper = winsor_levels(winsorize)
        out = _winsorize(out, lower, upper)
    rate = ("industry-mix" if benchmark == "industry_mix" else "national-rate")
    out.attrs.update(long_name=f"Martin sensitivity index of employment ({rate} benchmark)",
                     benchmark=benchmark, threshold=threshold,
                     keep_flagged=str(keep_flagged).lower())
    return xr.Dataset({"ER": out, "ER_flag": _city_year(flag, da, "ER_flag")})


GDP_BENCHMARKS = ("national", "own_trend")


def gdp_growth_change(gdp: xr.DataArray, benchmark: str = "national") -> xr.DataArray:
    """ER_GDP: resilience by GDP growth against a benchmark (robustness measure of ER).

    The paper's robustness check replaces ER by "the change in the economic growth rate"
    (Table 4) without a formula. Here, with city GDP Y_rt (any unit: only ratios enter):

        g_r,t+1  = Y_r,t+1 / Y_rt − 1                                   (city growth)
        G_t+1    = Σ_{r∈R_t} Y_r,t+1 / Σ_{r∈R_t} Y_rt − 1               (national growth)
        ER_GDP_rt = g_r,t+1 − G_t+1                  (benchmark "national", the default)
        ER_GDP_rt = g_r,t+1 − mean_{s<t} g_r,s+1     (benchmark "own_trend")

    R_t holds the cities observed in both t and t+1, so a missing cell does not move the
    national rate. Why "national" is the default: Martin et al. (2016) measure resistance as
    the deviation of the city's actual change from the change it would have had at national
    rates; with GDP, which has no industry breakdown, that counterfactual is the national
    growth rate, and (ΔY^A − ΔY^C) / Y_rt = g_r,t+1 − G_t+1 is Martin's numerator per unit of
    the city's GDP. It is the difference, not Martin's ratio over |ΔY^C|: national growth can
    pass near zero in a shock year and the ratio would then explode as ER does (docs/method.md §1);
    the difference stays bounded. Positive means the city grew faster than the nation (more
    resistant), like a positive ER. "own_trend" reads "change in the growth rate" literally:
    growth in excess of the city's own mean growth of the previous years (undefined in the
    first year, which has no earlier growth).

    Labelled with year t like ER: NaN in the last year, where Y_r,t or Y_r,t+1 is missing,
    and (own_trend) in the first year. A fraction (0.01 = one percentage point).
    """
    if benchmark not in GDP_BENCHMARKS:
        raise InputError(f"GDP benchmark must be one of {', '.join(GDP_BENCHMARKS)}, "
                         f"not {benchmark!r}")
    if not isinstance(gdp, xr.DataArray) or set(gdp.dims) != {"city", "year"}:
        raise InputError("GDP must be an xarray DataArray with dims city, year")
    da = gdp.transpose("city", "year")
    Y = np.asarray(da.values, dtype=np.float64)
    if Y.shape[1] < 2:
        raise InputError("the GDP growth change needs at least two years of GDP")
    bad = np.isfinite(Y) & (Y <= 0) | np.isinf(Y)
    if bad.any():
        r, t = np.argwhere(bad)[0]
        raise InputError(f"GDP must be positive and finite, e.g. city {da.city.values[r]}, "
                         f"year {da.year.values[t]} has {Y[r, t]:g}")
    growth = Y[:, 1:] / Y[:, :-1] - 1.0  # NaN where either year is missing
    n, T = Y.shape
    out = np.full((n, T), np.nan)
    if benchmark == "national":
        both = np.isfinite(growth)
        before = np.where(both, Y[:, :-1], 0.0).sum(axis=0)
        after = np.where(both, Y[:, 1:], 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            national = np.where(before > 0, after / np.where(before > 0, before, 1.0) - 1.0,
                                np.nan)
        out[:, :-1] = growth - national[None, :]
    else:
        defined = np.isfinite(growth)
        # mean of g_r,s+1 over the defined s < t: running sums shifted by one year
        sums = np.cumsum(np.where(defined, growth, 0.0), axis=1)
        counts = np.cumsum(defined, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            trend = sums[:, :-1] / np.where(counts[:, :-1] > 0, counts[:, :-1], np.nan)
        out[:, 1:-1] = growth[:, 1:] - trend
    result = _city_year(out, da, "ER_GDP")
    result.attrs.update(long_name=f"GDP growth in excess of the {benchmark.replace('_', ' ')} "
                                  f"benchmark (next year's growth)",
                        benchmark=benchmark, units="fraction per year")
    return result


def winsor_levels(spec) -> tuple[float, float]:
    """(lower, upper) shares of a winsorising choice: p → (p, 1 − p), or a (lower, upper) pair."""
    if np.isscalar(spec):
        p = float(spec)
        return p, 1.0 - p
    lower, upper = (float(x) for x in spec)
    return lower, upper


def winsorize(da: xr.DataArray, lower: float = 0.01, upper: float = 0.99) -> xr.DataArray:
    """Clip ``da`` at its ``lower`` and ``upper`` sample quantiles, pooled over all cells.

    x ↦ min(max(x, q_lower), q_upper), quantiles over the non-NaN cells (linear interpolation,
    numpy's default); NaN stays NaN. Winsorising at 1 %/99 % is the paper's choice (Tukey 1962).
    """
    if not 0.0 <= lower < upper <= 1.0:
        raise InputError(f"winsorising needs 0 <= lower < upper <= 1, not ({lower}, {upper})")
    values = np.asarray(da.values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return da.copy()
    lo, hi = np.quantile(finite, [lower, upper])
    out = da.copy(data=np.clip(values, lo, hi))
    out.attrs.update(da.attrs, winsorized=f"{lower:g},{upper:g}")
    return out


_winsorize = winsorize  # sensitivity_index's argument of the same name shadows it


def relative_specialisation(employment: xr.DataArray) -> xr.DataArray:
    """PSS: the city's largest location quotient, PSS_rt = max_i s_rit / s_·it.

    Relative specialisation index (Duranton & Puga 2000, "Diversity and specialisation in
    cities", Urban Studies 37(3)). Industries with no national employment are skipped; a
    city-year with no employment is NaN.
    """
    out = _largest_lq(employment, "employment", "relative specialisation")
    out.attrs["long_name"] = "relative specialisation (largest location quotient)"
    return out


def _largest_lq(values: xr.DataArray, quantity: str, what: str) -> xr.DataArray:
    """max_i (X_rit / X_rt) / (X_·it / X_·t) of a non-negative (city, year, industry) cube X."""
    E, da = _cube(values, quantity)
    total = _city_totals(E, da, what, quantity)
    share = _national_shares(E)
    # max_i (E_rit / s_·it) / E_rt: one full-size temporary
    inverse = np.where(share > 0, 1.0 / np.where(share > 0, share, 1.0), 0.0)
    scaled = E * inverse[None, :, :]
    return _city_year(scaled.max(axis=2) / total, da, "PSS")


def output_specialisation(output: xr.DataArray) -> xr.DataArray:
    """PSS_output: the city's largest output location quotient (robustness measure of PSS).

    The formula of :func:`relative_specialisation` on output Y_rit (value added by industry)
    instead of employment: PSS_output_rt = max_i (Y_rit / Y_rt) / (Y_·it / Y_·t) (Duranton &
    Puga 2000 on output, as the paper's robustness check "相对专业化指数 of 产值", Table 4). An
    industry with no national output is skipped (0/0 has no quotient); a city-year with no
    output is NaN with a warning. Scale-free: the unit of output does not matter.
    """
    out = _largest_lq(output, "output", "output specialisation").rename("PSS_output")
    out.attrs["long_name"] = "output-based relative specialisation (largest output location " \
                             "quotient)"
    return out


def location_quotient(employment: xr.DataArray, industry: str) -> xr.DataArray:
    """Location quotient of one named industry, LQ_rit = s_rit / s_·it (Florence 1939).

    NaN where the city has no employment or the industry has no national employment.
    """
    E, da = _cube(employment)
    names = [str(x) for x in da.industry.values]
    if str(industry) not in names:
        raise InputError(f"industry {industry!r} is not in the employment table "
                         f"(industries: {_few(names, 6)})")
    i = names.index(str(industry))
    total = _city_totals(E, da, f"location quotient of {industry}")
    share = _national_shares(E)[:, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        lq = E[:, :, i] / total / np.where(share > 0, share, np.nan)[None, :]
    out = _city_year(lq, da, "LQ")
    out.attrs["long_name"] = f"location quotient of {industry}"
    return out


def krugman_index(employment: xr.DataArray) -> xr.DataArray:
    """Krugman specialisation index KSI_rt = Σ_i |s_rit − s_·it| (Krugman 1991, Geography and
    Trade), in [0, 2); NaN for a city-year with no employment."""
    E, da = _cube(employment)
    total = _city_totals(E, da, "Krugman index")
    share = np.nan_to_num(_national_shares(E))
    shares = E / total[:, :, None]
    shares -= share[None, :, :]
    np.abs(shares, out=shares)
    out = _city_year(shares.sum(axis=2), da, "KSI")
    out.attrs["long_name"] = "Krugman specialisation index"
    return out


def shannon_diversity(employment: xr.DataArray) -> xr.DataArray:
    """PSD: Shannon entropy of the city's industry shares, PSD_rt = Σ_i s_rit ln(1/s_rit).

    With 0·ln 0 = 0 (Shannon 1948; Frenken, Van Oort & Verburg 2007 for the regional use).
    Computed as ln E_rt − (Σ_i E_rit ln E_rit) / E_rt. A single-industry city has 0; a city-year
    with no employment is NaN.
    """
    E, da = _cube(employment)
    total = _city_totals(E, da, "Shannon diversity")
    entropy = np.log(total) - xlogy(E, E).sum(axis=2) / total
    entropy = np.maximum(entropy, 0.0)  # rounding can give -1e-16 for a single-industry city
    out = _city_year(entropy, da, "PSD")
    out.attrs["long_name"] = "Shannon diversity of industry shares"
    return out


def gini_diversity(employment: xr.DataArray) -> xr.DataArray:
    """1 − Gini coefficient of the city's K industry shares.

    With shares sorted ascending s_(1) <= … <= s_(K) (summing to 1),
    Gini = 2 Σ_k k s_(k) / K − (K + 1) / K (Gini 1912; the sorted-sum form of the mean absolute
    difference). 1 means equal shares in every industry; a single-industry city gets 1/K.
    K counts every industry of the table.
    """
    E, da = _cube(employment)
    total = _city_totals(E, da, "Gini diversity")
    K = E.shape[2]
    ordered = np.sort(E, axis=2)
    rank = np.arange(1, K + 1, dtype=np.float64)
    gini = 2.0 * (ordered @ rank) / (K * total) - (K + 1.0) / K
    out = _city_year(1.0 - gini, da, "PSD_gini")
    out.attrs["long_name"] = "1 - Gini of industry shares"
    return out


def relative_diversity(employment: xr.DataArray) -> xr.DataArray:
    """Relative diversity RDI_rt = 1 / Σ_i |s_rit − s_·it| (Duranton & Puga 2000).

    A city whose shares equal the national shares exactly has no finite value: NaN, warned.
    """
    ksi = krugman_index(employment)
    zero = ksi.values <= 0
    if zero.any():
        count, shown = _cells(zero, ksi)
        warnings.warn(f"relative diversity: {count} city-years have exactly the national "
                      f"industry mix (infinite diversity), set to NaN: {shown}", stacklevel=2)
    with np.errstate(divide="ignore"):
        rdi = np.where(zero, np.nan, 1.0 / np.where(zero, 1.0, ksi.values))
    out = ksi.copy(data=rdi).rename("RDI")
    out.attrs["long_name"] = "relative diversity (1 / Krugman index)"
    return out


def _min_max(da: xr.DataArray, what: str) -> np.ndarray:
    values = np.asarray(da.values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError(f"coupling coordination: {what} has no finite values")
    lo, hi = finite.min(), finite.max()
    if hi == lo:
        raise InputError(f"coupling coordination: {what} is constant ({lo:g}); it cannot be "
                         f"min-max normalised")
    return (values - lo) / (hi - lo)


def coupling_coordination(agglomeration: xr.DataArray, resilience: xr.DataArray) -> xr.DataArray:
    """Coupling-coordination degree D of agglomeration and resilience (docs/method.md §1 "Interact").

    U1, U2 = min–max normalised agglomeration and resilience over the sample (all non-NaN cells);
    C = 2·sqrt(U1·U2) / (U1 + U2) (0 when both are 0), T = (U1 + U2) / 2, D = sqrt(C·T) ∈ [0, 1]
    (the coupling-coordination model of physics applied to two subsystems, e.g. Liao 1999;
    Wang et al. 2014 for the urban use). NaN where either input is NaN.
    """
    try:
        a, r = xr.align(agglomeration, resilience, join="exact")
    except ValueError as err:
        raise InputError(f"coupling coordination: the two indices are not on the same cities "
                         f"and years ({str(err).splitlines()[0]})") from None
    u1 = _min_max(a, f"{a.name or 'agglomeration'}")
    u2 = _min_max(r, f"{r.name or 'resilience'}")
    both = u1 + u2
    with np.errstate(invalid="ignore", divide="ignore"):
        coupling = np.where(both > 0, 2.0 * np.sqrt(u1 * u2) / np.where(both > 0, both, 1.0), 0.0)
    coupling = np.where(np.isnan(both), np.nan, coupling)
    degree = np.sqrt(coupling * both / 2.0)
    name = f"Interact_{a.name}" if a.name else "Interact"
    out = a.copy(data=degree).rename(name)
    out.attrs = {"long_name": f"coupling-coordination degree of {a.name} and {r.name}",
                 "normalisation": "min-max over all non-missing cells"}
    return out


def period_mean(da: xr.DataArray, dim: str = "year") -> xr.DataArray:
    """Mean over ``dim`` of the defined (non-NaN) cells: x̄_r = (1/|T_r|) Σ_{t∈T_r} x_rt.

    The paper's 241-row cross-section (docs/method.md §1 choice). All-NaN rows stay NaN.
    """
    if dim not in da.dims:
        raise InputError(f"{da.name}: no dimension {dim!r} to average over")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are NaN by design
        out = da.mean(dim, skipna=True)
    out.attrs = dict(da.attrs)
    return out
