"""Demo robustness inputs: industry output, city GDP and a region for each city.

Derived, reproducibly, from the embedded demo (:func:`data_prep.synthetic.demo.demo_inputs`), whatever
its employment looks like; nothing here is real data. Units: employment in thousand persons (the
demo's), output and GDP in 100 million yuan (亿元, the yearbook's unit of GDP).

Industry output (value added) of city r, industry i, year t:

    Y_rit = 10 · E_rit · p_i · exp(π_i (t − t0)) · exp(0.6 · (PGDP̄_r − mean_r PGDP̄_r))
                 · LQ_ri,t0^0.05 · exp(u_ri + v_rt + w_rit)

* p_i: labour productivity of industry i in the first year t0, million yuan of value added per
  urban-unit employee (``PRODUCTIVITY``; high in mining, utilities, finance and real estate, low
  in education and public management; agriculture high because its value added is produced
  mostly outside urban units); the factor 10 turns thousand persons × million yuan into 亿元;
* π_i: its yearly productivity growth in log points (``PRODUCTIVITY_GROWTH``, 3–9 %);
* city productivity from the development level: PGDP̄_r is the city's period mean of the PGDP
  covariate (log GDP per capita), elasticity 0.6 (``CITY_ELASTICITY``; below 1 because part of
  the per-capita gap is employment rate, not productivity). The period mean, not the yearly
  value, so that PGDP's year-to-year noise does not become GDP growth;
* localisation economies: productivity rises with the industry's base-year location quotient,
  elasticity 0.05 (``LOCALISATION``; within the 0.02–0.1 range surveyed by Combes & Gobillon
  2015, Handbook of Regional and Urban Economics 5). Without it the city and industry factors
  would cancel in the output location quotient and PSS_output would equal PSS up to noise;
* noise: a persistent city × industry effect u (sd 0.10), a city-year shock v (sd 0.02) and a
  cell shock w (sd 0.03), all Gaussian in logs.

City GDP is the sum of its industries' value added, GDP_rt = Σ_i Y_rit (亿元), computed from the
rounded output so the two tables agree exactly.

Region **(choice)**: the four official regions of China (East, Central, West, Northeast) from the
map coordinates. With u, v the city centroid's x, y rescaled to [0, 1] over the bounding box of
all city centroids (u west → east, v south → north):

    Northeast  if v ≥ 0.68 and u ≥ 0.60   (the north-east corner, as Liaoning–Heilongjiang)
    East       else if u ≥ 0.60           (the coastal band: the demo's coast faces east)
    Central    else if u ≥ 0.35
    West       otherwise

With the default seed: East 75, Central 74, West 66, Northeast 26 cities (China's 285
prefecture cities: 87, 80, 84, 34).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from data_prep.readers import read_employment

# million yuan of value added per urban-unit employee in the first year, by industry
PRODUCTIVITY: dict[str, float] = {
    "Agriculture, forestry, animal husbandry and fishery": 4.0,
    "Mining": 0.70,
    "Manufacturing": 0.55,
    "Electricity, gas and water": 0.80,
    "Construction": 0.25,
    "Transport, storage and post": 0.55,
    "Information transmission, computer services and software": 0.70,
    "Wholesale and retail trade": 1.20,
    "Accommodation and catering": 0.50,
    "Financial intermediation": 1.10,
    "Real estate": 1.40,
    "Leasing and business services": 0.60,
    "Scientific research and technical services": 0.40,
    "Water conservancy, environment and public facilities": 0.25,
    "Resident services and other services": 1.50,
    "Education": 0.22,
    "Health, social security and welfare": 0.30,
    "Culture, sports and entertainment": 0.35,
    "Public management and social organisation": 0.25,
}
# yearly productivity growth, log points
PRODUCTIVITY_GROWTH: dict[str, float] = {
    "Agriculture, forestry, animal husbandry and fishery": 0.04,
    "Mining": 0.03,
    "Manufacturing": 0.07,
    "Electricity, gas and water": 0.05,
    "Construction": 0.06,
    "Transport, storage and post": 0.05,
    "Information transmission, computer services and software": 0.09,
    "Wholesale and retail trade": 0.07,
    "Accommodation and catering": 0.05,
    "Financial intermediation": 0.08,
    "Real estate": 0.06,
    "Leasing and business services": 0.06,
    "Scientific research and technical services": 0.07,
    "Water conservancy, environment and public facilities": 0.04,
    "Resident services and other services": 0.05,
    "Education": 0.05,
    "Health, social security and welfare": 0.05,
    "Culture, sports and entertainment": 0.05,
    "Public management and social organisation": 0.04,
}
CITY_ELASTICITY = 0.6
LOCALISATION = 0.05
NOISE_SD = {"city_industry": 0.10, "city_year": 0.02, "cell": 0.03}
UNIT_FACTOR = 10.0  # thousand persons × million yuan per person → 100 million yuan
REGION_RULE = {"northeast_v": 0.68, "northeast_u": 0.60, "east_u": 0.60, "central_u": 0.35}
REGIONS = ("East", "Central", "West", "Northeast")


@dataclasses.dataclass
class DemoOutput:
    """Long output table (city, year, industry, output), GDP (city, year, GDP), region (city,
    region), and the choices made."""

    output: pd.DataFrame
    gdp: pd.DataFrame
    regions: pd.DataFrame
    choices: dict


def regions_from_coordinates(x, y) -> np.ndarray:
    """East / Central / West / Northeast from centroid coordinates (rule in the module doc)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    u = (x - x.min()) / (x.max() - x.min())
    v = (y - y.min()) / (y.max() - y.min())
    rule = REGION_RULE
    return np.where((v >= rule["northeast_v"]) & (u >= rule["northeast_u"]), "Northeast",
                    np.where(u >= rule["east_u"], "East",
                             np.where(u >= rule["central_u"], "Central", "West")))


def demo_output(demo) -> DemoOutput:
    """Industry output, GDP and regions for a :class:`data_prep.synthetic.demo.DemoInputs`.

    Same demo (same seed) → identical tables; the draws use their own stream seeded from
    ``demo.seed``, so the demo's own tables are untouched.
    """
    rng = np.random.default_rng([demo.seed, 20_21])
    E = read_employment(demo.employment)  # cities and industries sorted, validated
    n, T, K = E.shape
    industries = [str(i) for i in E.industry.values]
    default_p = float(np.median(list(PRODUCTIVITY.values())))
    default_g = float(np.median(list(PRODUCTIVITY_GROWTH.values())))
    p = np.array([PRODUCTIVITY.get(i, default_p) for i in industries])
    growth = np.array([PRODUCTIVITY_GROWTH.get(i, default_g) for i in industries])
    years = E.year.values
    industry_level = p[None, :] * np.exp(growth[None, :] * (years - years[0])[:, None])  # (T, K)

    pgdp = (demo.covariates.groupby("city")["PGDP"].mean()
            .reindex(E.city.values).to_numpy(dtype=float))
    city_level = np.exp(CITY_ELASTICITY * (pgdp - pgdp.mean()))  # (n,)

    values = E.values
    base = values[:, 0, :]
    national = base.sum(axis=0) / base.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        lq = (base / base.sum(axis=1, keepdims=True)) / national[None, :]
    localisation = np.where(np.isfinite(lq) & (lq > 0), lq, 1.0) ** LOCALISATION  # (n, K)

    noise = (NOISE_SD["city_industry"] * rng.standard_normal((n, 1, K))
             + NOISE_SD["city_year"] * rng.standard_normal((n, T, 1))
             + NOISE_SD["cell"] * rng.standard_normal((n, T, K)))
    Y = (UNIT_FACTOR * values * industry_level[None] * city_level[:, None, None]
         * localisation[:, None, :] * np.exp(noise)).round(4)

    cube = E.copy(data=Y).rename("output")
    table = cube.to_dataframe().reset_index()[["city", "year", "industry", "output"]]
    # the employment table's row order, so the two files read side by side
    output = demo.employment[["city", "year", "industry"]].merge(
        table, on=["city", "year", "industry"], how="left", validate="one_to_one")
    gdp = (output.groupby(["city", "year"], sort=False)["output"].sum()
           .rename("GDP").reset_index())
    regions = pd.DataFrame({"city": demo.cities["city"].to_numpy(),
                            "region": regions_from_coordinates(demo.cities["x"],
                                                               demo.cities["y"])})
    choices = {
        "output_unit": "100 million yuan (value added)", "gdp": "sum of industry output",
        "output_city_elasticity_pgdp": CITY_ELASTICITY, "output_localisation": LOCALISATION,
        "output_noise_sd": dict(NOISE_SD), "region_rule": dict(REGION_RULE),
    }
    return DemoOutput(output, gdp, regions, choices)


def with_output(demo):
    """(demo with covariate GDP and attribute region added, long output table)."""
    extra = demo_output(demo)
    covariates = demo.covariates.merge(extra.gdp, on=["city", "year"], how="left",
                                       validate="one_to_one")
    cities = demo.cities.merge(extra.regions, on="city", how="left", validate="one_to_one")
    choices = {**demo.choices, **extra.choices}
    return dataclasses.replace(demo, covariates=covariates, cities=cities,
                               choices=choices), extra.output
