"""Robustness measures (docs/method.md §1, §6): ER_GDP, PSS_output and PSD_gini by hand on tiny
tables, against an independent pandas route, the output reader's one-line errors, and
build_dataset storing them with their choices."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_prep import indices as ix
from data_prep.dataset import build_dataset
from data_prep.errors import InputError
from data_prep.readers import read_employment, read_output


def gdp_table(values: dict) -> xr.DataArray:
    cities = list(values)
    arr = np.array([values[c] for c in cities], dtype=float)
    return xr.DataArray(arr, dims=("city", "year"),
                        coords={"city": cities, "year": 2010 + np.arange(arr.shape[1])})


def cube(values: dict, industries=("x", "y", "z")) -> xr.DataArray:
    cities = list(values)
    arr = np.array([values[c] for c in cities], dtype=float)
    return xr.DataArray(arr, dims=("city", "year", "industry"),
                        coords={"city": cities, "year": 2010 + np.arange(arr.shape[1]),
                                "industry": list(industries)})


# ----------------------------------------------------------------------------- ER_GDP

def test_gdp_growth_change_national_benchmark_by_hand():
    # A's GDP falls in 2012. Growth A: +0.10, -0.10; B: +0.05, +0.10.
    # National: 2011 320/300 - 1 = 1/15; 2012 330/320 - 1 = 0.03125.
    gdp = gdp_table({"A": [100, 110, 99], "B": [200, 210, 231]})
    er = ix.gdp_growth_change(gdp)
    assert er.name == "ER_GDP" and er.dims == ("city", "year")
    np.testing.assert_allclose(er.sel(year=2010).values, [0.10 - 1 / 15, 0.05 - 1 / 15])
    np.testing.assert_allclose(er.sel(year=2011).values, [-0.10 - 0.03125, 0.10 - 0.03125])
    assert er.sel(year=2012).isnull().all()  # labelled t, like ER: no t+1 in the last year
    assert er.attrs["benchmark"] == "national"
    # unit-free: GDP in yuan or in 100 million yuan gives the same index
    xr.testing.assert_allclose(ix.gdp_growth_change(gdp * 1e8), er)


def test_gdp_growth_change_own_trend_by_hand():
    # A: growth 2011 +0.10, 2012 -0.10, 2013 +0.20 -> t=2011: -0.10 - 0.10 = -0.20;
    #    t=2012: 0.20 - mean(0.10, -0.10) = 0.20
    gdp = gdp_table({"A": [100, 110, 99, 118.8], "B": [50, 50, 55, 55]})
    er = ix.gdp_growth_change(gdp, benchmark="own_trend")
    assert er.sel(year=2010).isnull().all() and er.sel(year=2013).isnull().all()
    np.testing.assert_allclose(er.sel(city="A", year=[2011, 2012]).values, [-0.20, 0.20])
    # B: growth 0, 0.1, 0 -> t=2011: 0.1 - 0 = 0.1; t=2012: 0 - 0.05 = -0.05
    np.testing.assert_allclose(er.sel(city="B", year=[2011, 2012]).values, [0.10, -0.05])


def test_a_missing_gdp_cell_does_not_move_the_national_rate():
    base = ix.gdp_growth_change(gdp_table({"A": [100, 110, 99], "B": [200, 210, 231]}))
    holed = ix.gdp_growth_change(gdp_table({"A": [100, 110, 99], "B": [200, 210, 231],
                                            "C": [50, np.nan, 60]}))
    xr.testing.assert_allclose(holed.sel(city=["A", "B"]), base)
    assert holed.sel(city="C").isnull().all()


def test_gdp_growth_change_against_pandas():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"city": np.repeat([f"c{i}" for i in range(7)], 5),
                          "year": np.tile(np.arange(2000, 2005), 7),
                          "GDP": np.exp(rng.normal(5, 1, 35))})
    frame = frame.sort_values(["city", "year"])
    frame["next"] = frame.groupby("city")["GDP"].shift(-1)
    national = frame.groupby("year")[["GDP", "next"]].sum()
    frame["G"] = frame["year"].map(national["next"] / national["GDP"] - 1)
    frame["ref"] = frame["next"] / frame["GDP"] - 1 - frame["G"]
    gdp = frame.set_index(["city", "year"])["GDP"].to_xarray()
    er = ix.gdp_growth_change(gdp)
    ref = frame.set_index(["city", "year"])["ref"].to_xarray()
    np.testing.assert_allclose(er.values, ref.values, rtol=1e-12, equal_nan=True)
    # GDP-weighted, the city deviations from the national rate average to zero every year
    weighted = (er * gdp).sum("city").values[:-1]
    np.testing.assert_allclose(weighted, 0.0, atol=1e-9 * float(gdp.sum()))


@pytest.mark.parametrize("values, pattern", [
    ({"A": [100, 0, 99]}, r"GDP must be positive and finite, e\.g\. city A, year 2011 has 0"),
    ({"A": [100, 110, -5]}, r"city A, year 2012 has -5"),
    ({"A": [100]}, r"at least two years"),
])
def test_bad_gdp(values, pattern):
    with pytest.raises(InputError, match=pattern):
        ix.gdp_growth_change(gdp_table(values))
    with pytest.raises(InputError, match="benchmark must be one of national, own_trend"):
        ix.gdp_growth_change(gdp_table({"A": [1, 2]}), benchmark="regional")


# ----------------------------------------------------------------------------- PSS_output

def test_output_specialisation_by_hand():
    # Industry z has no output anywhere (skipped); B is a single-industry city.
    # 2010: national x 40, y 20 -> shares 2/3, 1/3. A: 1/3, 2/3 -> LQ 0.5, 2 -> 2.
    #       B: share x 1 -> LQ 1.5.
    # 2011: national x 45, y 18 -> 45/63, 18/63. A: 12/30, 18/30 -> LQ_y = 0.6 * 63/18 = 2.1;
    #       B: 63/45 = 1.4.
    Y = cube({"A": [[10, 20, 0], [12, 18, 0]], "B": [[30, 0, 0], [33, 0, 0]]})
    pss = ix.output_specialisation(Y)
    assert pss.name == "PSS_output"
    np.testing.assert_allclose(pss.sel(year=2010).values, [2.0, 1.5])
    np.testing.assert_allclose(pss.sel(year=2011).values, [2.1, 1.4])
    # the same formula as the employment-based index
    np.testing.assert_allclose(pss.values, ix.relative_specialisation(Y).values)


def test_output_specialisation_zero_output_city_and_negative_output():
    Y = cube({"A": [[10, 20, 5]], "B": [[0, 0, 0]]})
    with pytest.warns(UserWarning, match=r"output specialisation: 1 city-years have total "
                                         r"output 0 .*\(B, 2010\)"):
        pss = ix.output_specialisation(Y)
    assert np.isnan(pss.sel(city="B", year=2010)) and pss.sel(city="A", year=2010) == 1.0
    with pytest.raises(InputError, match=r"output is negative, e\.g\. city A, year 2010"):
        ix.output_specialisation(cube({"A": [[10, -1, 5]]}))


def test_gini_diversity_by_hand():
    # shares (1/4, 3/4, 0) sorted (0, 1/4, 3/4): Gini = 2(0 + 2/4 + 9/4)/3 - 4/3 = 1/2
    # single-industry city: 1 - (2 * 3/3 - 4/3) = 1/3 = 1/K
    g = ix.gini_diversity(cube({"A": [[10, 30, 0]], "B": [[30, 0, 0]], "C": [[5, 5, 5]]}))
    np.testing.assert_allclose(g.values[:, 0], [0.5, 1 / 3, 1.0])


# ----------------------------------------------------------------------------- reader

def long_tables(cities=("A", "B", "C"), years=(2010, 2011, 2012), industries=("x", "y")):
    rng = np.random.default_rng(1)
    rows = [(c, y, i) for c in cities for y in years for i in industries]
    keys = pd.DataFrame(rows, columns=["city", "year", "industry"])
    employment = keys.assign(employment=rng.integers(1, 50, len(keys)).astype(float))
    output = keys.assign(output=np.round(rng.uniform(1, 100, len(keys)), 3))
    return employment, output


def one_line(err: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(err.value)
    return str(err.value)


def test_read_output_aligns_with_employment(tmp_path):
    employment, output = long_tables()
    E = read_employment(employment)
    shuffled = output.sample(frac=1.0, random_state=0)
    shuffled.to_csv(tmp_path / "o.csv", index=False)
    Y = read_output(tmp_path / "o.csv", E)
    assert Y.dims == ("city", "year", "industry") and Y.name == "output"
    for dim in ("city", "year", "industry"):
        assert list(Y[dim].values) == list(E[dim].values)
    row = output.query("city == 'B' and year == 2011 and industry == 'y'")
    assert float(Y.sel(city="B", year=2011, industry="y")) == row.output.item()
    shuffled.to_parquet(tmp_path / "o.parquet")
    xr.testing.assert_identical(read_output(tmp_path / "o.parquet", E), Y)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda t: t.drop(columns="output"), r"o\.csv: missing column\(s\) output"),
    (lambda t: t.assign(output=t.output.where(t.index != 3, -2.0)),
     r"o\.csv: column output is negative in lines 5 \(cities A\)"),
    (lambda t: t.assign(city=t.city.where(t.index != 4, "Zed")),
     r"o\.csv: column city has cities not in the employment table: Zed"),
    (lambda t: t.assign(output=t.output.astype(object).where(t.index != 0, "12k")),
     r"o\.csv: column output is not numeric in lines 2 \(values 12k\)"),
    (lambda t: t.assign(output=t.output.where(t.index != 2)),
     r"o\.csv: column output is missing or not finite in lines 4"),
    (lambda t: t.assign(industry=t.industry.where(t.index != 1, "w")),
     r"o\.csv: column industry has industries not in the employment table: w"),
    (lambda t: t.assign(year=t.year.where(t.index != 1, 2030)),
     r"o\.csv: column year has years not in the employment table: 2030"),
    (lambda t: t[t.city != "C"], r"o\.csv: no output rows for cities C of the employment "
                                 r"table"),
    (lambda t: t[t.industry != "y"], r"o\.csv: no output rows for industries y"),
    (lambda t: t.iloc[1:], r"o\.csv: unbalanced panel, 1 \(city, year, industry\) cells have "
                           r"no output row: \(A, 2010, x\)$"),
    (lambda t: pd.concat([t, t.iloc[[4]]]), r"o\.csv: duplicate \(city, year, industry\) rows"),
])
def test_bad_output_tables(tmp_path, mutate, pattern):
    employment, output = long_tables()
    E = read_employment(employment)
    path = tmp_path / "o.csv"
    mutate(output).to_csv(path, index=False)
    with pytest.raises(InputError, match=pattern) as err:
        read_output(path, E)
    one_line(err)


def test_read_output_ignores_cities_dropped_from_employment():
    employment, output = long_tables()
    holey = employment[~((employment.city == "B") & (employment.year == 2011))]
    with pytest.warns(UserWarning, match="dropped 1 cities"):
        E = read_employment(holey, fill_policy="drop")
    Y = read_output(output, E)
    assert list(Y.city.values) == ["A", "C"]


# ----------------------------------------------------------------------------- build_dataset

def test_build_dataset_stores_the_robustness_measures():
    employment, output = long_tables(cities=("A", "B", "C", "D"))
    gdp = pd.DataFrame({"city": np.repeat(["A", "B", "C", "D"], 3),
                        "year": np.tile([2010, 2011, 2012], 4),
                        "GDP": [100, 110, 99, 200, 210, 231, 50, 55, 60, 80, 70, 90.0],
                        "Gov": np.arange(12.0)})
    ds = build_dataset(employment, covariates=gdp, output=output)
    E = read_employment(employment)
    Y = read_output(output, E)
    xr.testing.assert_allclose(ds.PSS_output.drop_attrs(),
                               ix.output_specialisation(Y).drop_attrs())
    xr.testing.assert_allclose(ds.PSD_gini.drop_attrs(), ix.gini_diversity(E).drop_attrs())
    np.testing.assert_allclose(ds.ER_GDP.values,
                               ix.gdp_growth_change(ds.GDP).values, equal_nan=True)
    assert ds.ER_GDP.sel(city="D", year=2010) == pytest.approx(70 / 80 - 1 - (445 / 430 - 1))
    for name in ("ER_GDP", "PSS_output", "PSD_gini"):
        assert ds[name].dims == ("city", "year") and ds[name].attrs["choice"]
    choices = json.loads(ds.attrs["choices"])
    assert "national benchmark" in choices["robustness_ER_GDP"]
    assert "output location quotient" in choices["robustness_PSS_output"]
    assert "Gini" in choices["robustness_PSD_gini"]

    # without GDP and output only PSD_gini; own-trend benchmark by option
    plain = build_dataset(employment, covariates=gdp.drop(columns="GDP"))
    assert "PSD_gini" in plain and "ER_GDP" not in plain and "PSS_output" not in plain
    own = build_dataset(employment, covariates=gdp, gdp_benchmark="own_trend")
    assert own.ER_GDP.attrs["benchmark"] == "own_trend"
    assert own.ER_GDP.sel(year=2010).isnull().all()

    # winsorising clips them too, and says so
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wins = build_dataset(employment, covariates=gdp, output=output, winsorize=0.1)
    assert set(json.loads(wins.attrs["choices"])["winsorized_variables"]) >= {
        "ER_GDP", "PSS_output", "PSD_gini"}
    assert float(wins.PSS_output.max()) < float(ds.PSS_output.max())

    # an output DataArray works as well as a table
    via_array = build_dataset(employment, output=Y.isel(city=[3, 2, 1, 0]))
    xr.testing.assert_allclose(via_array.PSS_output, ds.PSS_output)


def test_build_dataset_refuses_clashes_and_foreign_output():
    employment, output = long_tables()
    cov = pd.DataFrame({"city": ["A", "B", "C"], "year": 2010, "PSD_gini": [1.0, 2.0, 3.0]})
    with pytest.warns(UserWarning), pytest.raises(InputError, match="PSD_gini clash"):
        build_dataset(employment, covariates=cov)
    with pytest.raises(InputError, match=r"output table: column city has cities not in the "
                                         r"employment table: Q") as err:
        build_dataset(employment, output=output.assign(city=output.city.replace("C", "Q")))
    one_line(err)


def test_build_dataset_stores_er_by_the_national_benchmark_and_records_the_choice():
    employment, _ = long_tables(cities=("A", "B", "C", "D"))
    E = read_employment(employment)
    ds = build_dataset(employment)
    national = ix.sensitivity_index(E, benchmark="national")["ER"]
    np.testing.assert_allclose(ds.ER_national.values, national.values, equal_nan=True)
    np.testing.assert_allclose(ds.ER.values, ix.sensitivity_index(E)["ER"].values,
                               equal_nan=True)
    assert "aggregate national" in ds.ER_national.attrs["long_name"]
    choices = json.loads(ds.attrs["choices"])
    assert choices["er_benchmark"] == "industry_mix"
    assert "national employment growth" in choices["robustness_ER_national"]
    headline = build_dataset(employment, er_benchmark="national")
    np.testing.assert_allclose(headline.ER.values, national.values, equal_nan=True)
    assert json.loads(headline.attrs["choices"])["er_benchmark"] == "national"
    with pytest.raises(InputError, match="ER benchmark must be one of") as err:
        build_dataset(employment, er_benchmark="regional")
    one_line(err)
