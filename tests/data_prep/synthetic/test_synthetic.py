"""The embedded demo: shape, reproducibility, islands, Table-1 moments, spatial autocorrelation."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_prep.errors import InputError
from data_prep.exploratory import morans_i
from data_prep.synthetic.demo import COVARIATE_TARGETS, INDUSTRIES, demo_inputs
from data_prep.weights import weights_from_polygons, weights_to_dataset

COVARIATES = ["Gov", "PGDP", "Fdi", "Popden", "Market", "HumCap", "Rd", "RnD", "Fix_cap",
              "LnHsh", "LnFdi", "LnMar", "Tra", "Den", "LnCin", "LnTec", "LnPro"]


@pytest.fixture(scope="module")
def demo():
    return demo_inputs()


def employment_cube(demo):
    """(city, year, industry) array in the order of demo.cities, years, INDUSTRIES."""
    cube = (demo.employment.set_index(["city", "year", "industry"])["employment"]
            .to_xarray().sel(city=demo.cities["city"].to_numpy(), industry=list(INDUSTRIES)))
    return cube


def hand_indices(cube: xr.DataArray):
    """Martin sensitivity ER, max location quotient PSS, Shannon PSD, straight from METHOD §1."""
    E = cube.values  # n, T, K
    nat = E.sum(axis=0)
    g = (nat[1:] - nat[:-1]) / nat[:-1]
    dC = (g[None] * E[:, :-1]).sum(axis=2)
    dA = E[:, 1:].sum(axis=2) - E[:, :-1].sum(axis=2)
    ER = np.full(E.shape[:2], np.nan)
    ER[:, :-1] = (dA - dC) / np.abs(dC)
    s = E / E.sum(axis=2, keepdims=True)
    s_nat = nat / nat.sum(axis=1, keepdims=True)
    PSS = (s / s_nat[None]).max(axis=2)
    PSD = -(s * np.log(np.where(s > 0, s, 1.0))).sum(axis=2)
    return ER, PSS, PSD


def test_shape_names_and_years(demo):
    assert len(demo.cities) == 241 and list(demo.cities.city[:2]) == ["City001", "City002"]
    assert demo.employment.industry.nunique() == 19
    assert tuple(demo.employment.industry.unique()) == INDUSTRIES
    assert sorted(demo.employment.year.unique()) == list(range(2010, 2022))
    assert len(demo.employment) == 241 * 19 * 12
    assert list(demo.employment.columns) == ["city", "year", "industry", "employment"]
    assert (demo.employment.employment > 0).all()
    assert list(demo.covariates.columns) == ["city", "year"] + COVARIATES
    assert len(demo.covariates) == 241 * 12 and demo.covariates[COVARIATES].notna().all().all()
    assert list(demo.cities.columns) == ["city", "tier", "coastal", "capital", "rail_1930s",
                                         "popden_1984", "x", "y"]
    assert set(demo.cities.tier) == {1, 2, 3, 4} and (demo.cities.tier == 1).sum() == 4
    assert set(demo.cities.coastal) == {0, 1} and set(demo.cities.rail_1930s) == {0, 1}
    assert 20 <= demo.cities.capital.sum() <= 40
    assert list(demo.geometry.city) == list(demo.cities.city)
    cent = demo.geometry.geometry.centroid
    np.testing.assert_allclose(demo.cities.x, cent.x, atol=1e-3)
    assert demo.island_policy == "nearest" and demo.choices["island_policy"] == "nearest"


def test_same_seed_same_tables_different_seed_different(demo):
    again = demo_inputs()
    for name in ("employment", "covariates", "cities"):
        pd.testing.assert_frame_equal(getattr(demo, name), getattr(again, name))
    assert all(a.equals_exact(b, 0)
               for a, b in zip(demo.geometry.geometry, again.geometry.geometry))
    other = demo_inputs(seed=7)
    assert not np.allclose(other.employment.employment, demo.employment.employment)
    assert not np.allclose(other.cities.x, demo.cities.x)


def test_three_islands_touch_nobody_and_are_linked_by_the_nearest_policy(demo):
    with pytest.raises(InputError, match="island cities with no neighbour: City239, City240, "
                                         "City241"):
        weights_from_polygons(demo.geometry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one component: no warning expected
        w = demo.weights()
    assert w.islands == ("City239", "City240", "City241")
    assert w.n_components == 1 and w.symmetric_relation and w.island_policy == "nearest"
    assert demo.cities.set_index("city").loc[list(w.islands), "coastal"].eq(1).all()
    assert 0.05 < demo.cities.coastal.mean() < 0.3


def test_covariates_near_the_paper_table_1(demo):
    for name, (mean, sd) in COVARIATE_TARGETS.items():
        col = demo.covariates[name]
        assert col.mean() == pytest.approx(mean, rel=0.05, abs=0.01), name
        assert col.std() == pytest.approx(sd, rel=0.15), name
    assert (demo.covariates.Gov > 0).all() and (demo.covariates.Fdi > 0).all()
    np.testing.assert_allclose(demo.covariates.LnFdi, np.log(demo.covariates.Fdi), atol=1e-5)


def test_indices_have_paper_like_spreads_and_positive_spatial_autocorrelation(demo):
    cube = employment_cube(demo)
    ER, PSS, PSD = hand_indices(cube)
    assert 2.0 < PSS.mean() < 3.5 and 2.0 < PSD.mean() < 2.6 and 0.15 < PSD.std() < 0.4
    assert 0.3 < np.nanmean(ER) < 3 and 1.0 < np.nanstd(ER) < 5
    ds = xr.Dataset({v: (("city", "year"), a) for v, a in
                     {"ER": ER, "PSS": PSS, "PSD": PSD}.items()},
                    coords={"city": cube.city.values, "year": cube.year.values})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = weights_to_dataset(ds, demo.weights())
    table = morans_i(ds, permutations=199, seed=0)
    means = table[table.year == "mean"].set_index("variable")
    assert (means.I > 0.1).all() and (means.p_value < 0.05).all(), means


def test_demo_through_the_dataset_builder_has_significant_moran_of_er(demo):
    dataset = pytest.importorskip("data_prep.dataset")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dataset.build_dataset(demo.employment, weights=demo.weights(),
                                   covariates=demo.covariates, cities=demo.cities,
                                   synthetic=True)
    ER, PSS, PSD = hand_indices(employment_cube(demo))
    cities = demo.cities.city.values
    for name, ref in {"ER": ER, "PSS": PSS, "PSD": PSD}.items():
        np.testing.assert_allclose(ds[name].sel(city=cities).values, ref, rtol=1e-8)
    assert ds.attrs["island_policy"] == "nearest" and ds.attrs["synthetic"] == "true"
    table = morans_i(ds, ["ER"], permutations=199, seed=0)
    row = table[table.year == "mean"].iloc[0]
    assert row.I > 0.1 and row.p_value < 0.05


def test_demo_weights_have_a_real_spectrum_that_matches_w(demo):
    from data_prep.spectrum.exact import check_spectrum, eigenvalues

    w = demo.weights()
    eigs = eigenvalues(w)
    assert eigs.dtype == float and eigs.max() == pytest.approx(1.0) and eigs.min() >= -1 - 1e-12
    check_spectrum(eigs, w.matrix)
    np.testing.assert_allclose(np.sort(eigs), np.sort(np.linalg.eigvals(w.matrix.toarray()).real),
                               atol=1e-9)
