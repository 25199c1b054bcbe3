"""The embedded demo: a synthetic study shaped like the paper's (241 cities, 19 industries).

Nothing here is real data. :func:`demo_inputs` draws, reproducibly from one seed:

* a map: 238 mainland cities as Voronoi cells of scattered points clipped to an irregular
  "country" whose eastern edge is sea coast, plus three small offshore island cities that touch
  nobody (the demo pipeline links them with island policy "nearest");
* spatially correlated city effects e = (I − 0.6 W)⁻¹ ε (a sparse LU solve, never a dense
  inverse) driving size, growth, specialisation and the covariates, so Moran's I of ER, PSS and
  PSD is clearly positive;
* employment E_rit for the 19 industries of the China City Statistical Yearbook, 2010–2021,
  SHAPED so that the study's indices follow a known structural truth
  (:mod:`data_prep.synthetic.employment`): the city period means of ER, PSS and PSD are one draw of
  the three-equation spatial simultaneous system of :mod:`data_prep.synthetic.truth` on this map's W
  and the period means of the covariates below, and the yearly values scatter around them with
  zero mean deviation (national employment falls into the 2015 and 2020 shock years). The
  truth is returned as ``DemoInputs.truth_json`` and stored by
  :func:`data_prep.dataset.demo_dataset` in ``attrs["truth"]`` (read it with
  :func:`demo_truth`, as a frame with :func:`demo_truth_frame`);
* covariates with means and spreads near the paper's Table 1, the factor-model regressors of its
  §5, and city attributes (tier, coastal, capital, historical instruments, centroid x, y).

Coordinates are in kilometres on a plane. Employment is in thousands of persons (not rounded:
the indices reproduce the targets to about 1e-12 of their sd).

With the default seed (the second draw of the errors; the first put a city-year's (PSS, PSD)
pair outside what shares can attain) the panel indices come out as: ER mean 0.98, sd 2.78,
range −12.5 to 11.3 (paper's Table 1: 1.97, 3.39, −19.9 to 18.9; the ER mean is not free: the index
obeys Σ_r ER_rt |ΔC_rt| = 0 every year, so a positive mean needs small cities to beat their
counterfactual, which the truth's negative Market and Popden slopes provide); PSS 2.79 ± 0.50
(seed 2.72 ± 3.88); PSD 2.15 ± 0.19 (seed 2.23 ± 0.23; the upper tail is bounded by the largest
entropy a city with a given PSS can have). Moran's I of the period means 0.46 (ER), 0.23 (PSS),
0.67 (PSD), all with permutation p = 0.005 (199 permutations). Generation takes about 4 s under
heavy machine load (two cores shared), dominated by the map and the shaping loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from data_prep import indices
from data_prep.errors import InputError
from data_prep.synthetic import truth as demo_system
from data_prep.synthetic.employment import demo_employment
from data_prep.weights import weights_from_polygons

INDUSTRIES: tuple[str, ...] = (
    "Agriculture, forestry, animal husbandry and fishery",
    "Mining",
    "Manufacturing",
    "Electricity, gas and water",
    "Construction",
    "Transport, storage and post",
    "Information transmission, computer services and software",
    "Wholesale and retail trade",
    "Accommodation and catering",
    "Financial intermediation",
    "Real estate",
    "Leasing and business services",
    "Scientific research and technical services",
    "Water conservancy, environment and public facilities",
    "Resident services and other services",
    "Education",
    "Health, social security and welfare",
    "Culture, sports and entertainment",
    "Public management and social organisation",
)
# national employment shares (urban units), roughly as in the yearbook
_BASE_SHARE = np.array([0.010, 0.035, 0.340, 0.022, 0.110, 0.045, 0.015, 0.040, 0.012, 0.035,
                        0.020, 0.025, 0.020, 0.016, 0.005, 0.115, 0.050, 0.008, 0.115])
_BASE_SHARE = _BASE_SHARE / _BASE_SHARE.sum()
# response of each industry to a national shock (multiplies the shock size)
_CYCLICALITY = np.array([0.6, 1.6, 1.4, 0.6, 1.5, 1.2, 0.5, 1.1, 1.8, 0.6,
                         1.3, 1.1, 0.5, 0.6, 1.3, 0.5, 0.4, 1.4, 0.4])
# trend growth by industry (log points per year)
_TREND = np.array([0.002, 0.0, 0.00, 0.01, 0.02, 0.015, 0.06, 0.01, 0.01, 0.035,
                   0.035, 0.04, 0.035, 0.02, 0.01, 0.01, 0.025, 0.02, 0.005])

YEARS: tuple[int, ...] = tuple(range(2010, 2022))
SHOCKS: dict[int, float] = {2015: 0.05, 2020: 0.07}  # year of the fall → size (log points)
N_MAINLAND, N_ISLANDS = 238, 3
RHO_EFFECTS = 0.6
ISLAND_POLICY = "nearest"

COVARIATE_TARGETS = {  # paper's Table 1: mean, sd
    "Gov": (0.171, 0.077), "PGDP": (10.4, 0.63), "Fdi": (0.019, 0.018), "Popden": (5.77, 0.90),
    "Market": (15.2, 0.98), "HumCap": (4.52, 1.17), "Rd": (2.27, 0.58), "RnD": (0.88, 2.19),
    "Fix_cap": (0.72, 0.22),
}


@dataclass
class DemoInputs:
    """The demo tables: long employment, covariates (city, year), city attributes, polygons."""

    employment: pd.DataFrame
    covariates: pd.DataFrame
    cities: pd.DataFrame
    geometry: "object"  # geopandas.GeoDataFrame with columns city, geometry
    seed: int
    island_policy: str = ISLAND_POLICY
    shock_years: tuple[int, ...] = tuple(SHOCKS)
    choices: dict = field(default_factory=dict)
    truth_json: str = ""
    targets: pd.DataFrame | None = None  # city period means the indices were shaped to hit

    def weights(self, transform: str = "R"):
        """Queen contiguity of the demo map, islands linked to their nearest city."""
        return weights_from_polygons(self.geometry, list(self.cities["city"]),
                                     island_policy=self.island_policy, transform=transform)

    @property
    def choices_json(self) -> str:
        return json.dumps(self.choices, sort_keys=True)


# ----------------------------------------------------------------------------- the map

def _country(rng: np.random.Generator):
    """An irregular star-shaped polygon about 2,400 × 1,900 km; its east-facing arc is coast."""
    from shapely.geometry import Polygon

    theta = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    phases = rng.uniform(0, 2 * np.pi, 4)
    radius = 1.0 + 0.10 * np.sin(2 * theta + phases[0]) + 0.07 * np.sin(3 * theta + phases[1]) \
        + 0.04 * np.sin(5 * theta + phases[2]) + 0.02 * np.sin(9 * theta + phases[3])
    x, y = 1200 * radius * np.cos(theta), 950 * radius * np.sin(theta)
    coast = (theta < np.radians(75)) | (theta > np.radians(260))  # north-east to south
    return Polygon(np.column_stack([x, y])), np.column_stack([x, y]), coast


def _coastline(ring: np.ndarray, coast: np.ndarray):
    from shapely.geometry import LineString, MultiLineString

    # the coast arc wraps around theta = 0: start it at the first coastal vertex after a gap
    start = int(np.flatnonzero(coast & ~np.roll(coast, 1))[0])
    idx = [(start + k) % len(coast) for k in range(len(coast))]
    arc = [ring[i] for i in idx if coast[i]]
    return MultiLineString([LineString(arc)])


def _scatter_points(rng, country, n: int) -> np.ndarray:
    """Points inside the country, denser towards the east coast, at least 35 km apart."""
    import shapely

    minx, miny, maxx, maxy = country.bounds
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        x = rng.uniform(minx, maxx, 4 * n)
        y = rng.uniform(miny, maxy, 4 * n)
        keep_p = 0.35 + 0.65 * (x - minx) / (maxx - minx)
        ok = shapely.contains_xy(country, x, y) & (rng.random(4 * n) < keep_p)
        for px, py in zip(x[ok], y[ok]):
            if len(pts) == n:
                break
            if not pts or np.min(np.hypot(np.array(pts)[:, 0] - px,
                                          np.array(pts)[:, 1] - py)) > 35:
                pts.append((px, py))
    return np.array(pts)


def _demo_map(rng: np.random.Generator):
    """(GeoDataFrame city/geometry, coastal flags) for N_MAINLAND + N_ISLANDS cities."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import MultiPoint, Point

    country, ring, coast = _country(rng)
    coastline = _coastline(ring, coast)
    pts = _scatter_points(rng, country, N_MAINLAND)
    order = np.lexsort((pts[:, 0], -pts[:, 1]))  # north to south, then west to east
    pts = pts[order]
    cells = shapely.voronoi_polygons(MultiPoint(pts), extend_to=country.buffer(500),
                                     ordered=True)
    polys = [shapely.set_precision(c.intersection(country), 0.001) for c in cells.geoms]
    # coastal: the cell's boundary runs along the coast for more than 1 km
    coastal = [bool(p.boundary.intersection(coastline.buffer(0.5)).length > 1.0) for p in polys]
    # three small offshore islands beyond the coast, far from one another
    islands = []
    for angle in np.radians([20.0, -15.0, -45.0])[:N_ISLANDS]:
        edge = np.array(shapely.get_coordinates(
            country.boundary.intersection(
                shapely.LineString([(0, 0), (4000 * np.cos(angle), 4000 * np.sin(angle))]))))[0]
        centre = edge + 120 * np.array([np.cos(angle), np.sin(angle)])
        islands.append(Point(centre).buffer(25, quad_segs=4))
    names = [f"City{i + 1:03d}" for i in range(N_MAINLAND + N_ISLANDS)]
    gdf = gpd.GeoDataFrame({"city": names}, geometry=polys + islands)
    return gdf, np.array(coastal + [True] * N_ISLANDS)


# ----------------------------------------------------------------------------- spatial effects

def _spatial_field(rng, W: sp.csr_matrix, k: int = 1, rho: float = RHO_EFFECTS) -> np.ndarray:
    """k standardised draws of (I − ρW)⁻¹ε, ε ~ N(0, I), by one sparse LU factorisation."""
    n = W.shape[0]
    lu = splu(sp.csc_matrix(sp.identity(n) - rho * W))
    out = lu.solve(rng.standard_normal((n, k)))
    return (out - out.mean(axis=0)) / out.std(axis=0)


def _standard(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


# ----------------------------------------------------------------------------- the panel

def demo_inputs(seed: int = 20240601) -> DemoInputs:
    """Draw the demo study (same seed → identical tables)."""
    rng = np.random.default_rng(seed)
    gdf, coastal = _demo_map(rng)
    W = weights_from_polygons(gdf, island_policy=ISLAND_POLICY).matrix  # one component: silent
    n, K, T = len(gdf), len(INDUSTRIES), len(YEARS)
    cent = gdf.geometry.centroid
    x, y = cent.x.to_numpy(), cent.y.to_numpy()
    east = _standard(x)

    # latent city factors, each spatially correlated
    f_size, f_growth, f_spec, f_dev, f_open, f_res, f_mix = _spatial_field(rng, W, 7).T
    size = 0.8 * f_size + 0.35 * east + 0.3 * coastal + 0.25 * rng.standard_normal(n)
    size = _standard(size)
    development = _standard(0.55 * f_dev + 0.45 * size + 0.3 * east
                            + 0.3 * rng.standard_normal(n))

    # city tiers and capitals: tier 1 the 4 largest, then 30, 70, rest
    rank = np.argsort(np.argsort(-size))
    tier = np.select([rank < 4, rank < 34, rank < 104], [1, 2, 3], 4)
    provinces = _provinces(rng, np.column_stack([x, y]), 27)
    capital = np.zeros(n, dtype=int)
    for p in np.unique(provinces):
        members = np.flatnonzero(provinces == p)
        capital[members[np.argmax(size[members])]] = 1
    capital[np.argsort(-size)[:36]] |= (rng.random(36) < 0.15).astype(int)  # sub-provincial

    # base industry mix (log shares) of the first year: size and spatially clustered mixes
    log_total = 5.0 + 0.9 * size + 0.15 * rng.standard_normal(n)  # thousands of persons
    spec_strength = np.exp(-0.45 + 0.5 * f_spec + 0.05 * rng.standard_normal(n))
    mix_fields = _spatial_field(rng, W, K)
    deviation = spec_strength[:, None] * (0.35 * mix_fields + 0.18 * rng.standard_normal((n, K)))
    # soft cap (LQ from the idiosyncratic mix ≲ e^2.4); resource cities form a mining belt
    mix = np.log(_BASE_SHARE)[None, :] + 2.4 * np.tanh(deviation / 2.4)
    mix[:, 1] += 1.5 * np.maximum(f_mix - 1.0, 0)  # resource cities: mining
    mix[:, 2] += 0.4 * _standard(0.5 * east + 0.5 * coastal)  # manufacturing near the coast

    covariates = _covariates(rng, W, gdf["city"].to_numpy(), size, development, east,
                             coastal, f_open, spec_strength)

    # national industry growth: trends, a fall in the shock years (by cyclicality), a rebound
    growth = np.empty((T - 1, K))
    for t in range(1, T):
        shock = SHOCKS.get(YEARS[t], 0.0)
        rebound = 0.5 * SHOCKS.get(YEARS[t] - 1, 0.0)
        growth[t - 1] = -_CYCLICALITY * shock if shock else 0.008 + _TREND + _CYCLICALITY * rebound
    drift = 0.03 * np.cumsum(rng.standard_normal((n, T - 1, K)), axis=1)
    log_base = mix[:, None, :] + np.concatenate(
        [np.zeros((n, 1, K)), np.cumsum(growth, axis=0)[None] + drift], axis=1)
    absorption = _standard(0.6 * f_res + 0.4 * rng.standard_normal(n))
    shock_years = np.array([YEARS[t] in SHOCKS for t in range(1, T)], dtype=float)
    X = covariates.groupby("city", sort=False)[list(demo_system.CONTROLS)].mean()
    E, truth, targets, record = demo_employment(
        rng, W, X.reset_index(drop=True), np.exp(log_total), log_base, _BASE_SHARE,
        np.expm1(growth), shock_years, absorption)

    employment = pd.DataFrame({
        "city": np.repeat(gdf["city"].to_numpy(), T * K),
        "year": np.tile(np.repeat(np.array(YEARS), K), n),
        "industry": np.tile(np.array(INDUSTRIES), n * T),
        "employment": E.reshape(-1),
    })

    popden_level = np.exp(covariates.groupby("city", sort=False)["Popden"].mean().to_numpy())
    rail_p = 1 / (1 + np.exp(-(-0.9 + 1.1 * size + 0.6 * east + 0.5 * coastal)))
    cities = pd.DataFrame({
        "city": gdf["city"].to_numpy(),
        "tier": tier.astype(int),
        "coastal": coastal.astype(int),
        "capital": capital.astype(int),
        "rail_1930s": (rng.random(n) < rail_p).astype(int),
        "popden_1984": (popden_level * np.exp(-0.35 + 0.25 * rng.standard_normal(n))).round(1),
        "x": x.round(3),
        "y": y.round(3),
    })
    choices = {
        "seed": seed, "n_cities": n, "n_islands": N_ISLANDS, "island_policy": ISLAND_POLICY,
        "contiguity": "queen", "rho_city_effects": RHO_EFFECTS,
        "shock_years": {str(k): v for k, v in SHOCKS.items()},
        "employment_unit": "thousand persons", "coordinates": "km, planar",
    }
    tolerance = _tolerance(employment, gdf["city"].to_numpy(), targets)
    # key order matters (equations in Σ's order, terms as in the formulas): no sort_keys
    truth_json = json.dumps(demo_system.truth_record(truth, tolerance, record))
    targets = targets[["ER", "PSS", "PSD"]].assign(city=gdf["city"].to_numpy())
    return DemoInputs(employment, covariates, cities, gdf, seed, ISLAND_POLICY,
                      tuple(SHOCKS), choices, truth_json, targets[["city", "ER", "PSS", "PSD"]])


def _tolerance(employment: pd.DataFrame, names: np.ndarray, targets: pd.DataFrame) -> dict:
    """Max |period mean of the computed index − target| / sd of the targets, per index.

    The indices are computed from the long employment table by :mod:`data_prep.indices`, exactly
    as the dataset builder does.
    """
    import xarray as xr

    n, T, K = len(names), len(YEARS), len(INDUSTRIES)
    cube = xr.DataArray(employment["employment"].to_numpy().reshape(n, T, K),
                        dims=indices.DIMS, coords={"city": names, "year": list(YEARS),
                                                   "industry": list(INDUSTRIES)})
    computed = {"ER": indices.sensitivity_index(cube)["ER"],
                "PSS": indices.relative_specialisation(cube),
                "PSD": indices.shannon_diversity(cube)}
    out = {}
    for name, da in computed.items():
        mean = indices.period_mean(da).values
        target = targets[name].to_numpy()
        out[name] = float(np.max(np.abs(mean - target)) / target.std())
    return out


def demo_truth(ds) -> dict:
    """The structural truth stored in a demo Dataset's ``attrs["truth"]`` (formulas,
    coefficients per equation and term on the raw cross-section scale, Σ, exclusions, the
    tolerance reached); InputError when the Dataset carries none."""
    text = ds.attrs.get("truth") if hasattr(ds, "attrs") else None
    if not text:
        raise InputError("the dataset carries no demo truth (attrs['truth']); only the embedded "
                         "demo has one")
    return demo_system.read_truth(text)


def demo_truth_frame(ds) -> pd.DataFrame:
    """The demo truth as a contract-2 style frame: equation, term, truth."""
    return demo_system.truth_frame(demo_truth(ds))


def _provinces(rng, xy: np.ndarray, k: int) -> np.ndarray:
    """Province labels: each city joins the nearest of k random seed cities."""
    from scipy.spatial import cKDTree

    seeds = xy[rng.choice(len(xy), size=k, replace=False)]
    return cKDTree(seeds).query(xy)[1]


def _covariates(rng, W, names, size, development, east, coastal, f_open, spec) -> pd.DataFrame:
    """The paper's Table 1 controls and §5 factor-model regressors, city level plus trends and noise."""
    n, T = len(names), len(YEARS)
    years = np.array(YEARS)
    trend = (years - years.mean()) / (years.max() - years.min())  # −0.5 … 0.5

    def panel(city_part, slope, noise, mean, sd, lo=None, hi=None, log=False):
        """A (n, T) panel standardised to ``mean``/``sd`` (on the log scale when ``log``)."""
        raw = (city_part[:, None] + slope * trend[None, :]
               + noise * rng.standard_normal((n, T)))
        raw = (raw - raw.mean()) / raw.std()
        if log:  # lognormal with the target mean and sd
            s2 = np.log1p((sd / mean) ** 2)
            out = np.exp(np.log(mean) - s2 / 2 + np.sqrt(s2) * raw)
        else:
            out = mean + sd * raw
        return np.clip(out, lo, hi)

    openness = _standard(0.6 * f_open + 0.4 * coastal + 0.3 * east)
    cols = {
        "Gov": panel(-0.45 * development - 0.2 * size + 0.6 * rng.standard_normal(n), 0.3, 0.3,
                     *COVARIATE_TARGETS["Gov"], lo=0.04, log=True),
        "PGDP": panel(development, 0.9, 0.15, *COVARIATE_TARGETS["PGDP"]),
        "Fdi": panel(openness, -0.3, 0.4, *COVARIATE_TARGETS["Fdi"], log=True),
        "Popden": panel(0.6 * size + 0.4 * east + 0.4 * rng.standard_normal(n), 0.05, 0.05,
                        *COVARIATE_TARGETS["Popden"]),
        "Market": panel(0.8 * size + 0.4 * development, 0.8, 0.1, *COVARIATE_TARGETS["Market"]),
        "HumCap": panel(0.5 * size + 0.4 * development + 0.8 * rng.standard_normal(n), 0.2, 0.3,
                        *COVARIATE_TARGETS["HumCap"]),
        "Rd": panel(0.4 * development + 0.6 * rng.standard_normal(n), 0.6, 0.2,
                    *COVARIATE_TARGETS["Rd"]),
        "RnD": panel(0.5 * development + 0.4 * size + 0.5 * rng.standard_normal(n), 0.7, 0.35,
                     *COVARIATE_TARGETS["RnD"]),
        "Fix_cap": panel(-0.3 * development + 0.7 * rng.standard_normal(n), 0.5, 0.4,
                         *COVARIATE_TARGETS["Fix_cap"], lo=0.08),
    }
    # factor-model regressors (paper's §5); logs of ratios, scales chosen to look plausible
    cols["LnHsh"] = panel(0.5 * spec + 0.3 * size, -0.6, 0.3, -1.2, 0.7)
    cols["LnFdi"] = np.log(cols["Fdi"])
    cols["LnMar"] = panel(0.4 * development - 0.3 * spec, 0.4, 0.2, -0.95, 0.3)
    cols["Tra"] = panel(-0.3 * size + 0.5 * rng.standard_normal(n), 0.5, 0.2, 1.6, 0.8, lo=0.05)
    cols["Den"] = panel(0.7 * size + 0.5 * development, 0.8, 0.15, 7.2, 1.1)
    cols["LnCin"] = panel(0.4 * spec + 0.3 * development, 0.6, 0.3, 3.9, 0.6)
    cols["LnTec"] = panel(0.6 * size + 0.5 * development, 1.0, 0.2, 9.6, 1.2)
    cols["LnPro"] = panel(0.7 * development, 0.8, 0.2, 11.3, 0.4)
    out = pd.DataFrame({"city": np.repeat(names, T), "year": np.tile(years, n)})
    for name, values in cols.items():
        out[name] = values.reshape(-1)
    return out
