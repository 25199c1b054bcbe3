"""Moran's I against its closed form, permutation inference, year handling, the scatter plot."""

import numpy as np
import pytest
import xarray as xr

from data_prep.errors import InputError
from data_prep.exploratory import moran_scatter, morans_i
from data_prep.synthetic.simulate import lattice_weights
from data_prep.weights import weights_to_dataset

SIDE = 8


def lattice_dataset(seed=0):
    """8×8 rook lattice; 'smooth' is spatially autocorrelated, 'noise' is not; 3 years."""
    w = lattice_weights(SIDE, "rook")
    n = SIDE * SIDE
    rng = np.random.default_rng(seed)
    i, j = np.divmod(np.arange(n), SIDE)
    years = [2010, 2011, 2012]
    smooth = np.stack([i + j + 0.5 * rng.standard_normal(n) for _ in years], axis=1)
    noise = rng.standard_normal((n, len(years)))
    er = smooth.copy()
    er[:, -1] = np.nan  # ER is undefined in the last year
    ds = xr.Dataset(
        {"smooth": (("city", "year"), smooth), "noise": (("city", "year"), noise),
         "ER": (("city", "year"), er)},
        coords={"city": list(w.cities), "year": years})
    return weights_to_dataset(ds, w), w


def closed_form_I(y, W):
    z = y - y.mean()
    return len(y) / W.sum() * (z @ (W @ z)) / (z @ z)


def test_moran_matches_closed_form_and_detects_autocorrelation():
    ds, w = lattice_dataset()
    table = morans_i(ds, ["smooth", "noise"], permutations=199, seed=1)
    assert list(table.columns) == ["variable", "year", "I", "expected_I", "z", "p_value"]
    W = w.matrix.toarray()
    for _, row in table.iterrows():
        if row["year"] == "mean":
            y = ds[row["variable"]].mean("year").values
        else:
            y = ds[row["variable"]].sel(year=row["year"]).values
        assert row["I"] == pytest.approx(closed_form_I(y, W), rel=1e-10)
        assert row["expected_I"] == pytest.approx(-1 / (SIDE * SIDE - 1))
    smooth = table[table.variable == "smooth"]
    assert (smooth.I > 0.5).all() and np.allclose(smooth.p_value, 1 / 200)
    noise_mean = table[(table.variable == "noise") & (table.year == "mean")].iloc[0]
    assert abs(noise_mean.I) < 0.2 and noise_mean.p_value > 0.05


def test_permutation_inference_is_seeded_and_leaves_global_state_alone():
    ds, _ = lattice_dataset()
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    a = morans_i(ds, ["noise"], permutations=99, seed=7)
    after = np.random.random()
    b = morans_i(ds, ["noise"], permutations=99, seed=7)
    c = morans_i(ds, ["noise"], permutations=99, seed=8)
    assert before == after
    np.testing.assert_array_equal(a[["z", "p_value"]].values, b[["z", "p_value"]].values)
    assert not np.array_equal(a["z"].values, c["z"].values)


def test_years_and_the_mean_row():
    ds, _ = lattice_dataset()
    table = morans_i(ds, ["ER"], permutations=9)
    assert list(table.year) == [2010, 2011, "mean"]  # 2012 is all-NaN for ER
    mean_row = table[table.year == "mean"].iloc[0]
    y = np.nanmean(ds["ER"].values, axis=1)
    assert mean_row.I == pytest.approx(closed_form_I(y, lattice_weights(SIDE).matrix.toarray()))


def test_missing_cities_are_left_out_with_a_warning():
    ds, w = lattice_dataset()
    values = ds["smooth"].values.copy()
    values[0, 0] = np.nan
    ds["smooth"] = (("city", "year"), values)
    with pytest.warns(UserWarning, match="leaves out 1 cities"):
        table = morans_i(ds, ["smooth"], permutations=9)
    row = table[table.year == 2010].iloc[0]
    C = (w.matrix.toarray() > 0)[1:, 1:].astype(float)
    W = C / C.sum(axis=1, keepdims=True)
    assert row.I == pytest.approx(closed_form_I(values[1:, 0], W), rel=1e-10)


def test_bad_inputs():
    ds, _ = lattice_dataset()
    with pytest.raises(InputError, match="no variable 'PSS'"):
        morans_i(ds, ["PSS"])
    with pytest.raises(InputError, match="no spatial weights"):
        morans_i(ds.drop_vars(["weight_origin", "weight_neighbor", "weight_value"]), ["smooth"])
    with pytest.raises(InputError, match="year 1999"):
        moran_scatter(ds, "smooth", "x.png", year=1999)


def test_scatter_writes_a_png_and_returns_moran_i(tmp_path):
    ds, w = lattice_dataset()
    path = tmp_path / "moran_smooth.png"
    slope = moran_scatter(ds, "smooth", path, year=2011)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert slope == pytest.approx(closed_form_I(ds["smooth"].sel(year=2011).values,
                                                w.matrix.toarray()), rel=1e-10)
    assert moran_scatter(ds, "ER", tmp_path / "er.png") > 0.5  # period mean over defined years
    assert sorted(p.name for p in tmp_path.iterdir()) == ["er.png", "moran_smooth.png"]


def test_kept_islands_enter_with_a_zero_row():
    import warnings

    import scipy.sparse as sp

    from data_prep.weights import SpatialWeights

    base = lattice_weights(4, "rook").matrix
    W = sp.block_diag([base, sp.csr_matrix((1, 1))], format="csr")  # city 16 is an island
    w = SpatialWeights(W, tuple(f"c{i}" for i in range(17)), "R", True, "t", "keep", ("c16",), 2)
    y = np.random.default_rng(0).random((17, 2))
    ds = xr.Dataset({"v": (("city", "year"), y)}, coords={"city": list(w.cities), "year": [1, 2]})
    ds = weights_to_dataset(ds, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda's note on the island
        table = morans_i(ds, ["v"], permutations=19)
    # S0 = 16: the island's row is empty
    assert table.I.iloc[0] == pytest.approx(closed_form_I(y[:, 0], W.toarray()), rel=1e-10)


def test_moran_verdict_calls_a_checkerboard_dispersed_and_a_gradient_clustered():
    from models.study.run import moran_verdict

    ds, _ = lattice_dataset()
    i, j = np.divmod(np.arange(SIDE * SIDE), SIDE)
    board = ((i + j) % 2).astype(float)[:, None] + 0.01 * np.arange(3)  # the same every year
    ds["board"] = (("city", "year"), board)
    table = morans_i(ds, ["board", "smooth", "noise"], permutations=199, seed=1)
    row = table[(table.variable == "board") & (table.year == "mean")].iloc[0]
    # rook neighbours of a black square are all white: I = -1, and esda's folded p is tiny
    assert row["I"] == pytest.approx(-1.0) and row["p_value"] < 0.05
    text = moran_verdict(table)
    # the former verdict listed every variable with p < 0.05 as clustered, the board included
    assert "board is spatially dispersed (I < E[I])" in text
    assert "smooth is spatially clustered (I > E[I])" in text
    assert "noise is neither clustered nor dispersed" in text
