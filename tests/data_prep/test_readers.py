"""Readers and the dataset builder: every bad-input case gives a one-line InputError naming the
file, column and offending rows or cities; fill policies; save/load round trip."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr

from data_prep.dataset import build_dataset, cross_section, load_dataset, save_dataset
from data_prep.errors import InputError
from data_prep.readers import read_city_attributes, read_covariates, read_employment


def long_table(cities=("A", "B", "C"), years=(2010, 2011, 2012), industries=("x", "y")):
    rng = np.random.default_rng(0)
    rows = [(c, y, i, float(rng.integers(1, 50))) for c in cities for y in years
            for i in industries]
    return pd.DataFrame(rows, columns=["city", "year", "industry", "employment"])


def write(frame: pd.DataFrame, path):
    frame.to_csv(path, index=False)
    return path


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_csv_and_parquet_give_the_same_cube(tmp_path):
    table = long_table()
    from_csv = read_employment(write(table, tmp_path / "e.csv"))
    table.to_parquet(tmp_path / "e.parquet")
    from_parquet = read_employment(tmp_path / "e.parquet")
    xr.testing.assert_identical(from_csv, from_parquet)
    assert from_csv.dims == ("city", "year", "industry")
    assert from_csv.sel(city="B", year=2011, industry="y") == \
        table.query("city == 'B' and year == 2011 and industry == 'y'").employment.item()


@pytest.mark.parametrize("mutate, pattern", [
    (lambda t: t.drop(columns="employment"), r"e\.csv: missing column\(s\) employment"),
    (lambda t: t.assign(employment=t.employment.where(t.index != 3, -5.0)),
     r"e\.csv: column employment is negative in lines 5 \(cities A\)"),
    (lambda t: t.assign(employment=t.employment.astype(object).where(t.index != 0, "12k")),
     r"e\.csv: column employment is not numeric in lines 2 \(values 12k\)"),
    (lambda t: t.assign(employment=t.employment.where(t.index != 2)),
     r"e\.csv: column employment is missing or not finite in lines 4"),
    (lambda t: pd.concat([t, t.iloc[[4]]]),
     r"e\.csv: duplicate \(city, year, industry\) rows: lines 6, 20, e\.g\. \(A, 2012, x\)"),
    (lambda t: t.assign(year=t.year.astype(float).where(t.index != 1, 2010.5)),
     r"e\.csv: column year is not a whole number in lines 3"),
    (lambda t: t.iloc[1:], r"unbalanced panel, 1 \(city, year, industry\) cells have no "
                           r"employment row: \(A, 2010, x\) \(choose fill policy"),
])
def test_bad_employment_tables(tmp_path, mutate, pattern):
    path = write(mutate(long_table()), tmp_path / "e.csv")
    with pytest.raises(InputError, match=pattern) as err:
        read_employment(path)
    one_line(err)


def test_fill_policies(tmp_path):
    table = long_table()
    holey = table[~((table.city == "B") & (table.year == 2012))]
    with pytest.raises(InputError, match="2 .* cells .*\\(B, 2012, x\\); \\(B, 2012, y\\)"):
        read_employment(holey)
    with pytest.warns(UserWarning, match="2 missing .* filled with employment 0"):
        zero = read_employment(holey, fill_policy="zero")
    assert (zero.sel(city="B", year=2012) == 0).all() and zero.sizes["city"] == 3
    with pytest.warns(UserWarning, match=r"dropped 1 cities .*: B"):
        dropped = read_employment(holey, fill_policy="drop")
    assert list(dropped.city.values) == ["A", "C"]
    with pytest.raises(InputError, match="fill policy must be one of"):
        read_employment(holey, fill_policy="guess")


def test_many_missing_cells_are_abbreviated():
    table = long_table(cities=[f"c{i}" for i in range(30)])
    with pytest.raises(InputError, match=r"30 \(city, year, industry\) cells .* \.\.\.") as err:
        read_employment(table[~((table.year == 2012) & (table.industry == "y"))])
    assert len(str(err.value)) < 400


def test_covariates_and_attributes(tmp_path):
    cities = ["A", "B", "C"]
    cov = pd.DataFrame({"city": ["A", "A", "B", "C"], "year": [2010, 2011, 2010, 2010],
                        "Gov": [0.1, 0.2, 0.3, 0.4]})
    with pytest.warns(UserWarning, match=r"2 \(city, year\) cells have no covariate row"):
        ds = read_covariates(cov, cities, [2010, 2011])
    assert ds.Gov.sel(city="A", year=2011) == 0.2 and np.isnan(ds.Gov.sel(city="B", year=2011))
    bad = write(cov.assign(city=["A", "A", "B", "Zed"]), tmp_path / "c.csv")
    with pytest.raises(InputError, match=r"c\.csv: column city has cities not in the "
                                         r"employment table: Zed"):
        read_covariates(bad, cities)
    dup = write(pd.concat([cov, cov.iloc[[0]]]), tmp_path / "d.csv")
    with pytest.raises(InputError, match=r"d\.csv: duplicate \(city, year\) rows: lines 2, 6"):
        read_covariates(dup, cities)
    text = write(cov.assign(Gov=["1", "x", "2", "3"]), tmp_path / "t.csv")
    with pytest.raises(InputError, match=r"t\.csv: column Gov is not numeric in lines 3"):
        read_covariates(text, cities)

    att = pd.DataFrame({"city": ["A", "B", "C"], "tier": [1, 2, 3], "name": ["a", "b", "c"],
                        "x": [0.5, 1.0, 2.0]})
    ds = read_city_attributes(att, cities)
    assert ds.tier.dtype == np.int64 and ds.name.values.tolist() == ["a", "b", "c"]
    unknown = write(att.assign(city=["A", "B", "Q"]), tmp_path / "k.csv")
    with pytest.raises(InputError, match=r"k\.csv: column city has cities not in the "
                                         r"employment table: Q"):
        read_city_attributes(unknown, cities)
    repeated = write(att.assign(city=["A", "B", "B"]), tmp_path / "r.csv")
    with pytest.raises(InputError, match=r"r\.csv: duplicate city rows: lines 3, 4 \(cities B\)"):
        read_city_attributes(repeated, cities)


def ring_weights(cities):
    from data_prep.weights import SpatialWeights

    n = len(cities)
    C = sp.csr_matrix((np.ones(2 * n), (np.r_[np.arange(n), np.arange(n)],
                                        np.r_[(np.arange(n) + 1) % n, (np.arange(n) - 1) % n])),
                      shape=(n, n))
    W = sp.csr_matrix(C / 2.0)
    return SpatialWeights(W, tuple(cities), "R", True, "ring", "refuse", (), 1)


def test_build_dataset_checks_weight_cities():
    pytest.importorskip("data_prep.weights")
    table = long_table(cities=("A", "B", "C", "D"))
    with pytest.raises(InputError, match=r"weights \(ring\): cities in the weights but not in the "
                                         r"employment table: E; cities in the employment table "
                                         r"but not in the weights: D") as err:
        build_dataset(table, weights=ring_weights(["A", "B", "C", "E"]))
    one_line(err)


def test_build_save_load_and_cross_section(tmp_path):
    pytest.importorskip("data_prep.spectrum.exact")
    table = long_table(cities=("A", "B", "C", "D"))
    cov = pd.DataFrame({"city": np.repeat(["A", "B", "C", "D"], 3),
                        "year": np.tile([2010, 2011, 2012], 4), "Gov": np.arange(12.0)})
    att = pd.DataFrame({"city": ["D", "C", "B", "A"], "tier": [4, 3, 2, 1]})
    ds = build_dataset(table, weights=ring_weights(["D", "C", "B", "A"]), covariates=cov,
                       cities=att, winsorize=0.05, source_files=("e.csv",))
    for v in ("ER", "ER_flag", "PSS", "PSD", "Interact_PSS", "Interact_PSD", "Gov", "tier",
              "weight_origin", "W_eigenvalues"):
        assert v in ds, v
    assert ds.tier.sel(city="A") == 1 and ds.attrs["synthetic"] == "false"
    choices = json.loads(ds.attrs["choices"])
    assert choices["winsorize"] == [0.05, 0.95] and choices["fill_policy"] == "refuse"
    # ring of 4: eigenvalues cos(2 pi k / 4) = 1, 0, 0, -1
    np.testing.assert_allclose(np.sort(ds.W_eigenvalues.values), [-1, 0, 0, 1], atol=1e-12)

    path = save_dataset(ds, tmp_path / "d.nc")
    back = load_dataset(path)
    xr.testing.assert_identical(ds, back)
    assert back.city.dtype.kind == "U" and back.ER_flag.dtype == bool

    cs = cross_section(back)
    assert list(cs.columns[:3]) == ["city", "ER", "PSS"] and "ER_flag" not in cs
    assert "employment" not in cs and "weight_value" not in cs
    a = cs.set_index("city").loc["A"]
    assert a.ER == pytest.approx(np.nanmean(ds.ER.sel(city="A").values))  # defined years only
    assert a.Gov == pytest.approx(1.0) and a.tier == 1
    flags = cross_section(back, ["ER_flag", "tier"])
    assert list(flags.columns) == ["city", "ER_flag", "tier"]
    with pytest.raises(InputError, match="no \\(city, year\\) or \\(city\\) variable named nope"):
        cross_section(back, ["nope"])


def test_save_is_atomic(tmp_path, monkeypatch):
    ds = xr.Dataset({"v": ("city", [1.0, 2.0])}, coords={"city": ["a", "b"]})
    target = tmp_path / "keep.nc"
    save_dataset(ds, target)
    before = target.read_bytes()

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError):
        save_dataset(ds * 2, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.nc"]
    with pytest.raises(InputError, match="not found"):
        load_dataset(tmp_path / "missing.nc")


def test_drop_policy_removes_the_dropped_cities_from_the_weights():
    pytest.importorskip("data_prep.weights")
    from data_prep.weights import SpatialWeights, weights_from_dataset

    table = long_table(cities=("A", "B", "C", "D", "E"))
    holey = table[~((table.city == "C") & (table.year == 2011))]
    with pytest.warns(UserWarning) as caught:
        ds = build_dataset(holey, weights=ring_weights(["A", "B", "C", "D", "E"]),
                           fill_policy="drop")
    messages = " | ".join(str(w.message) for w in caught)
    assert "dropped 1 cities" in messages and "removed the 1 cities dropped" in messages
    W = weights_from_dataset(ds).matrix.toarray()
    # ring A-B-C-D-E-A without C: B's only neighbour is A, D's only neighbour is E
    expected = np.array([[0, .5, 0, .5], [1, 0, 0, 0], [0, 0, 0, 1], [.5, 0, .5, 0]])
    np.testing.assert_allclose(W, expected)
    assert json.loads(ds.attrs["choices"])["dropped_cities"] == ["C"]

    path = SpatialWeights(sp.csr_matrix(np.array([[0, 1, 0], [.5, 0, .5], [0, 1, 0]])),
                          ("A", "B", "C"), "R", True, "path", "refuse", (), 1)
    holey = long_table()
    holey = holey[~((holey.city == "B") & (holey.year == 2010))]
    with pytest.raises(InputError, match=r"dropping cities B .* leaves cities without "
                                         r"neighbours: A, C"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_dataset(holey, weights=path, fill_policy="drop")


def test_dataframe_problems_are_located_by_index_label():
    table = long_table().set_axis(range(100, 118))
    table.loc[104, "employment"] = -2.0
    with pytest.raises(InputError, match=r"employment table: column employment is negative in "
                                         r"rows with index 104"):
        read_employment(table)
