"""Lean posterior files: the streamed PSIS-LOO against arviz.loo on the full pointwise array, the
per-city ``loo`` group with and without the pointwise ``log_likelihood`` group, and model
comparison from lean and full files."""

import contextlib
import json
import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from data_prep.errors import InputError
from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system
from models.bayes.loo import LOO_GROUP, loo_result, relative_efficiency
from models.bayes.model_comparison import compare_models
from models.bayes.postprocess import POINTWISE_LIMIT, add_effects_and_loo, keeps_pointwise
from models.bayes.psis_stream import StreamedLoo, tail_length
from models.spec.system import build_system, parse_system
from tests.fixtures import write_lattice_case


def _arviz_loo(ll: np.ndarray, chains: int, reff: float):
    S, n = ll.shape
    idata = az.InferenceData(
        posterior=xr.Dataset({"a": (("chain", "draw"), np.zeros((chains, S // chains)))}),
        log_likelihood=xr.Dataset({"y": (("chain", "draw", "city"),
                                         ll.reshape(chains, S // chains, n))}))
    with _quiet():
        return az.loo(idata, pointwise=True, reff=reff)


@contextlib.contextmanager
def _quiet():
    """arviz.loo warns about large Pareto k; the tests check k themselves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _awkward_loglik(S: int, n: int, seed: int) -> np.ndarray:
    """Pointwise draws with the cases PSIS treats apart: heavy tails (large k), ties at the
    cut, a cut at log(tiny) with a short tail (≤ 4 draws: k = inf) and with a longer one."""
    rng = np.random.default_rng(seed)
    ll = rng.normal(-2.0, 1.0, (S, n)) * rng.gamma(2.0, 0.5, n)
    ll[:, 0] = np.round(ll[:, 0])                      # many ties
    ll[:, 1] = -np.abs(rng.standard_t(1.2, S)) * 5     # heavy tail: k̂ well above 0.7
    ll[:, 2] = 0.0
    ll[:3, 2] = -1e4                                   # 3 draws above log(tiny): k = inf
    ll[:, 3] = 0.0
    ll[:12, 3] = -1e4 - rng.random(12)                 # 12 draws: a short fitted tail
    return ll


@pytest.mark.parametrize("chunk", [1, 37, 400])
@pytest.mark.parametrize("reff", [0.35, 1.0, 1.7])
def test_streamed_loo_equals_arviz_loo(chunk, reff):
    chains, S, n = 4, 400, 40
    ll = _awkward_loglik(S, n, seed=chunk)
    ref = _arviz_loo(ll, chains, reff)
    acc = StreamedLoo(n, S, reff, buffer=chunk)
    for start in range(0, S, chunk):
        acc.add(ll[start:start + chunk])
    got = acc.result()
    assert acc.M == tail_length(S, reff)
    np.testing.assert_allclose(got["elpd_i"], ref.loo_i.values, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got["pareto_k"], ref.pareto_k.values, rtol=0, atol=1e-8)
    assert np.isinf(got["pareto_k"][2]) and np.isinf(ref.pareto_k.values[2])
    assert got["pareto_k"][1] > 0.7  # the heavy tail is flagged
    assert abs(got["elpd_loo"] - ref.elpd_loo) < 1e-8
    assert abs(got["p_loo"] - ref.p_loo) < 1e-8 and abs(got["se"] - ref.se) < 1e-8
    assert got["warning"] == ref.warning and abs(got["good_k"] - ref.good_k) < 1e-15


def test_streamed_loo_refuses_a_wrong_number_of_draws():
    acc = StreamedLoo(5, 10, 1.0)
    acc.add(np.zeros((6, 5)))
    with pytest.raises(ValueError, match="6 of the announced 10"):
        acc.result()
    with pytest.raises(ValueError, match="more than the announced"):
        acc.add(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="block must be"):
        acc.add(np.zeros((2, 4)))


# --------------------------------------------------------- through add_effects_and_loo

CHAINS, DRAWS = 2, 150
TERMS = ["W(ER)", "W(PSS)", "PSS", "ER", "Intercept", "x1", "x2", "z1", "z2"]


def _posterior(truth, rho: dict, seed: int, spread: float = 0.03) -> az.InferenceData:
    """Draws scattered around the truth, in the layout the sampler writes."""
    rng = np.random.default_rng(seed)
    deps = truth.dependents
    coef = np.full((CHAINS, DRAWS, 2, len(TERMS)), np.nan)
    for g, dep in enumerate(deps):
        for t, v in truth.coefficients[dep].items():
            coef[:, :, g, TERMS.index(t)] = v + spread * rng.normal(size=(CHAINS, DRAWS))
    Sigma = np.broadcast_to(truth.Sigma, (CHAINS, DRAWS, 2, 2)) \
        * np.exp(0.05 * rng.normal(size=(CHAINS, DRAWS, 1, 1)))
    post = {"coef": (("chain", "draw", "equation", "term"), coef),
            "Sigma": (("chain", "draw", "equation", "equation2"), Sigma)}
    if rho:
        r = np.array([rho.get(d, np.nan) for d in deps])
        post["rho"] = (("chain", "draw", "equation"),
                       r + 0.02 * rng.normal(size=(CHAINS, DRAWS, 2)))
    return az.InferenceData(posterior=xr.Dataset(
        post, coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS),
                      "equation": list(deps), "equation2": list(deps), "term": TERMS}))


@pytest.fixture(scope="module")
def spatial_error_case():
    truth = default_truth()
    truth.rho = {"ER": 0.4, "PSS": -0.2}
    weights = lattice_weights(6)
    sim = simulate_system(weights, truth, seed=5)
    spec = parse_system(sim.formulas, spatial_errors="all")
    system = build_system(spec, sim.data, weights=weights, check=False)
    return truth, weights, sim, system


def test_stored_loo_equals_arviz_on_the_pointwise_group_with_spatial_errors(spatial_error_case):
    truth, weights, sim, system = spatial_error_case
    eigs = np.linalg.eigvals(weights.matrix.toarray()).real
    idata = _posterior(truth, truth.rho, seed=1)
    notes = add_effects_and_loo(idata, system, eigs, keep_pointwise=True)
    assert notes == []
    assert {LOO_GROUP, "log_likelihood"} <= set(idata.groups())
    stored = idata[LOO_GROUP]
    assert stored.attrs["outcome_sha256"] == idata.log_likelihood.attrs["outcome_sha256"]
    reff = relative_efficiency(idata.posterior)
    assert stored.attrs["reff"] == pytest.approx(reff, rel=1e-12)
    with _quiet():
        ref = az.loo(idata, pointwise=True, reff=reff)
    np.testing.assert_allclose(stored["elpd_i"].values, ref.loo_i.values, rtol=0, atol=1e-8)
    np.testing.assert_allclose(stored["pareto_k"].values, ref.pareto_k.values, rtol=0, atol=1e-8)
    assert stored.attrs["elpd_loo"] == pytest.approx(ref.elpd_loo, abs=1e-8)
    assert stored.attrs["p_loo"] == pytest.approx(ref.p_loo, abs=1e-8)
    assert stored.attrs["se"] == pytest.approx(ref.se, abs=1e-8)
    np.testing.assert_allclose(stored["p_loo_i"].sum(), ref.p_loo, atol=1e-8)
    assert list(stored["city"].values) == list(map(str, sim.cities))


def test_lean_rule_and_keep_pointwise(spatial_error_case):
    truth, weights, sim, system = spatial_error_case
    eigs = np.linalg.eigvals(weights.matrix.toarray()).real
    lean = _posterior(truth, truth.rho, seed=1)
    add_effects_and_loo(lean, system, eigs, keep_pointwise=False)
    assert LOO_GROUP in lean.groups() and "log_likelihood" not in lean.groups()
    auto = _posterior(truth, truth.rho, seed=1)
    add_effects_and_loo(auto, system, eigs)  # 300 draws × 36 cities: under the limit, kept
    assert "log_likelihood" in auto.groups()
    assert keeps_pointwise(4000, 1000) and not keeps_pointwise(4000, 10_000)
    assert keeps_pointwise(4000, 10_000, True) and not keeps_pointwise(10, 10, False)
    assert POINTWISE_LIMIT == 4_000_000
    a, b = loo_result(lean), loo_result(auto)  # stored result vs arviz on the pointwise group
    del auto[LOO_GROUP]
    c = loo_result(auto)
    for other in (b, c):
        np.testing.assert_allclose(a.loo_i.values, other.loo_i.values, atol=1e-8)
        np.testing.assert_allclose(a.pareto_k.values, other.pareto_k.values, atol=1e-8)
        assert a.elpd_loo == pytest.approx(other.elpd_loo, abs=1e-8)
        assert a.se == pytest.approx(other.se, abs=1e-8)


def _fit_pair(system_spatial, system_plain, truth, eigs, keep: bool):
    spatial = _posterior(truth, truth.rho, seed=1)
    add_effects_and_loo(spatial, system_spatial, eigs, keep_pointwise=keep)
    plain_truth = default_truth()
    for dep in plain_truth.coefficients.values():
        for t in [t for t in dep if t.startswith("W(")]:
            dep.pop(t)
    plain = _posterior(plain_truth, {}, seed=2)
    add_effects_and_loo(plain, system_plain, eigs, keep_pointwise=keep)
    return {"spatial": spatial, "plain": plain}


def test_comparison_same_from_lean_and_full_files(spatial_error_case, tmp_path):
    truth, weights, sim, system = spatial_error_case
    eigs = np.linalg.eigvals(weights.matrix.toarray()).real
    plain_formulas = ["ER ~ PSS + x1 + x2 + z1", "PSS ~ ER + x1 + x2 + z2"]
    plain_system = build_system(plain_formulas, sim.data, weights=weights, check=False)
    full = _fit_pair(system, plain_system, truth, eigs, keep=True)
    lean = _fit_pair(system, plain_system, truth, eigs, keep=False)
    # through NetCDF, as the files are read back
    for name, models in (("full", full), ("lean", lean)):
        for k, idata in models.items():
            path = tmp_path / f"{name}_{k}.nc"
            idata.to_netcdf(path, engine="h5netcdf")
            models[k] = az.from_netcdf(path)
    assert "log_likelihood" not in lean["spatial"].groups()
    res_full, res_lean = compare_models(full), compare_models(lean)
    res_mixed = compare_models({"spatial": lean["spatial"], "plain": full["plain"]})
    for res in (res_lean, res_mixed):
        assert list(res.table["model"]) == list(res_full.table["model"])
        for col in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight"):
            np.testing.assert_allclose(res.table[col].to_numpy(float),
                                       res_full.table[col].to_numpy(float), atol=1e-7)
    # the difference's standard error from the stored per-city values alone
    d = (lean["spatial"][LOO_GROUP]["elpd_i"] - lean["plain"][LOO_GROUP]["elpd_i"]).values
    worse = res_lean.table.iloc[1]
    assert worse["elpd_diff"] == pytest.approx(abs(d.sum()), rel=1e-10)
    assert worse["dse"] == pytest.approx(np.sqrt(d.size * np.var(d)), rel=1e-10)


def test_lean_files_of_different_data_are_refused(spatial_error_case):
    truth, weights, sim, system = spatial_error_case
    eigs = np.linalg.eigvals(weights.matrix.toarray()).real
    a = _posterior(truth, truth.rho, seed=1)
    add_effects_and_loo(a, system, eigs, keep_pointwise=False)
    other = simulate_system(weights, truth, seed=6)
    system_b = build_system(parse_system(other.formulas, spatial_errors="all"), other.data,
                            weights=weights, check=False)
    b = _posterior(truth, truth.rho, seed=1)
    add_effects_and_loo(b, system_b, eigs, keep_pointwise=False)
    with pytest.raises(InputError, match="different values of the outcomes"):
        compare_models({"a": a, "b": b})
    c = _posterior(truth, truth.rho, seed=1)
    with pytest.raises(InputError, match="model c: no log_likelihood group and no stored LOO"):
        compare_models({"a": a, "c": c})


def _script():
    import importlib

    script = importlib.import_module("models.cli.sample_posteriors")
    return script


def _script_case(tmp_path, side: int = 5):
    case = write_lattice_case(tmp_path, side, seed=3)
    return case.sim, case.arguments() + [
        "--draws", "60", "--tune", "60", "--chains", "2", "--seed", "4", "--quiet"]


def _check_lean_and_full(tmp_path, n: int):
    lean, full = (az.from_netcdf(tmp_path / f"{k}.nc") for k in ("lean", "full"))
    assert LOO_GROUP in lean.groups() and "log_likelihood" not in lean.groups()
    assert {LOO_GROUP, "log_likelihood"} <= set(full.groups())
    assert lean[LOO_GROUP].sizes["city"] == n and "impact" in lean.posterior
    a, b = loo_result(lean), loo_result(full)
    np.testing.assert_allclose(a.loo_i.values, b.loo_i.values, atol=1e-8)
    assert a.elpd_loo == pytest.approx(b.elpd_loo, abs=1e-8)
    json.loads(lean.posterior.attrs["convergence_report"])  # the rest of the file is unchanged


def test_script_lean_by_rule_and_keep_pointwise_flag(tmp_path, monkeypatch, capsys):
    """scripts/sample_posteriors.py wiring (the sampler replaced by fixed draws around the
    truth, so no compilation): above the size rule (lowered here to 0 values) the file has the
    per-city ``loo`` group and no ``log_likelihood``; --keep-pointwise adds it back."""
    import models.bayes.postprocess as postprocess
    import models.bayes.sampling as sampling

    sim, base = _script_case(tmp_path)
    monkeypatch.setattr(sampling, "sample", lambda model, **kw: _posterior(sim.truth, {}, seed=9))
    monkeypatch.setattr(postprocess, "POINTWISE_LIMIT", 0)
    script = _script()
    assert script.main(base + ["--out", str(tmp_path / "lean.nc")]) == 0
    assert script.main(base + ["--out", str(tmp_path / "full.nc"), "--keep-pointwise"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'lean.nc'}" in out
    assert out.count("keeps the per-city PSIS-LOO result (group loo)") == 1  # lean run only
    _check_lean_and_full(tmp_path, 25)
    monkeypatch.setattr(postprocess, "POINTWISE_LIMIT", 4_000_000)
    assert script.main(base + ["--out", str(tmp_path / "small.nc")]) == 0
    assert "log_likelihood" in az.from_netcdf(tmp_path / "small.nc").groups()  # under the rule


@pytest.mark.slow
def test_script_lean_and_keep_pointwise_with_real_sampling(tmp_path, monkeypatch):
    """The same through nutpie (two short fits; same seed, so the same draws in both files)."""
    import models.bayes.postprocess as postprocess

    sim, base = _script_case(tmp_path)
    monkeypatch.setattr(postprocess, "POINTWISE_LIMIT", 0)
    script = _script()
    assert script.main(base + ["--out", str(tmp_path / "lean.nc")]) == 0
    assert script.main(base + ["--out", str(tmp_path / "full.nc"), "--keep-pointwise"]) == 0
    _check_lean_and_full(tmp_path, 25)
