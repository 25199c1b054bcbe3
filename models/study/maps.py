"""Maps of the study: choropleths of the indices and of per-city effects, and a LISA cluster map.

The map is the Dataset's ``geometry_wkt`` (city) variable — WKT polygons stored when the weights
come from a polygon file or the demo (:func:`data_prep.weights.weights_to_dataset`), CRS in
``attrs["geometry_crs"]``. Drawing is geopandas over matplotlib.

LISA (Anselin 1995, "Local indicators of spatial association", Geographical Analysis 27): the
local Moran I_r = z_r Σ_s w_rs z_s (z standardised) by ``esda.Moran_Local`` with the Dataset's W
(transform as stored), conditional permutation inference with ``permutations`` draws seeded by
``seed``. A city is labelled by its Moran-scatter quadrant — HH (high value, high neighbours),
LH, LL, HL — when its pseudo p-value (one-sided, (M+1)/(permutations+1)) is below ``alpha``,
else "not significant". No multiple-testing correction is applied (**choice**, as in Anselin
1995's maps): at alpha = 0.05 about 5 % of cities are flagged under no association.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from data_prep.errors import InputError  # noqa: E402
from data_prep.exploratory import city_values, subset_matrix  # noqa: E402
from data_prep.files import save_figure  # noqa: E402
from data_prep.weights import GEOMETRY_VAR, to_libpysal, weights_from_dataset  # noqa: E402

QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}  # esda's Moran_Local.q codes
NOT_SIGNIFICANT = "not significant"
LISA_COLOURS = {"HH": "#d7191c", "LL": "#2c7bb6", "LH": "#abd9e9", "HL": "#fdae61",
                NOT_SIGNIFICANT: "#e0e0e0"}
UNIFORM_SPAN = 0.01   # an effect map spanning less than 1 % of its mean is reported as uniform
UNIFORM_SCALE = 0.05  # ... and drawn on mean ± 5 %, so that its spread fills < 1/10 of the scale


def geometry_frame(ds: xr.Dataset):
    """GeoDataFrame (city, geometry) of the Dataset's map, in the Dataset's city order."""
    import geopandas as gpd
    from shapely import wkt

    if GEOMETRY_VAR not in ds:
        raise InputError("the dataset holds no map (geometry_wkt): build it with weights from a "
                         "polygon file, or use the demo")
    crs = str(ds.attrs.get("geometry_crs", "")) or None
    return gpd.GeoDataFrame({"city": np.asarray(ds["city"].values).astype(str)},
                            geometry=[wkt.loads(str(g)) for g in ds[GEOMETRY_VAR].values],
                            crs=crs)


def _choropleth(ax, gdf, values: np.ndarray, title: str, diverging: bool,
                limits: tuple[float, float] | None = None) -> None:
    from matplotlib.colors import TwoSlopeNorm

    frame = gdf.assign(value=np.asarray(values, dtype=float))
    kwargs = dict(column="value", legend=True, edgecolor="white", linewidth=0.2,
                  missing_kwds={"color": "lightgrey", "label": "missing"},
                  legend_kwds={"shrink": 0.7})
    finite = frame["value"][np.isfinite(frame["value"])]
    if limits is not None:
        kwargs.update(cmap="viridis", vmin=limits[0], vmax=limits[1])
    elif diverging and len(finite) and finite.min() < 0 < finite.max():
        kwargs.update(cmap="RdBu_r", norm=TwoSlopeNorm(0.0, finite.min(), finite.max()))
    else:
        kwargs.update(cmap="viridis")
    frame.plot(ax=ax, **kwargs)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def choropleths(ds: xr.Dataset, panels: Mapping[str, np.ndarray], path, **options) -> Path:
    """Write :func:`choropleth_figure` (same options) as PNG; returns the path."""
    return save_figure(choropleth_figure(ds, panels, **options), path)


def choropleth_figure(ds: xr.Dataset, panels: Mapping[str, np.ndarray], *,
                      diverging: Sequence[str] = (), columns: int = 3, title: str = "",
                      limits: Mapping[str, tuple[float, float]] | None = None):
    """One choropleth per entry of ``panels`` (title → per-city values in ``ds.city`` order);
    panels named in ``diverging`` use a red-blue scale centred on 0 when their values straddle
    it, panels named in ``limits`` a colour scale fixed to (low, high). Returns the matplotlib
    Figure (map axes titled by the panel names)."""
    gdf = geometry_frame(ds)
    for name, v in panels.items():
        if np.shape(v) != (len(gdf),):
            raise InputError(f"map panel {name!r}: {np.shape(v)} values for {len(gdf)} cities")
    k = len(panels)
    cols = min(columns, k)
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.0 * rows), squeeze=False)
    for ax, (name, v) in zip(axes.ravel(), panels.items()):
        _choropleth(ax, gdf, v, name, name in set(diverging), (limits or {}).get(name))
    for ax in axes.ravel()[k:]:
        ax.remove()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def index_maps(ds: xr.Dataset, path, variables: Sequence[str] = ("ER", "PSS", "PSD")) -> Path:
    """Choropleths of the period means (over the defined years) of ``variables``."""
    panels = {f"{v} (period mean)": city_values(ds, v, None) for v in variables}
    return choropleths(ds, panels, path, diverging=["ER (period mean)"])


def effect_maps(ds: xr.Dataset, effects: xr.Dataset, response: str, variable: str, path) -> Path:
    """Write :func:`effect_map_figure` as PNG; returns the path."""
    return save_figure(effect_map_figure(ds, effects, response, variable), path)


def effect_map_title(response: str, variable: str, kind: str) -> str:
    """What a per-city map shows, in words shared by the figure and its caption: a shock is the
    block [𝒜⁻¹]_{response, variable}, the response to a unit innovation in ``variable``'s own
    equation, not the effect of a change in ``variable`` (it has no coefficient of its own)."""
    if kind == "shock":
        return f"Per-city response of {response} to a unit shock to the {variable} equation"
    return f"Per-city impact of {variable} on {response}"


def effect_map_panels(effects: xr.Dataset, response: str,
                      variable: str) -> tuple[dict[str, np.ndarray], str]:
    """The four panels (direct / total × posterior mean / sd) of one per-city effect map and the
    variable's kind ("exogenous" or "shock"); InputError names an unknown response/variable."""
    da = effects["city_effect"]
    for coord, value in (("response", response), ("variable", variable)):
        if value not in set(map(str, da[coord].values)):
            raise InputError(f"effects: no {coord} {value!r} (have "
                             f"{', '.join(map(str, da[coord].values))})")
    sel = da.sel(response=response, variable=variable)
    mean, sd = sel.mean("sample"), sel.std("sample", ddof=1)
    panels = {"direct, posterior mean": mean.sel(effect="direct").values,
              "direct, posterior sd": sd.sel(effect="direct").values,
              "total, posterior mean": mean.sel(effect="total").values,
              "total, posterior sd": sd.sel(effect="total").values}
    kind = str(da["variable_kind"].sel(variable=variable).values) \
        if "variable_kind" in da.coords else "exogenous"
    return panels, kind


def relative_span(values) -> float:
    """(max − min) / |mean| of the finite values: inf when the mean is 0 or nothing is finite."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size or v.mean() == 0:
        return np.inf
    return float((v.max() - v.min()) / abs(v.mean()))


def uniform_panels(panels: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Panels whose values span less than :data:`UNIFORM_SPAN` of their mean → that span.

    Such a map is one number up to noise (a direct impact under a near-regular W is): colouring
    it over its own range would paint noise as geography.
    """
    spans = {name: relative_span(v) for name, v in panels.items()}
    return {name: span for name, span in spans.items() if span < UNIFORM_SPAN}


def effect_map_figure(ds: xr.Dataset, effects: xr.Dataset, response: str, variable: str):
    """Posterior mean and sd of the per-city direct and total effect of ``variable`` on
    ``response`` (``effects`` from :func:`models.bayes.city_effects.city_effects`): 4 panels.

    A panel that is uniform (:func:`uniform_panels`) says so in its title and is drawn on a
    colour scale fixed at its mean ± :data:`UNIFORM_SCALE` of it, so the noise shows as one
    colour.
    """
    cities = np.asarray(ds["city"].values).astype(str)
    if list(map(str, effects["city"].values)) != list(cities):
        raise InputError("effects: cities differ from the dataset's (order or names)")
    panels, kind = effect_map_panels(effects, response, variable)
    flat = uniform_panels(panels)
    titles = {name: (f"{name}\n(uniform: spans {100 * flat[name]:.2g} % of its mean)"
                     if name in flat else name) for name in panels}
    limits = {}
    for name in flat:
        m = float(np.nanmean(panels[name]))
        limits[titles[name]] = (m - UNIFORM_SCALE * abs(m), m + UNIFORM_SCALE * abs(m))
    draws = effects["city_effect"].sizes["sample"]
    return choropleth_figure(ds, {titles[k]: v for k, v in panels.items()}, columns=2,
                             diverging=[titles["direct, posterior mean"],
                                        titles["total, posterior mean"]],
                             limits=limits,
                             title=f"{effect_map_title(response, variable, kind)} "
                                   f"({draws} posterior draws)")


def lisa(ds: xr.Dataset, variable: str = "ER", *, year=None, permutations: int = 999,
         seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Local Moran per city: columns city, value, I, p_value, quadrant, label (module docstring).

    Cities without a value are left out (W restricted to the others, as in the global test).
    """
    import esda

    if permutations < 1:
        raise InputError(f"permutations must be at least 1, not {permutations}")
    weights = weights_from_dataset(ds)
    y = city_values(ds, variable, year)
    ok = np.isfinite(y)
    if ok.sum() < 3:
        raise InputError(f"{variable}: fewer than 3 cities with values")
    if np.std(y[ok]) == 0:
        raise InputError(f"{variable} is constant over the cities; LISA is undefined")
    if not ok.all():
        from dataclasses import replace

        keep = np.flatnonzero(ok)
        weights = replace(weights, matrix=subset_matrix(weights, keep),
                          cities=tuple(weights.cities[i] for i in keep))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libpysal's island notes; islands are reported upstream
        local = esda.Moran_Local(y[ok], to_libpysal(weights),
                                 transformation=weights.transform.lower(),
                                 permutations=permutations, seed=seed)
    quadrant = np.array([QUADRANTS[int(q)] for q in local.q])
    return pd.DataFrame({"city": list(weights.cities), "value": y[ok], "I": local.Is,
                         "p_value": local.p_sim, "quadrant": quadrant,
                         "label": np.where(local.p_sim < alpha, quadrant, NOT_SIGNIFICANT)})


def lisa_map(ds: xr.Dataset, path, variable: str = "ER", **options) -> tuple[Path, pd.DataFrame]:
    """LISA cluster map of ``variable`` (options of :func:`lisa`); returns (path, table)."""
    from matplotlib.patches import Patch

    table = lisa(ds, variable, **options)
    gdf = geometry_frame(ds).merge(table[["city", "label"]], on="city", how="left")
    gdf["label"] = gdf["label"].fillna("missing")
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    colours = {**LISA_COLOURS, "missing": "white"}
    gdf.plot(ax=ax, color=[colours[x] for x in gdf["label"]], edgecolor="grey", linewidth=0.2)
    counts = gdf["label"].value_counts()
    ax.legend(handles=[Patch(facecolor=colours[k], edgecolor="grey",
                             label=f"{k} ({counts.get(k, 0)})")
                       for k in colours if counts.get(k, 0) or k in LISA_COLOURS],
              loc="lower left", fontsize=8, frameon=False)
    alpha = options.get("alpha", 0.05)
    when = options.get("year")
    when = "period mean" if when in (None, "mean") else str(when)
    ax.set_title(f"LISA clusters of {variable} ({when}), p < {alpha:g}, "
                 f"{options.get('permutations', 999)} permutations", fontsize=10)
    ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, path), table
