"""Indices against hand-computed values on tiny tables and a brute-force loop reference."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import xarray as xr

from data_prep import indices as ix
from data_prep.errors import InputError


def cube(values: dict, industries=("x", "y", "z")) -> xr.DataArray:
    """values: city -> list over years of lists over industries."""
    cities = list(values)
    arr = np.array([values[c] for c in cities], dtype=float)
    return xr.DataArray(arr, dims=("city", "year", "industry"),
                        coords={"city": cities, "year": 2010 + np.arange(arr.shape[1]),
                                "industry": list(industries)})


@pytest.fixture
def tiny():
    # A mixed city; B a single-industry city; industry z has zero employment everywhere.
    return cube({"A": [[10, 20, 0], [12, 18, 0]],
                 "B": [[30, 0, 0], [33, 0, 0]]})


def test_sensitivity_index_by_hand(tiny):
    # g_x = 45/40 - 1 = 0.125, g_y = 18/20 - 1 = -0.1, g_z = 0 (no national employment)
    # A: dE^C = 1.25 - 2 = -0.75, dE^A = 0  -> ER = 0.75 / 0.75 = 1
    # B: dE^C = 3.75,             dE^A = 3  -> ER = -0.75 / 3.75 = -0.2
    out = ix.sensitivity_index(tiny)
    np.testing.assert_allclose(out.ER.sel(year=2010).values, [1.0, -0.2])
    assert out.ER.sel(year=2011).isnull().all()
    assert not out.ER_flag.any()
    assert out.ER_flag.dtype == bool and out.ER.dims == ("city", "year")


def test_near_zero_counterfactual_is_flagged_and_nan():
    # national g_x = +0.1, g_y = -0.1; P's counterfactual change 1 - 1 = 0; Q: 1 - 3 = -2
    da = cube({"P": [[10, 10], [11, 9]], "Q": [[10, 30], [11, 27]]}, industries=("x", "y"))
    with pytest.warns(UserWarning, match=r"1 city-years .*\(P, 2010\)"):
        out = ix.sensitivity_index(da)
    assert out.ER_flag.sel(city="P", year=2010) and not out.ER_flag.sel(city="Q", year=2010)
    assert np.isnan(out.ER.sel(city="P", year=2010))
    assert out.ER.sel(city="Q", year=2010) == pytest.approx(0.0, abs=1e-12)  # (-2 - -2)/2
    with pytest.warns(UserWarning, match="kept"):
        kept = ix.sensitivity_index(da, keep_flagged=True)
    p = float(kept.ER.sel(city="P", year=2010))
    # dE^A = 0 and dE^C is 0 up to rounding: the ratio is -sign(dE^C) (or NaN if exactly 0),
    # meaningless, which is why the flag stays on the kept cell
    assert kept.ER_flag.sel(city="P", year=2010) and (np.isnan(p) or abs(p) == 1.0)
    # the threshold is relative to the city's size: |dE^C_Q| / E_Q = 2 / 40 = 0.05
    with pytest.warns(UserWarning, match="2 city-years"):
        strict = ix.sensitivity_index(da, threshold=0.06)
    assert strict.ER_flag.sel(year=2010).all()
    with pytest.warns(UserWarning, match="1 city-years"):
        assert not ix.sensitivity_index(da, threshold=0.04).ER_flag.sel(city="Q", year=2010)


def test_zero_total_city_gets_nan_and_a_warning(tiny):
    da = xr.concat([tiny, cube({"Z": [[0, 0, 0], [0, 0, 0]]})], dim="city")
    with pytest.warns(UserWarning, match=r"total employment 0 .*\(Z, 2010\)"):
        pss = ix.relative_specialisation(da)
    assert pss.sel(city="Z").isnull().all() and pss.sel(city="A").notnull().all()
    with pytest.warns(UserWarning, match="total employment 0"):
        assert ix.shannon_diversity(da).sel(city="Z").isnull().all()
    with pytest.warns(UserWarning, match="near-zero"):
        er = ix.sensitivity_index(da)
    assert er.ER_flag.sel(city="Z", year=2010) and np.isnan(er.ER.sel(city="Z", year=2010))


def test_specialisation_by_hand(tiny):
    # 2010 shares A (1/3, 2/3, 0), B (1, 0, 0); national (2/3, 1/3, 0)
    # LQ_A = (0.5, 2), LQ_B = 1.5; 2011 national (5/7, 2/7): LQ_A = (0.56, 2.1), LQ_B = 1.4
    pss = ix.relative_specialisation(tiny)
    np.testing.assert_allclose(pss.values, [[2.0, 2.1], [1.5, 1.4]])
    lq = ix.location_quotient(tiny, "x")
    np.testing.assert_allclose(lq.values, [[0.5, 0.56], [1.5, 1.4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ix.location_quotient(tiny, "z").isnull().all()  # no national employment: 0/0
    with pytest.raises(InputError, match="industry 'w' is not in"):
        ix.location_quotient(tiny, "w")
    # Krugman 2010: A |1/3-2/3| + |2/3-1/3| = 2/3; B |1-2/3| + |0-1/3| = 2/3
    np.testing.assert_allclose(ix.krugman_index(tiny).sel(year=2010).values, [2 / 3, 2 / 3])
    np.testing.assert_allclose(ix.relative_diversity(tiny).sel(year=2010).values, [1.5, 1.5])


def test_diversity_by_hand(tiny):
    psd = ix.shannon_diversity(tiny)
    assert psd.sel(city="A", year=2010) == pytest.approx(math.log(3) - 2 / 3 * math.log(2))
    assert psd.sel(city="A", year=2011) == pytest.approx(-(0.4 * math.log(0.4)
                                                           + 0.6 * math.log(0.6)))
    np.testing.assert_array_equal(psd.sel(city="B").values, [0.0, 0.0])  # single industry
    gini = ix.gini_diversity(tiny)
    # A sorted shares (0, 1/3, 2/3): Gini = 4/9; B (0, 0, 1): Gini = 2/3 -> 1 - Gini = 1/K
    np.testing.assert_allclose(gini.sel(year=2010).values, [5 / 9, 1 / 3])


def test_relative_diversity_of_the_national_mix_is_nan_with_warning():
    da = cube({"A": [[1, 2], [1, 2]], "B": [[2, 4], [3, 6]]}, industries=("x", "y"))
    with pytest.warns(UserWarning, match="national industry mix"):
        assert ix.relative_diversity(da).isnull().all()


def test_negative_employment_is_refused(tiny):
    bad = tiny.copy()
    bad[0, 0, 0] = -1
    with pytest.raises(InputError, match="negative, e.g. city A, year 2010, industry x"):
        ix.relative_specialisation(bad)


def brute(E: np.ndarray):
    """Loop transcription of docs/method.md §1 (ER, PSS, PSD, Krugman, 1 - Gini)."""
    n, T, K = E.shape
    out = {k: np.full((n, T), np.nan) for k in ("ER", "PSS", "PSD", "KSI", "GINI")}
    for t in range(T):
        nat = [sum(E[r, t, i] for r in range(n)) for i in range(K)]
        tot_nat = sum(nat)
        for r in range(n):
            tot = sum(E[r, t])
            s = [E[r, t, i] / tot for i in range(K)]
            ns = [nat[i] / tot_nat for i in range(K)]
            out["PSS"][r, t] = max(s[i] / ns[i] for i in range(K) if ns[i] > 0)
            out["PSD"][r, t] = sum(-p * math.log(p) for p in s if p > 0)
            out["KSI"][r, t] = sum(abs(s[i] - ns[i]) for i in range(K))
            mad = sum(abs(a - b) for a in s for b in s) / (2 * K)
            out["GINI"][r, t] = 1 - mad
            if t + 1 < T:
                nat1 = [sum(E[q, t + 1, i] for q in range(n)) for i in range(K)]
                g = [nat1[i] / nat[i] - 1 if nat[i] > 0 else 0 for i in range(K)]
                cf = sum(g[i] * E[r, t, i] for i in range(K))
                act = sum(E[r, t + 1]) - tot
                out["ER"][r, t] = (act - cf) / abs(cf)
    return out


def test_vectorised_indices_match_a_loop_transcription():
    rng = np.random.default_rng(3)
    E = rng.gamma(2.0, 10.0, size=(7, 4, 5))
    E[rng.random(E.shape) < 0.2] = 0.0  # scattered zero cells
    E[:, :, 4] = 0.0  # an industry nobody employs
    E[0, :, 1:] = 0.0  # a single-industry city
    E[0, :, 0] = 5.0 + np.arange(4.0)
    da = xr.DataArray(E, dims=("city", "year", "industry"),
                      coords={"city": [f"c{i}" for i in range(7)], "year": range(2000, 2004),
                              "industry": list("abcde")})
    ref = brute(E)
    np.testing.assert_allclose(ix.sensitivity_index(da, threshold=0).ER.values, ref["ER"])
    np.testing.assert_allclose(ix.relative_specialisation(da).values, ref["PSS"])
    np.testing.assert_allclose(ix.shannon_diversity(da).values, ref["PSD"], atol=1e-12)
    np.testing.assert_allclose(ix.krugman_index(da).values, ref["KSI"])
    np.testing.assert_allclose(ix.gini_diversity(da).values, ref["GINI"])
    # dimension order of the input does not matter
    np.testing.assert_allclose(ix.relative_specialisation(da.transpose("industry", "city",
                                                                       "year")).values,
                               ref["PSS"])


def _national_er_loop(E: np.ndarray, threshold: float) -> np.ndarray:
    """ER with the aggregate national rate, one city and year at a time (docs/method.md §1)."""
    n, T, K = E.shape
    out = np.full((n, T), np.nan)
    for t in range(T - 1):
        before = sum(E[q, t, i] for q in range(n) for i in range(K))
        after = sum(E[q, t + 1, i] for q in range(n) for i in range(K))
        g = after / before - 1.0
        for r in range(n):
            cf = g * sum(E[r, t])
            if abs(cf) > threshold * sum(E[r, t]):
                out[r, t] = (sum(E[r, t + 1]) - sum(E[r, t]) - cf) / abs(cf)
    return out


def test_national_benchmark_matches_a_loop_and_industry_mix_is_the_default():
    rng = np.random.default_rng(11)
    E = rng.gamma(2.0, 10.0, size=(6, 5, 4))
    E[rng.random(E.shape) < 0.2] = 0.0
    da = xr.DataArray(E, dims=("city", "year", "industry"),
                      coords={"city": [f"c{i}" for i in range(6)], "year": range(2000, 2005),
                              "industry": list("abcd")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # flagged cells are compared as NaN below
        national = ix.sensitivity_index(da, benchmark="national")
        mix = ix.sensitivity_index(da)
    np.testing.assert_allclose(national.ER.values, _national_er_loop(E, ix.ER_THRESHOLD))
    assert national.ER.attrs["benchmark"] == "national"
    assert mix.ER.attrs["benchmark"] == "industry_mix"
    np.testing.assert_allclose(mix.ER.values, ix.sensitivity_index(
        da, benchmark="industry_mix", threshold=ix.ER_THRESHOLD).ER.values)
    assert not np.allclose(np.nan_to_num(mix.ER.values), np.nan_to_num(national.ER.values))
    with pytest.raises(InputError, match="benchmark must be one of industry_mix, national"):
        ix.sensitivity_index(da, benchmark="shift_share")


def test_national_benchmark_by_hand(tiny):
    # national total 60 -> 63: g = 0.05. A: dE^C = 0.05 * 30 = 1.5, dE^A = 0 -> ER = -1;
    # B: dE^C = 1.5, dE^A = 3 -> ER = 1 (the industry mix gave 1 and -0.2)
    out = ix.sensitivity_index(tiny, benchmark="national")
    np.testing.assert_allclose(out.ER.sel(year=2010).values, [-1.0, 1.0])
    assert out.ER.sel(year=2011).isnull().all()


def test_coupling_coordination_by_hand():
    city = ["a", "b", "c", "d"]
    agg = xr.DataArray([1.0, 2.0, 3.0, 1.0], dims="city", coords={"city": city}, name="PSS")
    res = xr.DataArray([3.0, 1.0, 2.0, 1.0], dims="city", coords={"city": city}, name="ER")
    # U1 = (0, .5, 1, 0), U2 = (1, 0, .5, 0): D = 0, 0, sqrt(2 sqrt(.5)/1.5 * .75), 0 (both 0)
    d = ix.coupling_coordination(agg, res)
    expected = math.sqrt(2 * math.sqrt(0.5) / 1.5 * 0.75)
    np.testing.assert_allclose(d.values, [0.0, 0.0, expected, 0.0], atol=1e-15)
    assert d.name == "Interact_PSS"
    res_nan = res.copy(data=[3.0, np.nan, 2.0, 1.0])
    out = ix.coupling_coordination(agg, res_nan)
    assert np.isnan(out.values[1]) and (out.values[[0, 2, 3]] >= 0).all()
    with pytest.raises(InputError, match="constant"):
        ix.coupling_coordination(agg, res * 0)


def test_winsorize_and_period_mean():
    da = xr.DataArray(np.append(np.arange(101.0), np.nan), dims="cell")
    out = ix.winsorize(da, 0.01, 0.99)
    assert out.min() == 1.0 and out.max() == 99.0 and np.isnan(out.values[-1])
    np.testing.assert_array_equal(out.values[1:100], np.arange(1.0, 100.0))
    with pytest.raises(InputError):
        ix.winsorize(da, 0.5, 0.2)
    er = ix.sensitivity_index(cube({"A": [[10, 20, 0], [12, 18, 0], [12, 19, 1]],
                                    "B": [[30, 0, 0], [33, 0, 0], [30, 5, 0]]}),
                              winsorize=0.25)
    raw = ix.sensitivity_index(cube({"A": [[10, 20, 0], [12, 18, 0], [12, 19, 1]],
                                     "B": [[30, 0, 0], [33, 0, 0], [30, 5, 0]]}))
    lo, hi = np.nanquantile(raw.ER.values, [0.25, 0.75])
    np.testing.assert_allclose(er.ER.values, np.clip(raw.ER.values, lo, hi))
    panel = xr.DataArray([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]], dims=("city", "year"))
    np.testing.assert_array_equal(ix.period_mean(panel).values, [2.0, np.nan])
