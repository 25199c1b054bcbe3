"""High/low regime variables (hand examples) and the first whole fit of a G = 3 system.

Recovery (``test_three_equation_system_recovered``): a simulated three-equation regime-shaped
system on a 20 × 20 rook lattice (n = 400), identified by one excluded exogenous variable per
equation, fitted once through ``models.study.system_fit.fit_system``:

* GS3SLS: every |z| = |estimate − truth| / se < 3.5. Measured over 60 simulated data sets the
  20 z statistics had sd 0.78–1.12 and the largest |z| per data set had 99 % quantile 3.7;
  under correct inference P(some |z| ≥ 3.5 among 20) ≈ 0.9 %.
* Bayes (2 chains × 500 draws, G = 3 uses the LKJ Cholesky branch): central 90 % intervals
  miss at most 5 of the 20 true values (Binomial(20, 0.1): P(≥ 6 misses) = 1.1 %; measured
  on three data sets: 0, 4 and 3 misses), no divergences, R-hat ≤ 1.02 (measured 1.009,
  1.011, 1.011 on three seeds with 2 × 500 draws, so 1.01 would fail by chance).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from data_prep.errors import InputError
from data_prep.indices import winsorize
from data_prep.regimes import THRESHOLD, add_regimes, regime_split
from data_prep.synthetic.simulate import SystemTruth, lattice_weights, simulate_system
from models.bayes.idata import coef_grid


def _panel(values, name="PSS") -> xr.Dataset:
    values = np.asarray(values, dtype=float)
    da = xr.DataArray(values, dims=("city", "year"), name=name,
                      coords={"city": [f"c{i}" for i in range(values.shape[0])],
                              "year": 2010 + np.arange(values.shape[1])})
    return xr.Dataset({name: da}, attrs={"choices": json.dumps({"pss_method": "max_lq"})})


def test_regimes_hand_example_without_winsorising():
    # year 2010: mean 3 -> 5 is high, 1 and 3 (equal to the mean) are low;
    # year 2011: city c1 missing, mean of 2 and 6 is 4 -> 6 high, 2 low, c1 stays missing
    ds = add_regimes(_panel([[1, 2], [3, np.nan], [5, 6]]), indices=("PSS",), winsor=None)
    np.testing.assert_array_equal(ds["PSS_H"].values, [[0, 0], [0, np.nan], [5, 6]])
    np.testing.assert_array_equal(ds["PSS_L"].values, [[1, 2], [3, np.nan], [0, 0]])
    assert ds["PSS_H"].attrs["regime_threshold"] == THRESHOLD
    choices = json.loads(ds.attrs["choices"])
    assert choices["regimes"] == {"indices": ["PSS"], "threshold": THRESHOLD, "winsorize": None}
    assert choices["pss_method"] == "max_lq"          # the other choices are kept


def test_regime_note_states_the_point_mass_at_zero_with_its_counts():
    from data_prep.dataset import cross_section
    from models.study.tables.regimes import point_mass_note

    # yearly means 3 and 4: c0 is low in both years, c2 high in both, c1 switches
    ds = add_regimes(_panel([[1, 2], [3, 5], [5, 6]]), indices=("PSS",), winsor=None)
    note = point_mass_note(cross_section(ds), "PSS")
    assert "PSS_H = PSS·1[PSS > yearly mean] is exactly 0 for every low-regime city-year" in note
    assert "1 of 3 cities have PSS_H = 0 and 1 have PSS_L = 0" in note
    with pytest.raises(InputError, match="no column PSD_H, PSD_L"):
        point_mass_note(cross_section(ds), "PSD")


def test_regimes_winsorise_before_splitting():
    # one year, five cities: quantiles (25 %, 75 %) by linear interpolation are 2 and 4, so the
    # winsorised values are [2, 2, 3, 4, 4] with mean 3 -> high [0, 0, 0, 4, 4].
    # Without winsorising the outlier 100 pulls the mean to 22 and only it is high.
    ds = _panel([[1], [2], [3], [4], [100]])
    high, low = regime_split(ds["PSS"], winsor=(0.25, 0.75))
    np.testing.assert_array_equal(high.values.ravel(), [0, 0, 0, 4, 4])
    np.testing.assert_array_equal(low.values.ravel(), [2, 2, 3, 0, 0])
    raw_high, _ = regime_split(ds["PSS"], winsor=None)
    np.testing.assert_array_equal(raw_high.values.ravel(), [0, 0, 0, 0, 100])
    assert high.attrs["winsorized"] == "0.25,0.75"


def test_regimes_sum_to_winsorised_index_on_demo():
    from data_prep.dataset import demo_dataset

    ds = add_regimes(demo_dataset())
    for name in ("PSS", "PSD"):
        clipped = winsorize(ds[name], 0.01, 0.99)
        total = ds[f"{name}_H"] + ds[f"{name}_L"]
        np.testing.assert_allclose(total.values, clipped.values)
        # exactly one of the two is nonzero in every cell, and the high one is above the mean
        assert not ((ds[f"{name}_H"] != 0) & (ds[f"{name}_L"] != 0)).any()
        above = clipped > clipped.mean("city")
        assert bool(((ds[f"{name}_H"] > 0) == above).all())


def test_regimes_refuse_missing_or_misshaped_input():
    with pytest.raises(InputError, match="no variable PSD"):
        add_regimes(_panel([[1.0]]), indices=("PSS", "PSD"))
    with pytest.raises(InputError, match="dims"):
        regime_split(xr.DataArray([1.0, 2.0], dims=("city",), name="PSS"))


# ----------------------------------------------------------------------------- G = 3 fit

def regime_truth() -> SystemTruth:
    """A regime-shaped system: ER on both regimes and their lags, each regime on ER."""
    coefficients = {
        "ER": {"W(ER)": 0.30, "W(A_H)": 0.15, "W(A_L)": -0.10, "A_H": 0.40, "A_L": -0.30,
               "Intercept": 1.0, "x1": 1.0, "z1": 0.8},
        "A_H": {"W(A_H)": 0.25, "W(ER)": 0.10, "ER": 0.30, "Intercept": 0.5, "x1": 0.5,
                "z2": 1.0},
        "A_L": {"W(A_L)": 0.20, "W(ER)": -0.15, "ER": -0.25, "Intercept": -0.5, "x1": -0.5,
                "z3": 1.0},
    }
    Sigma = np.array([[1.0, 0.3, -0.2], [0.3, 0.8, 0.1], [-0.2, 0.1, 0.6]])
    return SystemTruth(coefficients, Sigma)


def test_three_equation_system_recovered():
    from data_prep.spectrum.exact import eigenvalues
    from models.study.system_fit import fit_system

    w = lattice_weights(20)
    sim = simulate_system(w, regime_truth(), seed=1)
    fit = fit_system(sim.formulas, sim.data, w, eigenvalues(w), draws=500, tune=500, chains=2,
                     seed=1, effects=False)
    res = fit.frequentist["GS3SLS"]
    coef = coef_grid(fit.idata.posterior)
    assert coef.sizes["equation"] == 3 and "chol_std" in fit.idata.unconstrained_posterior
    misses = []
    for eq, terms in sim.truth.coefficients.items():
        for term, value in terms.items():
            z = (res.params[(eq, term)] - value) / res.std_errors[(eq, term)]
            assert abs(z) < 3.5, f"GS3SLS {eq}:{term} {res.params[(eq, term)]:.3f} vs {value}"
            lo, hi = np.quantile(coef.sel(equation=eq, term=term).values, [0.05, 0.95])
            if not lo <= value <= hi:
                misses.append(f"{eq}:{term}")
    assert len(misses) <= 5, misses
    assert int(fit.idata.sample_stats["diverging"].sum()) == 0
    assert fit.summary["r_hat"].max() <= 1.02
    # Σ recovered by both: 3 × 3, symmetric, close to the truth
    np.testing.assert_allclose(res.sigma.to_numpy(), sim.truth.Sigma, atol=0.2)
    post_sigma = fit.idata.posterior["Sigma"].mean(("chain", "draw")).values
    np.testing.assert_allclose(post_sigma, sim.truth.Sigma, atol=0.2)
    # the table: GS3SLS and Bayes columns for the three equations, controls shown
    table = fit.table(methods=("GS3SLS",))
    assert list(table.columns) == ["term"] + [f"{m}: {eq}" for m in ("GS3SLS", "Bayes")
                                              for eq in ("ER", "A_H", "A_L")]
    assert table["term"].tolist()[:6:2] == ["W(ER)", "W(A_H)", "W(A_L)"]
