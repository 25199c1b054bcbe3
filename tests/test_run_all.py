"""The whole study on the embedded demo (contract 4), with a tiny sampler budget."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from models.study import descriptive_table, system_formulas

ROOT = Path(__file__).resolve().parents[1]


def test_system_formulas_follow_the_seed():
    spatial = system_formulas("PSD", ["Gov", "Fdi"])
    assert spatial == ["ER ~ W(ER) + W(PSD) + PSD + Gov + Fdi", "PSD ~ W(PSD) + W(ER) + ER + Gov + Fdi"]
    assert system_formulas("PSS", ["Gov"], spatial=False) == ["ER ~ PSS + Gov", "PSS ~ ER + Gov"]


def test_descriptive_table_matches_numpy():
    import xarray as xr

    values = np.array([[1.0, 2.0, np.nan], [4.0, 8.0, 16.0]])
    ds = xr.Dataset({"ER": (("city", "year"), values)})
    row = descriptive_table(ds, ["ER"]).iloc[0]
    finite = values[np.isfinite(values)]
    assert row["observations"] == 5
    assert np.isclose(row["sd"], np.std(finite, ddof=1)) and row["max"] == 16.0


def run(args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "run_all.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def test_run_all_writes_the_study(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text('[study]\nagglomeration = ["PSS"]\n'
                      '[bayes]\ndraws = 40\ntune = 40\nchains = 1\nseed = 3\n')
    out = tmp_path / "results"
    result = run(["--config", str(config), "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ["tables/table1_descriptive.csv", "tables/table2_pss_system.md",
                 "tables/table2_pss_system_posterior.csv", "tables/table2_pss_compare.csv",
                 "figures/figure1_moran_ER.png", "figures/diagnostics_pss_forest.png",
                 "posteriors/system_pss.nc", "report.md"]:
        assert (out / name).is_file(), name
    table1 = pd.read_csv(out / "tables" / "table1_descriptive.csv").set_index("variable")
    assert table1.loc["PSS", "observations"] == 241 * 12
    compare = pd.read_csv(out / "tables" / "table2_pss_compare.csv")
    assert {"ER", "PSS"} <= set(compare["equation"]) and compare["z"].notna().all()
    assert "Table 2" in (out / "report.md").read_text()
    assert not list(out.rglob(".*.tmp")) and not list(out.rglob(".*.nc"))


def test_bad_config_is_one_line_and_writes_nothing(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[study]\ncontrols = ["Gov", "NoSuchVariable"]\n')
    out = tmp_path / "results"
    result = run(["--config", str(config), "--out", str(out)], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "NoSuchVariable" in result.stderr
    assert not out.exists()


def test_unknown_config_key_is_reported(tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text('[bayes]\ndraw = 10\n')
    result = run(["--config", str(config), "--out", str(tmp_path / "r")], tmp_path)
    assert result.returncode == 2 and "unknown key(s) draw in [bayes]" in result.stderr


def test_exclusions_identify_the_system():
    spatial = system_formulas("PSS", ["Gov", "Fdi", "Rd"], exclude=(["Rd"], ["Gov"]))
    assert spatial == ["ER ~ W(ER) + W(PSS) + PSS + Gov + Fdi", "PSS ~ W(PSS) + W(ER) + ER + Fdi + Rd"]
