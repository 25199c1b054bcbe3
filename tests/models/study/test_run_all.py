"""The whole study (contract 4): formulas, config validation, staging, and a quick tiny run."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep.errors import InputError
from models.study.headline import descriptive_table, joint_formulas, plain_formulas, system_formulas
from models.study.config import load_config

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "models" / "study" / "configs" / "tiny.toml"


def test_system_formulas_follow_the_paper():
    spatial = system_formulas("PSD", ["Gov", "Fdi"])
    assert spatial == ["ER ~ W(ER) + W(PSD) + PSD + Gov + Fdi", "PSD ~ W(PSD) + W(ER) + ER + Gov + Fdi"]
    assert system_formulas("PSS", ["Gov"], spatial=False) == ["ER ~ PSS + Gov", "PSS ~ ER + Gov"]


def test_exclusions_identify_the_system():
    spatial = system_formulas("PSS", ["Gov", "Fdi", "Rd"], exclude=(["Rd"], ["Gov"]))
    assert spatial == ["ER ~ W(ER) + W(PSS) + PSS + Gov + Fdi", "PSS ~ W(PSS) + W(ER) + ER + Fdi + Rd"]


def test_joint_formulas_hold_every_index_in_the_er_equation():
    f = joint_formulas(["PSS", "PSD"], ["Gov", "Fdi", "Rd"], exclude={"ER": ["Fdi"], "PSD": ["Gov"]})
    assert f == ["ER ~ W(ER) + W(PSS) + W(PSD) + PSS + PSD + Gov + Rd",
                 "PSS ~ W(PSS) + W(ER) + ER + Gov + Fdi + Rd",
                 "PSD ~ W(PSD) + W(ER) + ER + Fdi + Rd"]
    assert plain_formulas(f) == ["ER ~ PSS + PSD + Gov + Rd", "PSS ~ ER + Gov + Fdi + Rd",
                                 "PSD ~ ER + Fdi + Rd"]


def test_descriptive_table_matches_numpy():
    import xarray as xr

    values = np.array([[1.0, 2.0, np.nan], [4.0, 8.0, 16.0]])
    ds = xr.Dataset({"ER": (("city", "year"), values)})
    row = descriptive_table(ds, ["ER"]).iloc[0]
    finite = values[np.isfinite(values)]
    assert row["observations"] == 5
    assert np.isclose(row["sd"], np.std(finite, ddof=1)) and row["max"] == 16.0


# ------------------------------------------------------------------------- config validation

@pytest.mark.parametrize("text, words", [
    ('[bayes]\ndraws = "many"\n', "draws: must be a whole number"),
    ('[bayes]\ndraws = 0\n', "draws: must be at least 1"),
    ('[bayes]\nchains = -1\n', "chains: must be at least 1"),
    ('[bayes]\nsampler = "foo"\n', "sampler: must be one of nutpie, pymc"),
    ('[bayes]\ndraw = 10\n', "unknown key(s) draw in [bayes]"),
    ('[data]\nwinsorize = "yes"\n', "winsorize: must be a number"),
    ('[data]\ner_threshold = "x"\n', "er_threshold: must be a number"),
    ('[data]\ner_benchmark = "regional"\n', "er_benchmark: must be one of industry_mix, national"),
    ('[study]\ncontrols = "Gov"\n', "controls: must be a list of names"),
    ('[study]\njoint = 1\n', "joint: must be true or false"),
    ('[study]\nmundlak = "yes"\n', "mundlak: must be true or false"),
    ('[study]\ntables = [3]\n', "tables 4 to 10 only"),
    ('[study]\nexclude = { XX = ["Gov"] }\n', "exclude names XX"),
    ('[study]\ncontrols = ["Gov"]\nexclude = { ER = ["Fdi"] }\n', "exclude.ER names Fdi"),
    ('[data]\nemployment = "nowhere.csv"\n', "employment = 'nowhere.csv': file"),
    ('[colours]\nred = 1\n', "unknown section [colours]"),
    ('[bayes\n', "not valid TOML"),
])
def test_bad_config_value_is_one_line_naming_key_and_file(tmp_path, text, words):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_config(path)
    message = str(err.value)
    assert words in message and str(path) in message and "\n" not in message


def test_default_config_is_the_demo_and_quick_caps_the_sampler():
    cfg = load_config(None, quick=True)
    assert cfg.data == {} and cfg.joint and (cfg.draws, cfg.chains) == (200, 2)
    assert set(cfg.exclude) <= {"ER", *cfg.agglomeration}
    assert load_config(TINY).data["employment"].endswith("employment.csv")
    assert cfg.mundlak is False                 # Table 10 unchanged unless asked for


def test_config_er_benchmark_reaches_the_dataset(tmp_path):
    from models.study.headline import study_dataset

    tiny = ROOT / "models" / "study" / "configs" / "tiny"
    path = tmp_path / "study.toml"
    path.write_text(f'[data]\nemployment = "{tiny / "employment.csv"}"\n'
                    f'weights = "{tiny / "map.gal"}"\ner_benchmark = "national"\n'
                    '[study]\ncontrols = ["Gov"]\n')
    cfg = load_config(path)
    assert cfg.data["er_benchmark"] == "national"
    ds = study_dataset(cfg.data)
    assert '"er_benchmark": "national"' in ds.attrs["choices"]
    np.testing.assert_allclose(ds.ER.values, ds.ER_national.values, equal_nan=True)


# ------------------------------------------------------------------------- staging

def _fake_stages(monkeypatch, files: dict[str, str], fail: BaseException | None = None):
    from models.study import run as study_run

    def stage(study):
        for name, text in files.items():
            path = study.folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            study.written.append(path)
        (study.folder / "data.nc").write_bytes(b"data")
        if fail is not None:
            raise fail

    monkeypatch.setattr(study_run, "STAGES", [("fake", stage)])


def test_failed_or_interrupted_run_leaves_previous_results_untouched(tmp_path, monkeypatch):
    from models.study.run import run_study

    out = tmp_path / "results"
    _fake_stages(monkeypatch, {"tables/a.csv": "first"})
    run_study(load_config(TINY), out, progress=False)
    assert (out / "tables" / "a.csv").read_text() == "first" and (out / "manifest.json").exists()
    for failure in (KeyboardInterrupt(), InputError("bad")):
        _fake_stages(monkeypatch, {"tables/a.csv": "second", "tables/b.csv": "x"}, fail=failure)
        with pytest.raises(type(failure)):
            run_study(load_config(TINY), out, progress=False)
        assert (out / "tables" / "a.csv").read_text() == "first"
        assert not (out / "tables" / "b.csv").exists()
        assert [p.name for p in tmp_path.iterdir()] == ["results"]  # no staging folder left


def test_rerun_with_another_config_keeps_only_the_new_files(tmp_path, monkeypatch):
    import json

    from models.study.run import run_study

    out = tmp_path / "results"
    out.mkdir()
    (out / "README.md").write_text("kept")
    _fake_stages(monkeypatch, {"tables/old.csv": "1", "figures/old.png": "2"})
    run_study(load_config(TINY), out, progress=False)
    _fake_stages(monkeypatch, {"tables/new.csv": "3"})
    run_study(load_config(None), out, progress=False)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["README.md", "data.nc", "manifest.json", "report.md", "tables/new.csv"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [entry["path"] for entry in manifest["files"]] == ["report.md", "tables/new.csv"]
    assert manifest["config_hash"] == load_config(None).digest()


# ------------------------------------------------------------------------- the script

def run(args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "run_all.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=900)


def test_bad_config_stops_before_any_work(tmp_path):
    out = tmp_path / "results"
    for text, words in [('[study]\ncontrols = ["Gov", "NoSuchVariable"]\n', "NoSuchVariable"),
                        ('[bayes]\ndraw = 10\n', "unknown key(s) draw in [bayes]"),
                        ('[data]\nemployment = "gone.csv"\nweights = "gone.gal"\n', "gone.csv")]:
        config = tmp_path / "bad.toml"
        config.write_text(text)
        result = run(["--config", str(config), "--out", str(out)], tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert words in result.stderr
        assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


def test_quick_tiny_study_writes_every_file_and_reproduces(tmp_path):
    config = tmp_path / "tiny.toml"
    text = TINY.read_text().replace('"tiny/', f'"{TINY.parent / "tiny"}/')
    config.write_text(text.replace("paper_specification = true", "paper_specification = false"))
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        result = run(["--config", str(config), "--out", str(out), "--quick"], tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"to {out}" in result.stdout
    tables = sorted(p.relative_to(first) for p in (first / "tables").glob("*.csv"))
    for name in ["table1_descriptive", "moran_i", "table2_pss_system", "table2_pss_compare",
                 "table2_pss_impacts", "table3_psd_system", "table3_psd_compare",
                 "table3_psd_impacts",
                 "table4_alternative_measures", "table5_subsample_fixed_effects",
                 "table6_instruments", "table7_pss_regimes", "table8_psd_regimes",
                 "table9_quadratic", "table10_factor_model"]:
        assert Path("tables") / f"{name}.csv" in tables, name
        assert (first / "tables" / f"{name}.md").is_file(), name
    for rel in tables:
        frame = pd.read_csv(first / rel)
        assert len(frame) > 0, rel
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    for rel in ["report.md", "manifest.json", "data.nc", "posteriors/system_headline.nc",
                "figures/figure1_moran_ER.png",
                "figures/headline_coefficients_forest.png"]:
        assert (first / rel).is_file(), rel
    # a preview fits no further structures for the LOO ranking, and says so
    assert not (first / "tables" / "loo_headline.csv").exists()
    assert len(list((first / "figures").glob("*.png"))) >= 11   # no LOO figure in a preview
    report = (first / "report.md").read_text()
    assert "## Verdicts" in report and "Table 2" in report and "| total |" in report
    assert "the total impact of a unit shock to the PSS equation on ER is " in report
    assert "within one GS3SLS standard error" in report and "| agree |" not in report
    impacts = pd.read_csv(first / "tables" / "table2_pss_impacts.csv")
    assert {"ER", "PSS"} == set(impacts["response"]) and impacts["mean"].notna().all()
    assert not list(tmp_path.rglob(".*staging*")) and not list(first.rglob(".*.tmp"))


def test_quick_demo_reports_the_truth_and_draws_the_maps(tmp_path):
    """The default study (embedded demo, known truth, polygons) in quick mode."""
    out = tmp_path / "results"
    result = run(["--quick", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "Recovery (headline system, every equation): the truth lies inside" in report
    assert "generated from a known structural system" in report
    compare = pd.read_csv(out / "tables" / "table2_pss_compare.csv")
    assert compare["truth"].notna().all() and {"ER", "PSS"} == set(compare["equation"])
    for name in ["map_indices.png", "map_lisa_ER.png", "headline_map_effect_PSS_on_ER.png",
                 "headline_coefficients_forest.png"]:
        assert (out / "figures" / name).is_file(), name
    assert "LOO model comparisons: not run in quick mode (a preview)" in report
    table10 = pd.read_csv(out / "tables" / "table10_factor_model.csv")
    assert "Full sample Tobit" in table10.columns and "Full sample Bayes" not in table10.columns
