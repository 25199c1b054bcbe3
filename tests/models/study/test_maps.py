"""Maps: the Dataset's stored polygons, choropleths of indices and per-city effects, LISA labels.

The LISA test pays esda's one-off numba compilation (about 10 s on an idle machine).
"""

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from models.study import maps
from data_prep.dataset import cross_section, demo_dataset, load_dataset, panel_table, save_dataset
from data_prep.errors import InputError
from data_prep.weights import (to_libpysal, weights_from_dataset, weights_from_polygons,
                               weights_to_dataset)
from models.bayes.city_effects import city_effects

SIDE = 5


def grid_map():
    """A SIDE × SIDE grid of unit squares, cities named by position, in a metric CRS."""
    import geopandas as gpd
    from shapely.geometry import box

    names = [f"r{i}c{j}" for i in range(SIDE) for j in range(SIDE)]
    polys = [box(j, i, j + 1, i + 1) for i in range(SIDE) for j in range(SIDE)]
    return gpd.GeoDataFrame({"city": names}, geometry=polys, crs="EPSG:3857")


@pytest.fixture(scope="module")
def small():
    """A 25-city Dataset with indices over 3 years, queen weights and the stored map."""
    gdf = grid_map()
    w = weights_from_polygons(gdf)
    rng = np.random.default_rng(0)
    row = np.repeat(np.arange(SIDE), SIDE).astype(float)
    er = row[:, None] - 2 + 0.3 * rng.normal(size=(SIDE * SIDE, 3))  # a north-south gradient
    ds = xr.Dataset({"ER": (("city", "year"), er),
                     "PSS": (("city", "year"), rng.uniform(1, 3, (SIDE * SIDE, 3))),
                     "PSD": (("city", "year"), rng.uniform(1, 2, (SIDE * SIDE, 3)))},
                    coords={"city": list(gdf["city"]), "year": [2001, 2002, 2003]})
    return weights_to_dataset(ds, w), w


def map_panels(fig) -> int:
    return sum(1 for ax in fig.axes if ax.get_title() and ax.get_label() != "<colorbar>")


def test_map_is_stored_and_round_trips(small, tmp_path):
    ds, w = small
    assert w.crs == "EPSG:3857" and len(w.geometry) == SIDE * SIDE
    assert ds.attrs["geometry_crs"] == "EPSG:3857"
    back = load_dataset(save_dataset(ds, tmp_path / "d.nc"))
    gdf = maps.geometry_frame(back)
    assert list(gdf["city"]) == list(ds.city.values)
    assert gdf.geometry.equals(grid_map().geometry) and gdf.crs == grid_map().crs
    assert weights_from_dataset(back).geometry == w.geometry
    # the polygons are the map, not a variable of the models
    assert "geometry_wkt" not in cross_section(back).columns
    assert "geometry_wkt" not in panel_table(back).columns


def test_polygon_file_and_demo_carry_their_map(tmp_path):
    path = tmp_path / "map.geojson"
    grid_map().to_file(path, driver="GeoJSON")
    w = weights_from_polygons(path)
    assert sorted(w.geometry) == sorted(grid_map()["city"])
    demo = demo_dataset()
    assert demo["geometry_wkt"].dims == ("city",)
    assert maps.geometry_frame(demo).geometry.is_valid.all()


def test_index_and_effect_maps(small, tmp_path):
    ds, w = small
    panels = {f"{v} (period mean)": ds[v].mean("year").values for v in ("ER", "PSS", "PSD")}
    fig = maps.choropleth_figure(ds, panels, diverging=["ER (period mean)"])
    assert map_panels(fig) == 3
    plt.close(fig)
    path = maps.index_maps(ds, tmp_path / "indices.png")
    assert path.exists() and path.stat().st_size > 5000

    rng = np.random.default_rng(1)
    terms = ["W(ER)", "W(PSS)", "ER", "PSS", "x"]
    coef = np.full((2, 20, 2, len(terms)), np.nan)
    coef[:, :, 0, [0, 3, 4]] = [0.3, 0.2, 1.0] + 0.02 * rng.normal(size=(2, 20, 3))
    coef[:, :, 1, [1, 2, 4]] = [0.2, -0.3, 0.5] + 0.02 * rng.normal(size=(2, 20, 3))
    idata = az.InferenceData(posterior=xr.Dataset(
        {"coef": (("chain", "draw", "equation", "term"), coef)},
        coords={"equation": ["ER", "PSS"], "term": terms}))
    effects = city_effects(idata, weights_from_dataset(ds), max_draws=20)
    fig = maps.effect_map_figure(ds, effects, "ER", "PSS")
    assert map_panels(fig) == 4  # direct and total, posterior mean and sd
    plt.close(fig)
    path = maps.effect_maps(ds, effects, "ER", "PSS", tmp_path / "effects.png")
    assert path.exists() and path.stat().st_size > 5000
    with pytest.raises(InputError, match="effects: no variable 'nope'"):
        maps.effect_maps(ds, effects, "ER", "nope", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_uniform_effect_map_says_so_and_names_the_shock(small):
    ds, _ = small
    n = SIDE * SIDE
    rng = np.random.default_rng(3)
    values = np.empty((30, 3, 1, 1, n))
    values[:, 0] = 0.8 * (1 + 1e-4 * rng.normal(size=(30, 1, 1, n)))  # direct: flat up to noise
    values[:, 2] = np.linspace(0.5, 1.5, n) + 0.01 * rng.normal(size=(30, 1, 1, n))
    values[:, 1] = values[:, 2] - values[:, 0]
    effects = xr.Dataset({"city_effect": (("sample", "effect", "response", "variable", "city"),
                                          values)},
                         coords={"effect": ["direct", "indirect", "total"], "response": ["ER"],
                                 "variable": ["PSS"], "variable_kind": ("variable", ["shock"]),
                                 "city": list(ds["city"].values)})
    panels, kind = maps.effect_map_panels(effects, "ER", "PSS")
    assert kind == "shock"
    assert set(maps.uniform_panels(panels)) == {"direct, posterior mean"}
    assert maps.relative_span([1.0, 1.002]) == pytest.approx(0.002 / 1.001)
    assert maps.relative_span([-1.0, 1.0]) == np.inf
    fig = maps.effect_map_figure(ds, effects, "ER", "PSS")
    assert fig._suptitle.get_text().startswith(
        "Per-city response of ER to a unit shock to the PSS equation")
    titles = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    flat = [t for t in titles if t.startswith("direct, posterior mean")]
    assert len(flat) == 1 and "uniform: spans" in flat[0] and "% of its mean" in flat[0]
    low, high = titles[flat[0]].collections[0].get_clim()
    assert (low, high) == pytest.approx((0.8 * 0.95, 0.8 * 1.05), rel=1e-3)
    assert "total, posterior mean" in titles  # spread over cities: its own scale, no remark
    plt.close(fig)


def test_lisa_labels_match_esda(small, tmp_path):
    import esda

    ds, w = small
    table = maps.lisa(ds, "ER", permutations=199, seed=7)
    y = ds["ER"].mean("year").values
    ref = esda.Moran_Local(y, to_libpysal(weights_from_dataset(ds)), transformation="r",
                           permutations=199, seed=7)
    np.testing.assert_allclose(table["p_value"], ref.p_sim)
    # I and the quadrants by hand: I_r = (n-1) z_r (Wz)_r / z'z with z standardised
    z = (y - y.mean()) / y.std()
    lag = w.aligned(list(ds.city.values)).matrix @ z
    np.testing.assert_allclose(table["I"], (len(z) - 1) * z * lag / (z @ z), rtol=1e-10)
    hand = np.where(z > 0, np.where(lag > 0, "HH", "HL"), np.where(lag > 0, "LH", "LL"))
    np.testing.assert_array_equal(table["quadrant"], hand)
    expected = np.where(ref.p_sim < 0.05, hand, maps.NOT_SIGNIFICANT)
    np.testing.assert_array_equal(table["label"], expected)
    assert {"HH", "LL"} <= set(table["label"])  # the gradient makes clusters at both ends
    again = maps.lisa(ds, "ER", permutations=199, seed=7)
    assert again.equals(table)
    path, _ = maps.lisa_map(ds, tmp_path / "lisa.png", permutations=99, seed=1)
    assert path.exists() and path.stat().st_size > 5000


def test_bad_inputs(small, tmp_path):
    ds, _ = small
    with pytest.raises(InputError, match="holds no map"):
        maps.geometry_frame(ds.drop_vars("geometry_wkt"))
    with pytest.raises(InputError, match="map panel 'x': \\(3,\\) values for 25 cities"):
        maps.choropleth_figure(ds, {"x": np.zeros(3)})
    with pytest.raises(InputError, match="no variable 'GDP'"):
        maps.lisa(ds, "GDP")
    with pytest.raises(InputError, match="permutations must be at least 1"):
        maps.lisa(ds, "ER", permutations=0)
