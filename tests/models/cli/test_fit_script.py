"""scripts/fit_gs3sls.py end to end: contract-2 output, tables, and bad input writing nothing."""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep.synthetic.simulate import simulate_system
from tests.fixtures import write_city_files, write_lattice_case

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "fit_gs3sls.py"
FORMULAS = ["ER ~ W(ER) + W(PSS) + PSS + x1 + x2 + z1",
            "PSS ~ W(PSS) + W(ER) + ER + x1 + x2 + z2"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    case = write_lattice_case(tmp_path_factory.mktemp("fit"), side=8, seed=11)
    return case.folder, case.sim, case.weights


def _argv(folder, *extra, equations=FORMULAS):
    argv = []
    for f in equations:
        argv += ["--equation", f]
    return argv + ["--data", str(folder / "d.csv"), "--weights", str(folder / "w.gal"), *extra]


def _script_module():
    module = importlib.import_module("models.cli.fit_gs3sls")
    return module


def test_end_to_end_subprocess_matches_library(inputs):
    folder, sim, w = inputs
    out = folder / "run1" / "coef.csv"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *_argv(folder, "--method", "gs3sls", "--spatial-errors",
                                             "ER", "--out", str(out), "--table",
                                             str(folder / "run1" / "tab"))],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout and "GS3SLS" in proc.stdout
    coef = pd.read_csv(out)
    assert list(coef.columns) == ["equation", "term", "estimate", "std_error", "statistic",
                                  "p_value"]
    from models.frequentist import estimate
    from models.spec.system import build_system, parse_system

    ref = estimate(build_system(parse_system(FORMULAS, spatial_errors="ER"), sim.data, w),
                   "gs3sls").to_frame()
    np.testing.assert_allclose(coef["estimate"], ref["estimate"], rtol=1e-9)
    assert coef["term"].tolist()[:3] == ["W(ER)", "W(PSS)", "PSS"]
    md = (folder / "run1" / "tab.md").read_text()
    assert md.startswith("| term | ER | PSS |")
    table = pd.read_csv(folder / "run1" / "tab.csv", keep_default_na=False)
    assert table["term"].tolist()[-2:] == ["Observations", "R²"]
    assert table.loc[table["term"] == "Observations", "ER"].item() == "64"
    assert (folder / "run1" / "tab.tex").exists()


def test_help():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "--spatial-errors" in proc.stdout


def test_bad_input_subprocess_writes_nothing(inputs):
    folder, _, _ = inputs
    out = folder / "bad" / "coef.csv"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT),
         *_argv(folder, "--out", str(out), "--table", str(folder / "bad" / "tab"),
                equations=["ER ~ PSS + x1 + nope", "PSS ~ ER + x1 + z2"])],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: equation ER: unknown variable nope "
                                   "(not a column of the data)")
    assert not (folder / "bad").exists()


@pytest.mark.parametrize("equations, extra, message", [
    (["ER ~ PSS + x1 + x2", "PSS ~ ER + x1 + x2"], ["--method", "3sls", "--weights", ""],
     "error: equation ER: 1 endogenous regressor (PSS) but only 0 excluded instruments"),
    (FORMULAS, ["--weights", "missing.gal"], "error: "),
    (FORMULAS, ["--spatial-errors", "GDP"], "error: spatial errors requested for GDP"),
    (["ER ~ PSS + x1 + x2", "PSS ~ ER + x1 + x2"], ["--instruments", "zz"],
     "error: instrument zz: unknown variable"),
])
def test_bad_inputs_write_nothing(inputs, tmp_path, capsys, equations, extra, message):
    folder, _, _ = inputs
    argv = _argv(folder, "--out", str(tmp_path / "coef.csv"), "--table", str(tmp_path / "t"),
                 equations=equations)
    # later options override the defaults above; an empty --weights means none
    for k in range(0, len(extra), 2):
        if extra[k] in argv:
            i = argv.index(extra[k])
            argv[i + 1] = extra[k + 1]
        else:
            argv += extra[k:k + 2]
    if "" in argv:
        i = argv.index("")
        del argv[i - 1:i + 1]
    assert _script_module().main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_polygon_weights_with_an_island(tmp_path, capsys):
    import geopandas as gpd
    from shapely.geometry import box

    from data_prep.weights import weights_from_polygons

    cells = [box(i, j, i + 1, j + 1) for i in range(5) for j in range(5)] + [box(9, 9, 10, 10)]
    gdf = gpd.GeoDataFrame({"city": [f"k{i:02d}" for i in range(len(cells))]}, geometry=cells,
                           crs="EPSG:3857")
    gdf.to_file(tmp_path / "map.geojson", driver="GeoJSON")
    sim = simulate_system(weights_from_polygons(gdf, island_policy="nearest"), seed=4)
    sim.data.to_csv(tmp_path / "d.csv", index=False)
    base = []
    for f in FORMULAS:
        base += ["--equation", f]
    base += ["--data", str(tmp_path / "d.csv"), "--weights", str(tmp_path / "map.geojson"),
             "--out", str(tmp_path / "out" / "coef.csv")]
    module = _script_module()
    assert module.main(base) == 2
    assert "island cities with no neighbour: k25" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert module.main(base + ["--island-policy", "nearest", "--method", "2sls"]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "coef.csv")) == 14


def test_clustered_standard_errors_by_a_data_column(inputs, tmp_path, capsys):
    from models.frequentist import estimate
    from models.spec.system import build_system

    folder, sim, w = inputs
    data = sim.data.assign(block=np.arange(len(sim.data)) // 4)
    write_city_files(tmp_path, data, w)
    out = tmp_path / "coef.csv"
    code = _script_module().main([*_argv(tmp_path, "--cov", "clustered", "--cluster", "block",
                                         "--out", str(out))])
    assert code == 0 and "clustered by 16 clusters" in capsys.readouterr().out
    coef = pd.read_csv(out)
    assert list(coef.columns) == ["equation", "term", "estimate", "std_error", "statistic",
                                  "p_value"]
    ref = estimate(build_system(FORMULAS, data, w), "gs3sls", cov_type="clustered",
                   clusters=data["block"].to_numpy()).to_frame()
    np.testing.assert_allclose(coef["std_error"], ref["std_error"], rtol=1e-9)
    for extra, words in ((("--cov", "clustered"), "go together"),
                         (("--cov", "clustered", "--cluster", "nope"), "no column nope")):
        code = _script_module().main([*_argv(tmp_path, *extra, "--out",
                                             str(tmp_path / "x.csv"))])
        assert code == 2 and words in capsys.readouterr().err
        assert not (tmp_path / "x.csv").exists()


def test_heteroskedastic_run_writes_rho_rows(inputs, tmp_path, capsys):
    from models.frequentist import estimate
    from models.spec.system import build_system, parse_system

    folder, sim, w = inputs
    out = tmp_path / "coef.csv"
    code = _script_module().main([*_argv(folder, "--heteroskedastic", "--spatial-errors", "ER",
                                         "--method", "gs3sls", "--out", str(out))])
    assert code == 0 and "heteroskedasticity-robust" in capsys.readouterr().out
    coef = pd.read_csv(out)
    assert list(coef.columns) == ["equation", "term", "estimate", "std_error", "statistic",
                                  "p_value"]
    rho = coef[coef["term"] == "rho"]
    assert list(rho["equation"]) == ["ER"] and len(coef) == 15
    assert np.isfinite(rho[["estimate", "std_error"]].to_numpy()).all()
    ref = estimate(build_system(parse_system(FORMULAS, spatial_errors="ER"), sim.data, w),
                   "gs3sls", heteroskedastic=True)
    np.testing.assert_allclose(rho["estimate"], [ref.rho["ER"]], rtol=1e-9)
    np.testing.assert_allclose(coef["std_error"], ref.to_frame()["std_error"], rtol=1e-9)
    code = _script_module().main([*_argv(folder, "--heteroskedastic", "--cov", "clustered",
                                         "--cluster", "city", "--out",
                                         str(tmp_path / "x.csv"))])
    assert code == 2 and "exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
