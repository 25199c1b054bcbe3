"""The Python API (models.api): a notebook's use, the same numbers as the scripts, plain errors.

One small lattice (5 x 5 rook contiguity from libpysal, data from the project's simulator) is
fitted once by GS3SLS and sampled once (2 chains x 100 draws, seed 4); the scripts run
in-process on the same data written to CSV and GAL, and their files must hold exactly the API's
numbers: the coefficient table without any tolerance, the posterior draw for draw.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

from data_prep.errors import InputError
from data_prep.synthetic.simulate import simulate_system

FORMULAS = ["ER ~ W(ER) + W(PSS) + PSS + x1 + x2 + z1",
            "PSS ~ W(PSS) + W(ER) + ER + x1 + x2 + z2"]
SAMPLING = dict(draws=100, tune=100, chains=2, seed=4)
COEF_COLUMNS = ["equation", "term", "estimate", "std_error", "statistic", "p_value"]
POSTERIOR_COLUMNS = ["equation", "term", "mean", "sd", "hdi_low", "hdi_high", "r_hat",
                     "ess_bulk"]


def lattice_case(side: int = 5, seed: int = 3):
    """A libpysal lattice W (row-standardised) and data drawn from the system on it, the
    cities named by the W's own ids (the integers 0..n-1)."""
    import libpysal

    w = libpysal.weights.lat2W(side, side)
    w.transform = "r"
    data = simulate_system(w.sparse, seed=seed).data.assign(city=w.id_order)
    return w, data


@pytest.fixture(scope="module")
def notebook():
    """What a notebook does: pandas, libpysal and ``from models import SpatialSystem``."""
    from models import SpatialSystem

    w, data = lattice_case()
    model = SpatialSystem(FORMULAS, data, w)
    results = model.fit("gs3sls")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: the convergence report says so
        posterior = model.sample(**SAMPLING, progress=False)
    return w, data, model, results, posterior


@pytest.fixture(scope="module")
def script_inputs(notebook, tmp_path_factory):
    """The notebook's data and W as the scripts read them: a CSV and a GAL file."""
    import libpysal

    w, data, *_ = notebook
    folder = tmp_path_factory.mktemp("api")
    data.to_csv(folder / "d.csv", index=False)
    gal = libpysal.io.open(str(folder / "w.gal"), "w")
    gal.write(w)
    gal.close()
    argv = [a for f in FORMULAS for a in ("--equation", f)]
    return folder, argv + ["--data", str(folder / "d.csv"), "--weights", str(folder / "w.gal")]


def read_exact(path) -> pd.DataFrame:
    return pd.read_csv(path, float_precision="round_trip")


# ------------------------------------------------------------------ (1) a notebook's use

def test_notebook_fit_and_sample(notebook):
    w, data, model, results, posterior = notebook
    assert model.nobs == 25 and model.dependents == ("ER", "PSS")
    params = results.params
    assert list(params.columns) == COEF_COLUMNS
    assert params[["equation", "term"]].values.tolist()[:3] == [["ER", "W(ER)"],
                                                              ["ER", "W(PSS)"], ["ER", "PSS"]]
    assert np.isfinite(params[["estimate", "std_error"]].to_numpy()).all()
    text = results.summary()
    assert text.startswith("GS3SLS (Kelejian-Prucha 2004) estimates, n = 25")
    assert repr(text) == str(text)  # shows as a table in a notebook, not as a quoted string
    assert results.cov.shape == (len(params), len(params))
    assert set(results.diagnostics["equation"]) == {"ER", "PSS"}
    impacts = results.impacts(draws=200)
    assert {"direct", "indirect", "total"} == set(impacts["effect"])

    summary = posterior.summary()
    assert list(summary.columns) == POSTERIOR_COLUMNS
    pairs = lambda frame: sorted(map(tuple, frame[["equation", "term"]].values))  # noqa: E731
    assert pairs(summary) == pairs(params)
    idata = posterior.idata
    assert idata.posterior["coef"].shape == (2, 100, len(params))  # each equation's own terms
    import arviz as az

    table = az.summary(idata)
    assert not table[["mean", "sd"]].isna().any().any()  # no NaN row
    internal = [name for name in table.index if "_std" in name or "__" in name]
    assert internal == [] and set(idata.unconstrained_posterior.data_vars)
    assert {"posterior", "sample_stats", "loo"} <= set(idata.groups())
    assert "impact" in idata.posterior and posterior.seed == 4
    assert set(posterior.impacts()["effect"]) == {"direct", "indirect", "total"}
    assert posterior.loo().n_data_points == 25
    assert posterior.convergence and isinstance(posterior.converged, bool)


def test_import_models_is_light_and_exports_the_api():
    import subprocess
    import sys

    code = ("import sys, models; heavy = [m for m in ('pandas', 'pymc', 'models.api.system') "
            "if m in sys.modules]; print(heavy, sorted(models.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("[] ")
    for name in ("SpatialSystem", "Posterior", "QuadraticModel", "CensoredFactorModel",
                 "run_study"):
        assert name in out


# ------------------------------------------------------------------ (2), (3) same as the scripts

def test_gs3sls_equals_the_script_exactly(notebook, script_inputs, tmp_path):
    from models import SpatialSystem
    from models.cli import fit_gs3sls

    w, data, model, results, _ = notebook
    folder, argv = script_inputs
    assert fit_gs3sls.main(argv + ["--out", str(tmp_path / "coef.csv")]) == 0
    pd.testing.assert_frame_equal(results.params, read_exact(tmp_path / "coef.csv"),
                                  check_exact=True)
    # with a spatial-error equation and robust standard errors (the GM step and rho rows)
    robust = SpatialSystem(FORMULAS, data, w, spatial_errors="ER").fit("gs2sls", cov="robust")
    assert fit_gs3sls.main(argv + ["--spatial-errors", "ER", "--method", "gs2sls",
                                   "--heteroskedastic", "--out", str(tmp_path / "r.csv")]) == 0
    script = read_exact(tmp_path / "r.csv")
    assert "rho" in set(script["term"])
    pd.testing.assert_frame_equal(robust.params, script, check_exact=True)


def test_posterior_equals_the_script_draw_for_draw(notebook, script_inputs, tmp_path):
    from models.cli import sample_posteriors

    *_, posterior = notebook
    folder, argv = script_inputs
    out = tmp_path / "post.nc"
    settings = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "4", "--quiet"]
    assert sample_posteriors.main(argv + settings + ["--out", str(out)]) == 0
    script = az.from_netcdf(out)
    for name in ("coef", "Sigma", "impact"):
        assert np.array_equal(script.posterior[name].values,
                              posterior.idata.posterior[name].values, equal_nan=True), name
    assert np.array_equal(script["loo"]["elpd_i"].values, posterior.idata["loo"]["elpd_i"].values)
    pd.testing.assert_frame_equal(posterior.summary(),
                                  read_exact(tmp_path / "post_summary.csv"), check_exact=True)
    attrs = script.posterior.attrs
    assert attrs["equations"] == posterior.idata.posterior.attrs["equations"]
    assert attrs["seed"] == 4 and attrs["errors"] == "normal"


# ------------------------------------------------------------------ (4) plain one-line errors

def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_unknown_method_is_one_line(notebook):
    _, _, model, _, _ = notebook
    with pytest.raises(InputError) as err:
        model.fit("ols")
    assert _one_line(err) == "unknown method 'ols'; choose one of 2sls, 3sls, gs2sls, gs3sls"
    with pytest.raises(InputError, match="unknown cov 'hac'; choose one of unadjusted"):
        model.fit(cov="hac")
    with pytest.raises(InputError, match="the data have no column nope"):
        model.fit(cov="clustered", clusters="nope")


def test_weights_ids_not_matching_the_cities(notebook):
    from models import SpatialSystem

    w, data, *_ = notebook
    with pytest.raises(InputError) as err:
        SpatialSystem(FORMULAS, data.iloc[2:], w)
    assert _one_line(err) == ("weights (libpysal W (transform R)) do not match the data: 2 "
                              "weights cities are not in the data (0, 1)")
    renamed = data.assign(city=[f"city{i}" for i in range(len(data))])
    with pytest.raises(InputError) as err:
        SpatialSystem(FORMULAS, renamed, w)
    assert _one_line(err).startswith("weights (libpysal W (transform R)) do not match the "
                                     "data: 25 data cities have no weights (city0, city1")
    with pytest.raises(InputError) as err:
        SpatialSystem(FORMULAS, data, 42)
    assert _one_line(err).startswith("weights must be a libpysal W, a .gal/.gwt/GeoJSON path")


@pytest.mark.parametrize("formula, message", [
    ("ER ~ PSS +", "equation ER: cannot read 'PSS +' (an operator has no term after it)"),
    ("ER PSS", "formula 'ER PSS': expected exactly one '~' (\"y ~ x1 + x2\")"),
    ("ER ~ W(ER) + PSS + nope", "equation ER: unknown variable nope (not a column of the data)"),
])
def test_bad_formula_is_one_line(notebook, formula, message):
    from models import SpatialSystem

    w, data, *_ = notebook
    with pytest.raises(InputError) as err:
        SpatialSystem([formula, FORMULAS[1]], data, w)
    assert _one_line(err) == message


# ------------------------------------------------------------------ weights and data forms

def test_libpysal_transforms_and_ids_are_kept():
    import libpysal

    from data_prep.weights import weights_from_libpysal

    w = libpysal.weights.lat2W(3, 3)
    with pytest.warns(UserWarning, match="transform 'O' is used as given, not row-standardised"):
        as_given = weights_from_libpysal(w)
    assert as_given.transform == "O" and as_given.cities[:2] == ("0", "1")
    assert as_given.matrix.sum() == w.s0  # the 0/1 weights as built
    w.transform = "b"
    assert weights_from_libpysal(w).transform == "B"
    w.transform = "r"
    row = weights_from_libpysal(w, cities=[str(i) for i in reversed(range(9))])
    assert row.cities[0] == "8" and np.allclose(row.matrix.sum(axis=1), 1.0)
    gal = weights_from_gal_text(w)
    assert (row.aligned(gal.cities).matrix != gal.matrix).nnz == 0
    island = libpysal.weights.W({"a": ["b"], "b": ["a"], "c": []}, silence_warnings=True)
    with pytest.raises(InputError, match="island cities with no neighbour: c"):
        weights_from_libpysal(island)


def weights_from_gal_text(w):
    """The same relation through a GAL file (the scripts' route)."""
    import tempfile
    from pathlib import Path

    import libpysal

    from data_prep.weights import weights_from_gal

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "w.gal")
        f = libpysal.io.open(path, "w")
        f.write(w)
        f.close()
        return weights_from_gal(path)


def test_a_panel_frame_is_detected_and_fit_refuses_it():
    from models import SpatialSystem

    w, data = lattice_case(side=4)
    frames = [simulate_system(w.sparse, seed=s).data.assign(city=w.id_order, year=2010 + s)
              for s in range(3)]
    panel = pd.concat(frames, ignore_index=True)
    model = SpatialSystem(FORMULAS, panel, w)
    assert model.panel is not None and model.panel.T == 3 and model.nobs == 16 * 2
    assert "year_contrast[1]" in model.spec.equations[0].exogenous
    with pytest.raises(InputError, match="fit\\(\\) estimates cross-sections"):
        model.fit()


def test_a_prepared_dataset_brings_weights_and_spectrum(tmp_path):
    from data_prep.dataset import demo_dataset, save_dataset
    from models import SpatialSystem
    from models.cli import fit_gs3sls

    ds = demo_dataset()
    formulas = ["ER ~ W(ER) + PSS + Gov + Fdi + Market", "PSS ~ W(PSS) + ER + Gov + PGDP + Popden"]
    model = SpatialSystem(formulas, ds)
    assert model.stored_spectrum is not None and model.spectrum() is model.stored_spectrum
    assert model.nobs == ds.sizes["city"]
    save_dataset(ds, tmp_path / "data.nc")
    argv = [a for f in formulas for a in ("--equation", f)]
    assert fit_gs3sls.main(argv + ["--data", str(tmp_path / "data.nc"),
                                   "--out", str(tmp_path / "c.csv")]) == 0
    pd.testing.assert_frame_equal(model.fit().params, read_exact(tmp_path / "c.csv"),
                                  check_exact=True)


# ------------------------------------------------------------------ the other model families

def test_quadratic_model_equals_fit_quadratic(tmp_path):
    """QuadraticModel with a libpysal W and a spatial lag: the script's table exactly."""
    import libpysal

    from models import QuadraticModel
    from models.cli import fit_quadratic

    w = libpysal.weights.lat2W(8, 8)
    w.transform = "r"
    rng = np.random.default_rng(17)
    A, x1 = rng.uniform(0, 4, 64), rng.normal(size=64)
    y = 1 + 2 * A - 0.5 * A ** 2 + 0.7 * x1 + 0.8 * rng.normal(size=64)
    data = pd.DataFrame({"city": w.id_order, "y": y, "A": A, "x1": x1})
    model = QuadraticModel("y ~ A + x1", data, "A", w, spatial_lag=True)
    results = model.fit()
    assert results.params["term"].tolist()[-2:] == ["turning_point", "lind_mehlum"]
    assert "Fieller 95% set" in results.summary()
    data.to_csv(tmp_path / "d.csv", index=False)
    f = libpysal.io.open(str(tmp_path / "w.gal"), "w")
    f.write(w)
    f.close()
    assert fit_quadratic.main(["--data", str(tmp_path / "d.csv"), "--formula", "y ~ A + x1",
                               "--quadratic", "A", "--method", "ols", "--spatial-lag",
                               "--weights", str(tmp_path / "w.gal"),
                               "--out", str(tmp_path / "q.csv")]) == 0
    pd.testing.assert_frame_equal(results.params, read_exact(tmp_path / "q.csv"),
                                  check_exact=True)
    with pytest.raises(InputError, match="--spatial-lag needs spatial weights"):
        QuadraticModel("y ~ A + x1", data, "A", spatial_lag=True)


def test_censored_factor_model_equals_fit_factor_model(tmp_path):
    from data_prep.synthetic.censored import simulate_censored_panel
    from models import CensoredFactorModel
    from models.cli import fit_factor_model

    sim = simulate_censored_panel((6, 6), n_years=4, upper=1.0, alpha=0.5, sd_city=0.1, seed=6)
    model = CensoredFactorModel("y ~ x1 + x2", sim.data, lower=0, upper=1, group="group",
                                effects="year")
    results = model.fit()
    assert {"x1", "sigma", "x1[g1]"} <= set(results.params["term"])
    assert results.summary().startswith("Tobit ML (full sample)")
    sim.data.to_csv(tmp_path / "d.csv", index=False)
    assert fit_factor_model.main(["--data", str(tmp_path / "d.csv"), "--formula", "y ~ x1 + x2",
                                  "--lower", "0", "--upper", "1", "--method", "tobit",
                                  "--group", "group", "--effects", "year",
                                  "--out", str(tmp_path / "t.csv")]) == 0
    pd.testing.assert_frame_equal(results.params, read_exact(tmp_path / "t.csv"),
                                  check_exact=True)
    with pytest.raises(InputError) as err:
        CensoredFactorModel("y ~ x1 + nope", sim.data, lower=0)
    assert "nope" in _one_line(err)


def test_plan_study_of_the_demo_and_a_bad_config(tmp_path):
    from models import plan_study, run_study

    plan = plan_study(quick=True)
    assert "Table 2" in plan.text()
    (tmp_path / "bad.toml").write_text("[study]\ncontrols = 3\n")
    with pytest.raises(InputError, match="bad.toml"):
        run_study(tmp_path / "bad.toml", out=tmp_path / "out", quick=True)
    assert not (tmp_path / "out").exists()
