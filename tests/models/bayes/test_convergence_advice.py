"""Issue 18: sampler settings reach the sampler, advice names the flag or config key, quick
mode is a preview, and the report never hides a failed posterior (tables, warnings, LOO)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_prep.errors import InputError
from data_prep.synthetic.simulate import lattice_weights, simulate_system
from models.bayes.sampling import (FULL, PREVIEW, convergence_report, convergence_word,
                                   study_checks)
from models.study.system_fit import SystemFit, paper_system_table, warning_lines
from tests.references import fake_loo_fit

ROOT = Path(__file__).resolve().parents[3]
FORMULAS = ["ER ~ W(ER) + W(PSS) + PSS + x1 + x2 + z1",
            "PSS ~ W(PSS) + W(ER) + ER + x1 + x2 + z2"]


def _idata(chains=2, draws=200, shift=0.0, diverging=0, seed=0) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    coef = rng.standard_normal((chains, draws, 1, 2))
    coef[0] += shift                       # chain 0 elsewhere: R-hat far above 1.1
    div = np.zeros((chains, draws), dtype=bool)
    div[0, :diverging] = True
    return az.InferenceData(
        posterior=xr.Dataset({"coef": (("chain", "draw", "equation", "term"), coef)},
                             coords={"equation": ["ER"], "term": ["a", "b"]}),
        sample_stats=xr.Dataset({"diverging": (("chain", "draw"), div)}))


# ------------------------------------------------------------------ advice and preview checks

def test_divergence_advice_names_the_flag_in_a_script_and_the_key_in_a_study():
    idata = _idata(chains=4, draws=500, diverging=3)
    script = convergence_report(idata)
    assert any("raise the target acceptance (--target-accept 0.95)" in line for line in script)
    study = convergence_report(idata, checks=study_checks(False))
    assert any("([bayes] target_accept = 0.95)" in line for line in study)
    idata.attrs["target_accept"] = 0.95    # already raised: propose the next step
    assert any("--target-accept 0.99" in line for line in convergence_report(idata))


def test_model_advice_and_ess_advice_name_the_setting():
    idata = _idata(chains=2, draws=50, shift=3.0)
    lines = convergence_report(idata, advice="Draw more samples ({draws}).")
    assert any(re.search(r"chains disagree\. Draw more samples \(--draws \d+00\)\.$", line)
               for line in lines)
    assert any("below 400: draw more samples (--draws" in line for line in lines)
    quick = convergence_report(idata, checks=study_checks(True))
    assert any("quick mode caps the draws: run without --quick" in line for line in quick)


def test_tree_depth_hits_are_reported_with_the_setting():
    idata = _idata(chains=4, draws=500)
    hits = np.zeros((4, 500), dtype=bool)
    hits[2, :7] = True
    idata.sample_stats["maxdepth_reached"] = (("chain", "draw"), hits)
    lines = convergence_report(idata, checks=study_checks(False))
    assert lines[0].startswith("Convergence checks passed")   # efficiency, not validity
    assert any("7 of 2000 transitions reached the maximum tree depth (10)" in line
               and "[bayes] max_treedepth = 12" in line for line in lines)


def test_preview_thresholds_fit_two_chains_of_200_draws():
    idata = _idata(chains=2, draws=200, seed=3)
    full = convergence_report(idata, checks=FULL)
    preview = convergence_report(idata, checks=PREVIEW)
    ess = float(az.ess(idata.posterior, method="bulk")["coef"].min())
    assert 100 <= ess < 400                              # fails the full rule, not the preview's
    assert convergence_word(full) == "did NOT converge"
    assert convergence_word(preview) == "converged (preview)"
    assert "preview thresholds: R-hat ≤ 1.05, bulk-ESS ≥ 100" in preview[0]
    bad = convergence_report(_idata(shift=3.0), checks=PREVIEW)
    assert convergence_word(bad) == "did NOT converge (preview)"


# ------------------------------------------------------------------ the report hides nothing

def _failed_fit() -> SystemFit:
    """A two-equation fit whose posterior failed (R-hat > 1.1), from constructed draws."""
    idata = _idata(chains=4, draws=100, shift=3.0)
    fit = SystemFit(["ER ~ W(ER) + a + b"], None, nobs=10, idata=idata)
    fit.convergence = convergence_report(idata)
    fit.summary = pd.DataFrame({"equation": "ER", "term": ["W(ER)", "a", "b"],
                                "mean": [0.5, 1.0, 2.0], "sd": 0.1, "hdi_low": [0.3, 0.8, 1.8],
                                "hdi_high": [0.7, 1.2, 2.2], "r_hat": 1.5, "ess_bulk": 8.0})
    return fit


def test_failed_posterior_column_has_no_dagger_and_says_so():
    fit = _failed_fit()
    assert float(az.rhat(fit.idata.posterior)["coef"].max()) > 1.1
    assert fit.posterior_failed and fit.verdict == "did NOT converge"
    good = _failed_fit()
    good.convergence = ["Convergence checks passed: smallest bulk-ESS 900."]
    table = paper_system_table({"(1)": fit, "(2)": good}, methods=())
    rows = table.set_index("term")
    assert "†" not in "".join(table["(1) Bayes: ER"])        # every interval excludes 0
    assert rows.loc["W(ER)", "(2) Bayes: ER"] == "0.500†"
    assert rows.loc["Posterior"].tolist() == ["did NOT converge", "converged"]


def test_every_warning_reaches_the_report_grouped():
    fits = {}
    for k in range(4):
        fit = _failed_fit()
        fit.notes = [f"note {i}" for i in range(5)] + [f"own note of fit {k}"]
        fits[f"fit {k}"] = fit
    lines = warning_lines(fits)
    assert lines[0] == "Bayesian warnings:"
    text = "\n".join(lines)
    assert "* note 4 (×4: fit 0, fit 1, fit 2, fit 3)" in text           # counted, once
    assert all(f"* own note of fit {k} (fit {k})" in text for k in range(4))
    failed = [line for line in lines if "Convergence checks FAILED" in line]
    assert len(failed) == 1 and failed[0].endswith("(×4: fit 0, fit 1, fit 2, fit 3)")
    report = len(_failed_fit().convergence)
    assert len(lines) == 2 + report + 5 + 4 + 1        # heading + blank, each message once, blank


def test_loo_ranking_leaves_out_non_converged_fits():
    from models.bayes.model_comparison import compare_models
    models = {"a": fake_loo_fit(0.0, seed=1), "b": fake_loo_fit(0.05, seed=1),
              "bad": fake_loo_fit(-2.0, seed=2)}
    models["bad"].attrs["convergence_report"] = json.dumps(
        ["Convergence checks FAILED: largest R-hat 1.570, 36 divergences."])
    models["a"].attrs["convergence_report"] = json.dumps(["Convergence checks passed: x."])
    result = compare_models(models)
    assert set(result.table["model"]) == {"a", "b"}       # "bad" would rank first
    assert "Left out of the ranking: bad, whose posterior did not converge" in result.sentence
    assert "largest R-hat 1.570" in result.sentence and list(result.left_out) == ["bad"]
    models["b"].attrs["convergence_report"] = models["bad"].attrs["convergence_report"]
    with pytest.raises(InputError, match="no LOO ranking: 1 of 3 models converged"):
        compare_models(models)


# ------------------------------------------------------------------ settings reach the sampler

class _Stop(Exception):
    pass


@pytest.fixture
def captured(monkeypatch):
    """nutpie.sample and the compilation replaced: the model and the sampler's kwargs kept."""
    import nutpie

    import models.bayes.sampling as sampling

    seen = {}

    def compiled(model, jitter):
        seen["model"] = model
        return object()

    def fake_sample(compiled_model, **kwargs):
        seen["kwargs"] = kwargs
        raise _Stop

    monkeypatch.setattr(sampling, "_compiled", compiled)
    monkeypatch.setattr(nutpie, "sample", fake_sample)
    return seen


def _prior_sigma(model, name: str) -> float:
    return float(np.asarray(model[name].owner.inputs[-1].eval()).ravel()[0])


def _load(name: str):
    module = importlib.import_module(f"models.cli.{name}")
    return module


def test_sample_posteriors_flags_reach_nutpie_and_the_model(tmp_path, captured, lattice_files):
    argv = lattice_files(side=5, seed=2).arguments(FORMULAS) + [
        "--out", str(tmp_path / "p.nc"), "--quiet", "--target-accept", "0.93",
        "--max-treedepth", "12", "--prior", "structural_sigma=0.2"]
    script = _load("sample_posteriors")
    with pytest.raises(_Stop):
        script.run(script.build_parser().parse_args(argv))
    assert captured["kwargs"]["target_accept"] == 0.93 and captured["kwargs"]["maxdepth"] == 12
    assert _prior_sigma(captured["model"], "structural_std") == pytest.approx(0.2)
    bad = script.build_parser().parse_args(argv[:-1] + ["slope=1"])
    with pytest.raises(InputError, match="unknown prior 'slope'; allowed: structural_sigma"):
        script.run(bad)


def test_script_prior_names_are_the_models():
    from models.bayes import censored, system

    assert _load("sample_posteriors").PRIOR_NAMES == (tuple(system.DEFAULT_PRIORS)
                                                     + tuple(system.STUDENT_T_PRIORS))
    assert set(_load("fit_quadratic").PRIOR_NAMES) <= set(system.DEFAULT_PRIORS)
    assert _load("fit_factor_model").PRIOR_NAMES == tuple(censored.DEFAULT_PRIORS)


def test_study_settings_reach_the_sampler_and_the_model(monkeypatch, captured):
    from types import SimpleNamespace

    from models.study.run import Study, _fitter

    w = lattice_weights(5)
    sim = simulate_system(w, seed=2)
    settings = dict(draws=20, tune=20, chains=2, seed=1, sampler="nutpie", progress=False,
                    target_accept=0.91, max_treedepth=11, priors={"structural_sigma": 0.3})
    monkeypatch.setattr(Study, "bayes_settings", lambda self: dict(settings))
    study = Study(SimpleNamespace(quick=False, instruments=[]), folder=Path("."))
    study.frame, study.weights = sim.data, sim.W
    study.eigenvalues = np.linalg.eigvals(w.matrix.toarray()).real
    assert study.sampler_settings()["checks"] == study_checks(False)
    with pytest.raises(_Stop):
        _fitter(study)(FORMULAS, frequentist=False)
    assert captured["kwargs"]["target_accept"] == 0.91 and captured["kwargs"]["maxdepth"] == 11
    assert _prior_sigma(captured["model"], "structural_std") == pytest.approx(0.3)


def test_pymc_gets_the_settings_through_nuts(monkeypatch):
    import pymc as pm

    import models.bayes.sampling as sampling

    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(pm, "sample", fake)
    with pm.Model() as model:
        pm.Normal("x")
    with pytest.raises(_Stop):
        sampling.sample(model, sampler="pymc", target_accept=0.9, max_treedepth=9)
    assert seen["nuts"] == {"target_accept": 0.9, "max_treedepth": 9}
    with pytest.raises(InputError, match="target acceptance must lie between 0 and 1"):
        sampling.sample(model, sampler="pymc", target_accept=1.5)


# ------------------------------------------------------------------ quick mode on a real fit

def test_quick_mode_calls_a_well_identified_system_converged_preview():
    from models.study.system_fit import fit_system

    w = lattice_weights(7)
    sim = simulate_system(w, seed=5)
    eigs = np.linalg.eigvals(w.matrix.toarray()).real
    fit = fit_system(FORMULAS, sim.data, w, eigs, frequentist=False, effects=False,
                     draws=200, tune=200, chains=2, seed=4, checks=study_checks(True))
    assert fit.verdict == "converged (preview)", fit.convergence
