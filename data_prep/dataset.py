"""Assemble, save and load the study Dataset (docs/contracts.md "Data model").

:func:`build_dataset` turns validated tables into one :class:`xarray.Dataset`: employment, the
indices ER / ER_flag / PSS / PSD and their coupling-coordination degrees, covariates, city
attributes, the spatial weights (COO on ``link``) and the spectrum of W, with provenance in attrs
(``synthetic``, ``source_files``, ``choices`` as JSON). :func:`cross_section` gives the one-row-
per-city table the models use. Files are NetCDF-4 through h5netcdf (string coordinates
round-trip), written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from data_prep import indices
from data_prep.errors import InputError
from data_prep.files import atomic_write
from data_prep.readers import (name_list, read_city_attributes, read_covariates, read_employment,
                               read_output)
from data_prep.spectrum.chooser import spectrum
from data_prep.spectrum.extremes import NoQuadrature
from data_prep.spectrum.quadrature import DEFAULT_THRESHOLD
from data_prep.spectrum.stored import spectrum_to_dataset
from data_prep.synthetic.demo import demo_inputs
from data_prep.synthetic.output import with_output
from data_prep.weights import (POLYGON_SUFFIXES, restrict_weights, weights_from_file,
                               weights_from_polygons, weights_to_dataset)

PSS_METHODS = ("max_lq", "krugman", "lq:<industry>")
PSD_METHODS = ("shannon", "gini", "relative_diversity")
ENGINE = "h5netcdf"


def _pss(employment: xr.DataArray, method: str) -> xr.DataArray:
    if method == "max_lq":
        return indices.relative_specialisation(employment)
    if method == "krugman":
        return indices.krugman_index(employment)
    if method.startswith("lq:"):
        return indices.location_quotient(employment, method[3:])
    raise InputError(f"pss_method must be one of {', '.join(PSS_METHODS)}, not {method!r}")


def _psd(employment: xr.DataArray, method: str) -> xr.DataArray:
    functions = {"shannon": indices.shannon_diversity, "gini": indices.gini_diversity,
                 "relative_diversity": indices.relative_diversity}
    if method not in functions:
        raise InputError(f"psd_method must be one of {', '.join(PSD_METHODS)}, not {method!r}")
    return functions[method](employment)


def _employment(employment, fill_policy: str) -> xr.DataArray:
    if isinstance(employment, xr.DataArray):
        if fill_policy != "refuse":
            raise InputError("fill_policy applies to a long employment table, not a DataArray")
        if set(employment.dims) != set(indices.DIMS):
            raise InputError(f"employment must have dims {indices.DIMS}, not {employment.dims}")
        return employment.transpose(*indices.DIMS).astype(np.float64).rename("employment")
    return read_employment(employment, fill_policy=fill_policy)


def _without_dropped(weights, dropped: Sequence[str]):
    """The weights restricted to the cities kept by fill policy 'drop' (re-row-standardised when
    W is row-standardised), with a warning; InputError if that leaves a city without neighbours."""
    drop = set(dropped) & set(weights.cities)
    if not drop:
        return weights
    keep = [c for c in weights.cities if c not in drop]
    restricted, _ = restrict_weights(
        weights, keep, island_policy="refuse",
        reason=f"dropping cities {name_list(sorted(drop))} (fill policy 'drop')")
    warnings.warn(f"weights ({weights.source}): removed the {len(drop)} cities dropped by fill "
                  f"policy 'drop' ({name_list(sorted(drop))})", stacklevel=3)
    return dataclasses.replace(restricted,
                               source=f"{weights.source} without {len(drop)} dropped cities")


def _load_weights(weights, cities: Sequence[str], island_policy: str, attributes,
                  symmetrise: str | None = None):
    """A SpatialWeights from a SpatialWeights or a weights file path (not yet aligned)."""
    if symmetrise is not None and hasattr(weights, "matrix"):
        raise InputError("symmetrise applies to a weights file; build SpatialWeights with "
                         "symmetrise='union' instead")
    if weights is None or hasattr(weights, "matrix"):
        return weights

    kwargs = {"island_policy": island_policy}
    if symmetrise is not None:
        if Path(str(weights)).suffix.lower() in POLYGON_SUFFIXES:
            raise InputError(f"{Path(str(weights)).name}: contiguity is already symmetric; "
                             f"symmetrise applies to GAL/GWT files")
        kwargs["symmetrise"] = symmetrise
    suffix = Path(str(weights)).suffix.lower()
    if suffix not in POLYGON_SUFFIXES and attributes is not None and \
            {"x", "y"} <= set(attributes.data_vars):
        kwargs["coordinates"] = pd.DataFrame({"city": attributes.city.values,
                                              "x": attributes["x"].values,
                                              "y": attributes["y"].values})
    return weights_from_file(weights, **kwargs)


def check_weight_cities(weights, cities: Sequence[str]) -> None:
    """InputError (one line) unless the weights cover exactly the data's cities."""
    in_w, in_d = set(weights.cities), set(str(c) for c in cities)
    extra = sorted(in_w - in_d)
    absent = sorted(in_d - in_w)
    if extra or absent:
        parts = []
        if extra:
            parts.append(f"in the weights but not in the employment table: {name_list(extra)}")
        if absent:
            parts.append(f"in the employment table but not in the weights: {name_list(absent)}")
        raise InputError(f"weights ({weights.source}): cities {'; cities '.join(parts)}")


def _robustness_measures(E: xr.DataArray, output, covs, gdp_benchmark: str,
                         winsorize, er_options: dict) -> xr.Dataset:
    """PSD_gini and ER_national always, ER_GDP with a GDP covariate, PSS_output with an output
    table. ``er_options``: the headline ER's threshold and keep_flagged, which ER_national
    shares (its winsorising is the common one below)."""
    measures = {"PSD_gini": indices.gini_diversity(E)}
    measures["PSD_gini"].attrs["choice"] = "PSD by 1 - Gini of the city's industry employment " \
                                           "shares"
    er_national = indices.sensitivity_index(E, benchmark="national", **er_options)["ER"]
    er_national.attrs["long_name"] = "Martin sensitivity index of employment against the " \
                                     "aggregate national growth rate"
    er_national.attrs["choice"] = ("ER by Martin's index with the aggregate national "
                                   "employment growth as the counterfactual (keeps the "
                                   "industry-mix channel)")
    measures["ER_national"] = er_national
    if covs is not None and "GDP" in covs:
        er_gdp = indices.gdp_growth_change(covs["GDP"], benchmark=gdp_benchmark)
        er_gdp.attrs["choice"] = (f"ER by GDP growth t->t+1 minus the {gdp_benchmark} benchmark "
                                  f"growth (covariate GDP)")
        measures["ER_GDP"] = er_gdp
    if output is not None:
        Y = output if isinstance(output, xr.DataArray) else read_output(output, E)
        if isinstance(output, xr.DataArray):
            try:
                Y = Y.transpose(*indices.DIMS).sel(city=E.city, year=E.year,
                                                   industry=E.industry)
            except (KeyError, ValueError) as err:
                raise InputError(f"output: not on the employment table's cities, years and "
                                 f"industries ({str(err).splitlines()[0]})") from None
        pss_output = indices.output_specialisation(Y)
        pss_output.attrs["choice"] = "PSS by the largest output location quotient"
        measures["PSS_output"] = pss_output
    if winsorize is not None:
        lower, upper = indices.winsor_levels(winsorize)
        measures = {k: indices.winsorize(v, lower, upper) for k, v in measures.items()}
    return xr.Dataset({k: v.rename(k) for k, v in measures.items()})


def _with_spectrum(ds: xr.Dataset, W, threshold: int | None, method: str) -> xr.Dataset:
    """The spectrum of W by the one chooser, stored with its choice (method, threshold, effort,
    seed) in ``attrs['spectrum_details']``; ``attrs['spectrum_method']`` is "symmetric" or
    "general" for exact eigenvalues and the quadrature's name otherwise."""
    try:
        result = spectrum(W.matrix,
                          threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                          method=method)
    except NoQuadrature as err:
        # the frequentist estimators need no spectrum: store none, and say why
        warnings.warn(f"the spectrum of W is not stored: {err}", stacklevel=3)
        return ds
    if result.weights is None:
        stored = "general" if np.iscomplexobj(result.nodes) else "symmetric"
        return spectrum_to_dataset(ds, result.nodes, stored, details=result.details)
    return spectrum_to_dataset(ds, result.nodes, result.method, weights=result.weights,
                               details=result.details)


def build_dataset(employment, *, weights=None, covariates=None, cities=None,
                  synthetic: bool = False, source_files: Sequence[str] = (),
                  er_threshold: float = indices.ER_THRESHOLD,
                  winsorize: float | tuple[float, float] | None = None,
                  pss_method: str = "max_lq", psd_method: str = "shannon",
                  fill_policy: str = "refuse", keep_flagged: bool = False,
                  coupling: bool = True, spectrum: bool = True,
                  island_policy: str = "refuse", output=None,
                  gdp_benchmark: str = "national", spectrum_threshold: int | None = None,
                  spectrum_method: str = "auto", symmetrise: str | None = None,
                  er_benchmark: str = "industry_mix") -> xr.Dataset:
    """The study Dataset from an employment table and optional weights, covariates, attributes.

    ``employment``: long table (path or DataFrame: city, year, industry, employment) or an
    ``employment(city, year, industry)`` DataArray. ``weights``: a
    :class:`data_prep.weights.SpatialWeights` or a weights file (``island_policy`` applies to a
    file); its cities must be exactly the employment table's. ``covariates`` / ``cities``: paths
    or DataFrames (see :mod:`data_prep.readers`).

    Indices: ER and ER_flag by :func:`indices.sensitivity_index` (``er_threshold``,
    ``keep_flagged``, ``winsorize``, ``er_benchmark``: "industry_mix", the default, or
    "national" for the aggregate national growth rate as the counterfactual); PSS by ``pss_method`` ("max_lq" relative specialisation,
    "krugman", or "lq:<industry>"); PSD by ``psd_method`` ("shannon", "gini",
    "relative_diversity"); ``winsorize`` (p or (lower, upper)) also clips PSS and PSD. With
    ``coupling``, ``Interact_PSS`` and ``Interact_PSD`` (coupling-coordination degree with ER).
    With weights and ``spectrum``, the spectrum of W by :func:`data_prep.spectrum.chooser.spectrum`
    (``spectrum_method``; "auto": exact eigenvalues up to ``spectrum_threshold`` cities, default
    ``quadrature.DEFAULT_THRESHOLD``, Chebyshev quadrature nodes and weights above), the choice
    recorded in attrs. ``symmetrise="union"`` makes a weights file's neighbour relation
    symmetric (``weights.symmetrised``).

    Robustness measures (docs/method.md §6, paper's Table 4), each with attrs naming the choice:
    ``PSD_gini`` (1 − Gini of the shares) and ``ER_national`` (ER against the aggregate
    national growth rate, whatever ``er_benchmark`` is) always; ``ER_GDP`` (:func:`indices.gdp_growth_change`
    against ``gdp_benchmark``) when a covariate ``GDP`` is given; ``PSS_output``
    (:func:`indices.output_specialisation`) when ``output`` (long table city, year, industry,
    output; path or DataFrame) is given. ``winsorize`` clips them too.
    """
    E = _employment(employment, fill_policy)
    city_names = [str(c) for c in E.city.values]
    attributes = None if cities is None else read_city_attributes(cities, city_names)
    covs = None if covariates is None else read_covariates(covariates, city_names,
                                                          E.year.values)
    W = _load_weights(weights, city_names, island_policy, attributes, symmetrise)
    if W is not None:
        dropped = [c for c in E.attrs.get("dropped_cities", "").split(",") if c]
        W = _without_dropped(W, dropped)
        check_weight_cities(W, city_names)

    er_options = {"threshold": er_threshold, "keep_flagged": keep_flagged}
    er = indices.sensitivity_index(E, winsorize=winsorize, benchmark=er_benchmark,
                                   **er_options)
    pss, psd = _pss(E, pss_method), _psd(E, psd_method)
    if winsorize is not None:
        lower, upper = indices.winsor_levels(winsorize)
        pss = indices.winsorize(pss, lower, upper)
        psd = indices.winsorize(psd, lower, upper)
    ds = xr.Dataset({"employment": E, "ER": er["ER"], "ER_flag": er["ER_flag"],
                     "PSS": pss.rename("PSS"), "PSD": psd.rename("PSD")})
    robustness = _robustness_measures(E, output, covs, gdp_benchmark, winsorize, er_options)
    ds = ds.merge(robustness)
    if coupling:
        for name in ("PSS", "PSD"):
            ds[f"Interact_{name}"] = indices.coupling_coordination(ds[name], ds["ER"])
    if covs is not None:
        clash = sorted(set(covs.data_vars) & set(ds.data_vars))
        if clash:
            raise InputError(f"covariates: column(s) {', '.join(clash)} clash with the indices")
        ds = ds.merge(covs)
    if attributes is not None:
        clash = sorted(set(attributes.data_vars) & set(ds.data_vars))
        if clash:
            raise InputError(f"city attributes: column(s) {', '.join(clash)} clash with other "
                             f"variables")
        ds = ds.merge(attributes)

    stored_method = None
    if W is not None:
        ds = weights_to_dataset(ds, W)
        if spectrum:
            ds = _with_spectrum(ds, W, spectrum_threshold, spectrum_method)
            stored_method = ds.attrs.get("spectrum_method")

    choices = {
        "er_index": "Martin et al. 2016 sensitivity index",
        "er_benchmark": er_benchmark,
        "er_threshold": er_threshold,
        "er_threshold_rule": "flag |counterfactual change| <= threshold x city employment",
        "er_flagged_cells": int(er["ER_flag"].sum()),
        "er_keep_flagged": keep_flagged,
        "winsorize": None if winsorize is None else list(indices.winsor_levels(winsorize)),
        "winsorized_variables": [] if winsorize is None else
        ["ER", "PSS", "PSD", *robustness.data_vars],
        "pss_method": pss_method, "psd_method": psd_method, "fill_policy": fill_policy,
        **{f"robustness_{v}": robustness[v].attrs["choice"] for v in robustness.data_vars},
        "dropped_cities": [c for c in E.attrs.get("dropped_cities", "").split(",") if c],
        "coupling": "min-max over all city-years; D = sqrt(C T)" if coupling else None,
        "island_policy": None if W is None else W.island_policy,
        "weights_transform": None if W is None else W.transform,
        "spectrum_method": stored_method,
        "cross_section": "period mean over defined years",
    }
    ds.attrs.update(synthetic="true" if synthetic else "false",
                    source_files=json.dumps([str(s) for s in source_files]),
                    choices=json.dumps(choices, sort_keys=True))
    return ds


def demo_dataset(seed: int = 20240601, *, island_policy: str | None = None, **options) -> xr.Dataset:
    """The embedded synthetic study (:func:`data_prep.synthetic.demo.demo_inputs`) as a Dataset.

    The demo goes through the same :func:`build_dataset` as a user's files; its weights are the
    queen contiguity of the synthetic map with the island cities linked to their nearest city
    (the demo's ``island_policy``, overridable). ``options`` are passed to :func:`build_dataset`.
    The robustness inputs (covariate GDP, attribute region, industry output) come from
    :mod:`data_prep.synthetic.output`. ``attrs["truth"]`` holds the structural system the demo's
    indices follow (JSON; read it with :func:`data_prep.synthetic.demo.demo_truth`), unless
    ``options`` change the indices or W.
    """
    demo, output = with_output(demo_inputs(seed))  # GDP, region and industry output
    weights = weights_from_polygons(demo.geometry, list(demo.cities["city"]),
                                    island_policy=island_policy or demo.island_policy)
    ds = build_dataset(demo.employment, weights=weights, covariates=demo.covariates,
                       cities=demo.cities, output=output, synthetic=True,
                       source_files=(f"embedded demo, seed {seed}",), **options)
    # the indices follow the truth only as built: no winsorising, the demo's W, default indices
    as_built = (not options.get("winsorize") and island_policy in (None, demo.island_policy)
                and options.get("pss_method", "max_lq") == "max_lq"
                and options.get("psd_method", "shannon") == "shannon"
                and options.get("er_benchmark", "industry_mix") == "industry_mix"
                and not bool(ds["ER_flag"].any()))
    if as_built:
        ds.attrs["truth"] = demo.truth_json  # read with data_prep.synthetic.demo.demo_truth
    return ds


def save_dataset(ds: xr.Dataset, path) -> Path:
    """Write ``ds`` as NetCDF-4 (h5netcdf) atomically; nothing is left behind on failure."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine=ENGINE))


def load_dataset(path) -> xr.Dataset:
    """Read a Dataset written by :func:`save_dataset` into memory (city as str, year as int)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: dataset file not found")
    try:
        ds = xr.load_dataset(path, engine=ENGINE)
    except Exception as err:
        raise InputError(f"{path}: not a readable NetCDF dataset "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
                         ) from None
    coords = {}
    for name, kind in (("city", str), ("industry", str), ("year", np.int64)):
        if name in ds.coords:
            coords[name] = np.asarray(ds[name].values).astype(kind)
    return ds.assign_coords(coords)


def cross_section(ds: xr.Dataset, variables: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per city: ``city`` first, then the period mean of every numeric ``(city, year)``
    variable (ER over its defined years, :func:`indices.period_mean`) and every ``(city)``
    attribute, in the dataset's order.

    Boolean (city, year) variables (``ER_flag``) are left out unless named in ``variables``
    (their mean is the share of flagged years). Employment, weights, the map (``geometry_wkt``)
    and the spectrum are never included.
    """
    if "city" not in ds.coords:
        raise InputError("the dataset has no 'city' coordinate")
    eligible = [v for v, da in ds.data_vars.items() if da.dims in (("city", "year"), ("city",))
                and v != "geometry_wkt"]  # the map's polygons are not a variable
    if variables is None:
        chosen = [v for v in eligible
                  if not (ds[v].dims == ("city", "year") and ds[v].dtype == bool)
                  and (ds[v].dtype.kind in "biuf" or ds[v].dims == ("city",))]
    else:
        unknown = [v for v in variables if v not in eligible]
        if unknown:
            raise InputError(f"cross_section: no (city, year) or (city) variable named "
                             f"{', '.join(unknown)} (available: {name_list(eligible, 12)})")
        chosen = list(variables)
    columns = {"city": np.asarray(ds.city.values).astype(str)}
    for name in chosen:
        da = ds[name]
        if da.dims == ("city", "year"):
            if da.dtype.kind not in "biuf":
                raise InputError(f"cross_section: variable {name} is not numeric")
            da = indices.period_mean(da.astype(np.float64))
        columns[name] = np.asarray(da.transpose("city").values)
    return pd.DataFrame(columns)


def panel_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per (city, year): every numeric (city, year) variable and every city attribute.

    Years in which ER is undefined for every city (the last year: a change needs a next year)
    are dropped, so the panel stays balanced. Raises InputError without (city, year) variables.
    """
    panel = [v for v, da in ds.data_vars.items() if da.dims == ("city", "year")
             and da.dtype.kind in "iuf"]
    if not panel:
        raise InputError("the dataset has no numeric (city, year) variables for a panel")
    frame = ds[panel].to_dataframe().reset_index()
    if "ER" in panel:
        undefined = frame.groupby("year")["ER"].apply(lambda s: s.isna().all())
        frame = frame[~frame["year"].isin(undefined[undefined].index)]
    attrs = [v for v, da in ds.data_vars.items() if da.dims == ("city",) and v != "geometry_wkt"]
    if attrs:
        frame = frame.merge(ds[attrs].to_dataframe().reset_index(), on="city")
    return frame.reset_index(drop=True)
