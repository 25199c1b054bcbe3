"""Spatial weights: contiguity on hand-checked grids, island policies, files, alignment, Dataset."""

import geopandas as gpd
import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr
from shapely.geometry import box

from data_prep.errors import InputError
from data_prep.weights import (SpatialWeights, weights_from_coordinates, weights_from_dataset,
                               weights_from_file, weights_from_gal,
                               weights_from_polygons, weights_to_dataset, write_gal, write_gwt)

# expected notes on the deliberately split maps below (tests about them use pytest.warns)
pytestmark = [pytest.mark.filterwarnings("ignore:.*disconnected components:UserWarning"),
              pytest.mark.filterwarnings("ignore:.*keep a zero row:UserWarning")]


def grid(side=3, island=False):
    """side × side unit squares named g<row><col>, optionally one far-away square 'isl'."""
    names = [f"g{i}{j}" for i in range(side) for j in range(side)]
    geoms = [box(j, i, j + 1, i + 1) for i in range(side) for j in range(side)]
    if island:
        names.append("isl")
        geoms.append(box(10, 10, 11, 11))
    return gpd.GeoDataFrame({"city": names}, geometry=geoms)


def neighbours(w, city):
    r = w.cities.index(city)
    row = w.matrix.getrow(r)
    return {w.cities[c] for c in row.indices}


def test_queen_and_rook_on_a_3x3_grid_match_hand_counts():
    queen = weights_from_polygons(grid(), contiguity="queen", transform="B")
    rook = weights_from_polygons(grid(), contiguity="rook", transform="B")
    assert neighbours(rook, "g11") == {"g01", "g10", "g12", "g21"}
    assert neighbours(queen, "g11") == {f"g{i}{j}" for i in range(3) for j in range(3)} - {"g11"}
    assert neighbours(rook, "g00") == {"g01", "g10"}
    assert neighbours(queen, "g00") == {"g01", "g10", "g11"}
    # links: rook 2·(2·3·2)=24, queen adds 2 diagonals per 2×2 block: 24 + 2·4·2 = 40
    assert rook.n_links == 24 and queen.n_links == 40
    assert queen.symmetric_relation and rook.symmetric_relation
    assert queen.n_components == 1 and queen.islands == ()


def test_row_standardisation_and_binary_transform():
    w = weights_from_polygons(grid(), contiguity="rook")
    np.testing.assert_allclose(np.asarray(w.matrix.sum(axis=1)).ravel(), 1.0)
    assert w.matrix[w.cities.index("g00"), w.cities.index("g01")] == pytest.approx(0.5)
    assert w.matrix.diagonal().sum() == 0
    b = weights_from_polygons(grid(), contiguity="rook", transform="B")
    assert set(np.unique(b.matrix.data)) == {1.0}


def test_alignment_to_a_requested_city_order():
    order = [f"g{i}{j}" for j in range(3) for i in range(3)]  # column-major
    w = weights_from_polygons(grid(), order, contiguity="rook", transform="B")
    assert w.cities == tuple(order)
    assert neighbours(w, "g00") == {"g01", "g10"}


def test_city_mismatch_names_the_cities():
    with pytest.raises(InputError, match="absent from the weights: nowhere"):
        weights_from_polygons(grid(), [f"g{i}{j}" for i in range(3) for j in range(3)]
                              + ["nowhere"])
    with pytest.raises(InputError, match="not among the cities: g22"):
        weights_from_polygons(grid(), [f"g{i}{j}" for i in range(3) for j in range(3)][:-1])


def test_island_policy_refuse_is_the_default_and_names_the_island():
    with pytest.raises(InputError, match="island cities with no neighbour: isl"):
        weights_from_polygons(grid(island=True))


def test_island_policy_keep_leaves_a_zero_row_and_warns():
    with pytest.warns(UserWarning, match="zero row.*isl"):
        w = weights_from_polygons(grid(island=True), island_policy="keep")
    r = w.cities.index("isl")
    assert w.matrix.getrow(r).nnz == 0 and w.matrix.getcol(r).nnz == 0
    assert w.islands == ("isl",) and w.n_components == 2
    assert sorted(w.component_sizes().tolist()) == [1, 9]


def test_island_policy_nearest_links_both_ways_to_the_nearest_centroid():
    w = weights_from_polygons(grid(island=True), island_policy="nearest", transform="B")
    assert neighbours(w, "isl") == {"g22"}  # centroid (2.5, 2.5) is the closest to (10.5, 10.5)
    assert "isl" in neighbours(w, "g22")
    assert w.symmetric_relation and w.n_components == 1 and w.islands == ("isl",)
    w2 = weights_from_polygons(grid(island=True), island_policy="nearest", k_islands=3,
                               transform="B")
    assert neighbours(w2, "isl") == {"g22", "g12", "g21"}


def test_components_are_reported_with_a_warning():
    g = grid()
    far = grid()
    far["city"] = "f" + far["city"]
    far["geometry"] = far.translate(20, 0)
    both = gpd.GeoDataFrame(
        {"city": list(g["city"]) + list(far["city"])},
        geometry=list(g.geometry) + list(far.geometry))
    with pytest.warns(UserWarning, match="2 disconnected components of sizes 9, 9"):
        w = weights_from_polygons(both)
    assert w.n_components == 2


def test_gal_round_trip_keeps_city_ids(tmp_path):
    w = weights_from_polygons(grid(island=True), island_policy="keep")
    write_gal(w, tmp_path / "w.gal")
    with pytest.warns(UserWarning, match="isl"):
        back = weights_from_gal(tmp_path / "w.gal", w.cities, island_policy="keep")
    assert back.cities == w.cities
    assert (back.matrix != w.matrix).nnz == 0
    with pytest.raises(InputError, match="island cities with no neighbour: isl"):
        weights_from_file(tmp_path / "w.gal")
    coords = {c: (0.5 + int(c[2]), 0.5 + int(c[1])) for c in w.cities if c != "isl"}
    coords["isl"] = (10.5, 10.5)
    near = weights_from_gal(tmp_path / "w.gal", island_policy="nearest", coordinates=coords)
    assert neighbours(near, "isl") == {"g22"}


def test_gwt_round_trip_keeps_weights(tmp_path):
    C = sp.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 3.0], [0, 4.0, 0]]))
    w = SpatialWeights(C, ("a", "b", "c"), "B", True, "hand", "refuse", (), 1)
    write_gwt(w, tmp_path / "w.gwt")
    back = weights_from_file(tmp_path / "w.gwt", ["c", "b", "a"], transform="R")
    assert back.cities == ("c", "b", "a")
    # row b: raw weights a=1, c=3 → 0.25, 0.75
    assert back.matrix[1, 2] == pytest.approx(0.25) and back.matrix[1, 0] == pytest.approx(0.75)
    assert back.symmetric_relation


def test_writers_refuse_names_with_spaces(tmp_path):
    w = SpatialWeights(sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]])), ("New York", "b"), "B",
                       True, "hand", "refuse", (), 1)
    with pytest.raises(InputError, match="New York"):
        write_gal(w, tmp_path / "w.gal")
    assert not (tmp_path / "w.gal").exists()


def test_knn_and_distance_band_against_brute_force():
    rng = np.random.default_rng(3)
    xy = rng.random((30, 2))
    cities = [f"p{i:02d}" for i in range(30)]
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    knn = weights_from_coordinates(xy, cities, k=4, transform="B")
    expect = np.zeros((30, 30))
    for r in range(30):
        expect[r, np.argsort(d[r])[:4]] = 1
    np.testing.assert_array_equal(knn.matrix.toarray(), expect)
    band = weights_from_coordinates(xy, cities, threshold=0.3, island_policy="keep",
                                    transform="B")
    np.testing.assert_array_equal(band.matrix.toarray(), (d <= 0.3).astype(float))
    assert band.symmetric_relation


def test_bad_inputs_have_plain_messages(tmp_path):
    with pytest.raises(InputError, match="not found"):
        weights_from_gal(tmp_path / "missing.gal")
    bad = tmp_path / "bad.gal"
    bad.write_text("2\na 1 extra\nb\n")
    with pytest.raises(InputError, match="bad.gal"):
        weights_from_gal(bad)
    with pytest.raises(InputError, match="unknown weights format"):
        weights_from_file(tmp_path / "w.txt")
    with pytest.raises(InputError, match="no column 'name'"):
        weights_from_polygons(grid(), id_column="name")
    with pytest.raises(InputError, match="exactly one of k"):
        weights_from_coordinates(np.zeros((3, 2)), ["a", "b", "c"])
    with pytest.raises(InputError, match="island_policy"):
        weights_from_polygons(grid(), island_policy="drop")
    with pytest.raises(InputError, match="repeat these cities: a"):
        weights_from_coordinates(np.eye(3, 2), ["a", "a", "c"], k=1)
    with pytest.raises(InputError, match="needs city coordinates"):
        write_gal(weights_from_polygons(grid(island=True), island_policy="keep"),
                  tmp_path / "i.gal") or weights_from_gal(tmp_path / "i.gal",
                                                          island_policy="nearest")


def test_dataset_round_trip_reorders_to_the_dataset_cities():
    w = weights_from_polygons(grid(island=True), island_policy="nearest")
    cities = list(reversed(w.cities))
    ds = xr.Dataset(coords={"city": cities})
    ds = weights_to_dataset(ds, w)
    assert ds.attrs["weights_transform"] == "R" and ds.attrs["island_policy"] == "nearest"
    assert ds.attrs["weights_symmetric_relation"] == "true"
    assert ds["weight_origin"].dims == ("link",)
    back = weights_from_dataset(ds)
    assert back.cities == tuple(cities)
    assert abs(back.matrix - w.aligned(cities).matrix).max() < 1e-15
    assert back.islands == ("isl",) and back.n_components == 1
    with pytest.raises(InputError, match="cities absent from the weights: zz"):
        weights_to_dataset(xr.Dataset(coords={"city": cities + ["zz"]}), w)
    with pytest.raises(InputError, match="no spatial weights"):
        weights_from_dataset(xr.Dataset(coords={"city": cities}))


@pytest.mark.parametrize("suffix", [".geojson", ".shp"])
def test_polygon_files_are_read_by_path(tmp_path, suffix):
    path = tmp_path / f"map{suffix}"
    grid(island=True).set_crs("EPSG:3857").to_file(path)
    w = weights_from_file(path, island_policy="nearest", contiguity="rook", transform="B")
    assert neighbours(w, "g11") == {"g01", "g10", "g12", "g21"}
    assert neighbours(w, "isl") == {"g22"}
    broken = tmp_path / f"broken{suffix}"
    broken.write_text("not a map")
    with pytest.raises(InputError, match=f"broken{suffix}"):
        weights_from_file(broken)


def test_gal_with_a_repeated_city_is_refused_with_its_line(tmp_path):
    from data_prep.weights import read_gal

    path = tmp_path / "dup.gal"
    path.write_text("3\na 1\nb\nb 1\na\na 1\nb\n")
    with pytest.raises(InputError, match=r"dup.gal line 6: city a has a second entry"):
        read_gal(path)
