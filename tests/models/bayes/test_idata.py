"""The InferenceData layout of models.bayes.idata on every producer.

A tiny two-equation system (5 × 5 lattice, a spatial error in one equation, 2 chains × 40 draws,
fixed seed) is sampled and post-processed as the command line does: ``az.summary`` then has no
NaN mean or sd and no sampling-scale variable, those variables are in ``unconstrained_posterior``,
and the project summary has exactly the terms of each equation. The panel system, the quadratic
and the censored model (a few draws each) must show no internal variable either. The layout
helpers are checked on constructed draws: stacking and un-stacking ``coef`` and ``rho`` are exact
inverses, and the readers give the same numbers from either layout.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system
from models.bayes.idata import (COEF_DIM, COEF_EQUATION, COEF_TERM, INTERNAL_GROUP,
                                coef_grid, coefficient_pairs, is_internal, rho_grid,
                                stacked_coef, tidy_posterior)
from models.bayes.postprocess import add_effects_and_loo, summary_frame
from models.bayes.sampling import sample
from models.bayes.system import build_system_model
from models.spec.system import build_system, parse_system

DRAWS = dict(draws=40, tune=40, chains=2, seed=7, progress=False)


def _summary_variables(idata) -> set[str]:
    """Variable names of the rows of ``az.summary(idata)``; asserts no NaN mean or sd."""
    table = az.summary(idata)
    bad = table.index[table[["mean", "sd"]].isna().any(axis=1)].tolist()
    assert not bad, f"az.summary rows with NaN mean/sd: {bad}"
    return {label.split("[", 1)[0] for label in table.index}


@pytest.fixture(scope="module")
def system_fit():
    w = lattice_weights(5)
    sim = simulate_system(w, default_truth(), seed=3)
    system = build_system(parse_system(sim.formulas, spatial_errors="ER"), sim.data,
                          weights=sim.W, check=False)
    lam = np.linalg.eigvals(w.matrix.toarray()).real
    model = build_system_model(system, lam)
    idata = sample(model, **DRAWS)
    add_effects_and_loo(idata, system, lam)
    return system, model, idata


def test_summary_of_the_system_shows_only_reported_quantities(system_fit):
    system, _, idata = system_fit
    names = _summary_variables(idata)
    assert names == {"coef", "Sigma", "rho", "impact"}
    assert not any(is_internal(n) for n in names)
    # the system has 14 coefficients on a 2 × 9 grid: no row for the 4 absent cells
    assert idata.posterior.sizes[COEF_DIM] == sum(len(eq.terms) for eq in system.spec.equations)
    assert list(idata.posterior["rho"]["error_equation"].values) == ["ER"]


def test_internal_variables_are_kept_in_their_own_group(system_fit):
    _, model, idata = system_fit
    assert INTERNAL_GROUP in idata.groups()
    internal = idata[INTERNAL_GROUP]
    free = {rv.name for rv in model.free_RVs}          # structural_std, beta_std, sd_std, …
    assert free <= set(internal.data_vars)
    assert {"sd_std_log__", "corr_u_logodds__", "rho_error_interval__"} <= set(internal.data_vars)
    assert not set(internal.data_vars) & set(idata.posterior.data_vars)
    assert internal.sizes["chain"] == 2 and internal.sizes["draw"] == 40
    # the original-scale coefficients are an affine map of the standardised ones (system.py):
    # coef = a + T θ, so the group holds everything needed to recompute them
    layout = model.layout
    theta = np.concatenate([internal["structural_std"].values, internal["beta_std"].values],
                           axis=-1)
    values = layout.a + theta @ layout.T.T
    grid = coef_grid(idata.posterior).values
    expected = np.stack([grid[..., g, t] for g, t in layout.present], axis=-1)
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-12)


def test_project_summary_has_exactly_the_terms_of_each_equation(system_fit, tmp_path):
    system, _, idata = system_fit
    frame = summary_frame(idata)
    assert list(frame.columns) == ["equation", "term", "mean", "sd", "hdi_low", "hdi_high",
                                   "r_hat", "ess_bulk"]
    for eq in system.spec.equations:
        terms = frame.loc[frame.equation == eq.dependent, "term"].tolist()
        assert sorted(terms) == sorted(eq.terms) and len(set(terms)) == len(terms)
    assert not frame[["mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess_bulk"]].isna().any().any()
    # the written file reads back in the same layout, with the same summary
    path = tmp_path / "post.nc"
    idata.to_netcdf(path, engine="h5netcdf")
    back = az.from_netcdf(path)
    assert INTERNAL_GROUP in back.groups() and COEF_DIM in back.posterior["coef"].dims
    pd.testing.assert_frame_equal(summary_frame(back), frame)


def test_tidy_is_idempotent(system_fit):
    _, _, idata = system_fit
    again = tidy_posterior(idata.copy())
    xr.testing.assert_identical(again.posterior, idata.posterior)
    xr.testing.assert_identical(again[INTERNAL_GROUP], idata[INTERNAL_GROUP])


# ------------------------------------------------------------------- the other producers

def test_panel_system_idata_is_tidy():
    from models.bayes.panel_system import panel_system
    from tests.references import simulated_panel

    frame, formulas, _, w, _ = simulated_panel(side=4, T=3, seed=4)
    panel = panel_system(formulas, frame, w)
    model = build_system_model(panel.system, panel.spectrum)
    idata = sample(model, **DRAWS)
    assert _summary_variables(idata) == {"coef", "Sigma"}
    frame = summary_frame(idata)
    for eq in panel.system.spec.equations:
        assert sorted(frame.loc[frame.equation == eq.dependent, "term"]) == sorted(eq.terms)
    assert "structural_std" in idata[INTERNAL_GROUP]


def test_quadratic_idata_is_tidy():
    from models.bayes.quadratic import sample_quadratic
    from models.spec.quadratic import build_quadratic

    rng = np.random.default_rng(1)
    n = 80
    A, x1 = rng.uniform(0, 4, n), rng.normal(size=n)
    df = pd.DataFrame({"city": [f"c{i}" for i in range(n)], "A": A, "x1": x1,
                       "y": 1 + 2 * A - 0.5 * A ** 2 + 0.7 * x1 + 0.8 * rng.normal(size=n)})
    idata, post = sample_quadratic(build_quadratic(df, "y ~ A + x1", "A"), **DRAWS)
    names = _summary_variables(idata)
    assert {"coef", "Sigma", "turning_point", "slope_ends"} <= names
    assert not any(is_internal(n) for n in names)
    assert {"beta_std", "sd_std"} <= set(idata[INTERNAL_GROUP].data_vars)
    coefs = post.summary[post.summary.term.isin(["Intercept", "A", "A^2", "x1"])]
    assert len(coefs) == 4


@pytest.mark.parametrize("group,effects", [(None, ""), ("group", "city,year")])
def test_censored_idata_is_tidy(group, effects):
    from data_prep.synthetic.censored import simulate_censored_panel
    from models.bayes.censored import fit_censored, posterior_predictive
    from models.bayes.censored import summary_frame as censored_summary
    from models.spec.factor import factor_data

    sim = simulate_censored_panel((5, 4), n_years=4, seed=8)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group=group, effects=effects)
    idata = fit_censored(data, **DRAWS)
    names = _summary_variables(idata)
    assert not any(is_internal(n) for n in names)
    assert names == ({"phi", "sigma", "phi_group"} if group else {"phi", "sigma", "Intercept"})
    assert {"alpha_std", "phi_std", "sigma_std"} <= set(idata[INTERNAL_GROUP].data_vars)
    assert len(censored_summary(idata)) == (2 + 2 * 2 + 1 if group else 1 + 2 + 1)
    # the predictive draws read the standardised parameters from their group
    assert posterior_predictive(idata, data, max_draws=10).shape == (10, data.n)


# ------------------------------------------------------------------- helpers, constructed

def _grid(seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    terms = ["W(A)", "B", "Intercept", "x1", "A", "z2"]
    vals = rng.normal(size=(2, 5, 2, len(terms)))
    vals[:, :, 0, terms.index("A")] = np.nan
    vals[:, :, 0, terms.index("z2")] = np.nan
    vals[:, :, 1, terms.index("B")] = np.nan
    return xr.DataArray(vals, dims=("chain", "draw", "equation", "term"),
                        coords={"chain": [0, 1], "draw": np.arange(5), "equation": ["A", "B"],
                                "term": terms})


def test_stacking_and_unstacking_coef_are_inverses():
    grid = _grid()
    flat = stacked_coef(grid)
    assert flat.dims == ("chain", "draw", COEF_DIM) and flat.sizes[COEF_DIM] == 9
    assert list(flat[COEF_DIM].values[:4]) == ["A: W(A)", "A: B", "A: Intercept", "A: x1"]
    assert coefficient_pairs(flat)[4:6] == [("B", "W(A)"), ("B", "Intercept")]
    assert not np.isnan(flat.values).any()
    xr.testing.assert_equal(coef_grid(flat), grid)
    assert stacked_coef(flat) is flat and coef_grid(grid) is grid
    # the posterior's equation coordinate (that of Sigma) fixes the equations and their order
    post = xr.Dataset({"coef": flat}, coords={"equation": ["B", "A"]})
    assert list(coef_grid(post)["equation"].values) == ["B", "A"]
    assert set(flat.coords) >= {COEF_EQUATION, COEF_TERM}


def test_rho_over_error_equations_and_back():
    rho = xr.DataArray(np.r_[np.full(10, 0.3), np.full(10, np.nan)].reshape(2, 2, 5)
                       .transpose(1, 2, 0), dims=("chain", "draw", "equation"),
                       coords={"chain": [0, 1], "draw": np.arange(5), "equation": ["A", "B"]})
    post = xr.Dataset({"coef": _grid(), "rho": rho})
    idata = tidy_posterior(az.InferenceData(posterior=post))
    assert idata.posterior["rho"].dims == ("chain", "draw", "error_equation")
    assert list(idata.posterior["error_equation"].values) == ["A"]
    xr.testing.assert_equal(rho_grid(idata.posterior), rho)
    xr.testing.assert_identical(rho_grid(post), post["rho"])
    assert rho_grid(post.drop_vars("rho")) is None


def test_readers_agree_on_either_layout():
    from models.bayes.effects import coefficient_matrices

    grid = _grid(1)
    for a, b in zip(coefficient_matrices(grid), coefficient_matrices(stacked_coef(grid))):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k][0], b[k][0])
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    old = az.InferenceData(posterior=xr.Dataset({"coef": grid}))
    new = az.InferenceData(posterior=xr.Dataset({"coef": stacked_coef(grid)}))
    pd.testing.assert_frame_equal(summary_frame(old), summary_frame(new))


def test_internal_naming_rule():
    for name in ("structural_std", "beta_std", "sd_std", "chol_std", "chol_std_corr",
                 "chol_std_stds", "chol_std_cholesky-cov-packed__", "sd_std_log__",
                 "rho_error_interval__", "corr_u", "rho_error", "group_z", "city_z",
                 "alpha_std", "phi_group_std", "tau_free_std", "nu_log__"):
        assert is_internal(name), name
    for name in ("coef", "Sigma", "rho", "nu", "impact", "phi", "phi_group", "xi", "sigma",
                 "Intercept", "turning_point", "slope_ends", "inverted_u",
                 "lind_mehlum_inverted_u"):
        assert not is_internal(name), name
