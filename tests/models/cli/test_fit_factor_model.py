"""scripts/fit_factor_model.py (docs/contracts.md contract 5) end to end, and its refusals."""

import subprocess
import sys
from pathlib import Path

import arviz as az
import pandas as pd
import pytest

from data_prep.synthetic.censored import simulate_censored_panel
from tests.references import tobit_brute_force

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "fit_factor_model.py"


def _run(*argv):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, argv)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def panel_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("factor")
    sim = simulate_censored_panel((10, 10), n_years=5, upper=1.0, alpha=0.5, sd_city=0.1, seed=6)
    sim.data.to_csv(folder / "d.csv", index=False)
    return folder, sim


def test_tobit_writes_contract_frame(panel_csv):
    folder, _ = panel_csv
    out = folder / "tobit.csv"
    res = _run("--data", folder / "d.csv", "--formula", "y ~ x1 + x2", "--lower", 0,
               "--upper", 1, "--method", "tobit", "--group", "group", "--effects", "year",
               "--out", out)
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["equation", "term", "estimate", "std_error", "statistic",
                                   "p_value"]
    assert {"x1", "sigma", "x1[g1]", "x2[g2]", "sigma[g2]"} <= set(frame["term"])
    assert (frame["equation"] == "y").all()
    assert f"wrote {out}" in res.stdout


def test_tobit_city_effects_warn(panel_csv):
    folder, _ = panel_csv
    res = _run("--data", folder / "d.csv", "--formula", "y ~ x1 + x2", "--lower", 0,
               "--upper", 1, "--method", "tobit", "--effects", "city,year",
               "--out", folder / "fe.csv")
    assert res.returncode == 0, res.stderr
    assert "incidental-parameter" in res.stderr


def test_bayes_writes_idata_summary_contrasts_and_plot(panel_csv):
    folder, _ = panel_csv
    out = folder / "post.nc"
    res = _run("--data", folder / "d.csv", "--formula", "y ~ x1 + x2", "--lower", 0,
               "--upper", 1, "--method", "bayes", "--group", "group", "--effects", "city,year",
               "--draws", 300, "--tune", 300, "--chains", 2, "--seed", 3, "--quiet",
               "--plots", folder / "figs", "--out", out)
    assert res.returncode == 0, res.stderr
    summary = pd.read_csv(folder / "post_summary.csv")
    assert list(summary.columns) == ["equation", "term", "mean", "sd", "hdi_low", "hdi_high",
                                     "r_hat", "ess_bulk"]
    assert {"x1", "x1[g1]", "x2[g2]", "sigma"} <= set(summary["term"])
    idata = az.from_netcdf(out)
    assert idata.posterior["phi_group"].dims == ("chain", "draw", "group", "factor")
    assert (folder / "post_contrasts.csv").exists()
    assert (folder / "figs" / "post_ppc.png").stat().st_size > 1000


@pytest.mark.parametrize("change,args,message", [
    (lambda d: d.assign(x2=2.0), (), "regressor x2 has no variation"),
    (None, ("--group", "group"), "fewer cities than the 3 parameters"),
    (lambda d: d.assign(y=d["y"] + 0.5), ("--upper", 1), "values above the upper bound"),
    (lambda d: d.assign(y=0.3 + 0.1 * d["x1"].clip(-1, 1)), (), "no observation is censored; "
                                                                 "use OLS"),
    (None, ("--effects", "city,region"), "unknown effect region"),
    (lambda d: d.drop(columns="x1"), (), "unknown column x1"),
    # the id column is needed only by the flags that use it, and the error names both
    (lambda d: d.drop(columns="city"), ("--effects", "city,year"),
     "no id column city, which --effects city,year needs"),
    (lambda d: d.drop(columns="city"), ("--group", "group"),
     "no id column city, which --group group needs"),
    (lambda d: d.drop(columns="city"), ("--mundlak",), "no id column city, which --mundlak"),
    (None, ("--mundlak", "--effects", "city"), "the city dummies absorb the city means"),
])
def test_bad_input_one_line_and_no_file(tmp_path, change, args, message):
    small = simulate_censored_panel((2, 5), n_years=4, seed=1).data
    data = change(small) if change else small
    data.to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "out.csv"
    res = _run("--data", tmp_path / "d.csv", "--formula", "y ~ x1 + x2", "--lower", 0,
               "--method", "tobit", *args, "--out", out)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["d.csv"]


@pytest.fixture(scope="module")
def cross_section_csv(tmp_path_factory):
    """A plain cross-section, 300 rows, no city (or year) column: a censored-at-0 outcome."""
    import numpy as np

    folder = tmp_path_factory.mktemp("cross")
    rng = np.random.default_rng(12)
    X = np.column_stack([np.ones(300), rng.standard_normal((300, 2))])
    y = np.maximum(X @ np.array([0.2, 1.0, -0.5]) + 0.8 * rng.standard_normal(300), 0.0)
    pd.DataFrame({"y": y, "x1": X[:, 1], "x2": X[:, 2]}).to_csv(folder / "d.csv", index=False)
    return folder, y, X


def test_tobit_on_a_cross_section_without_a_city_column(cross_section_csv):
    """Rows are the units; the estimates equal the direct ML of the Tobit log-likelihood."""
    import numpy as np

    folder, y, X = cross_section_csv
    out = folder / "tobit.csv"
    res = _run("--data", folder / "d.csv", "--formula", "y ~ x1 + x2", "--lower", 0,
               "--method", "tobit", "--out", out)
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(out).set_index("term")
    assert frame.index.tolist() == ["Intercept", "x1", "x2", "sigma"]
    ref, ref_se = tobit_brute_force(y, X, 0.0, None)
    np.testing.assert_allclose(frame["estimate"].to_numpy(), ref, atol=1e-4)
    np.testing.assert_allclose(frame["std_error"].to_numpy(), ref_se, rtol=1e-2)


def test_bayes_on_a_cross_section_without_a_city_column(cross_section_csv):
    folder, _, _ = cross_section_csv
    out = folder / "post.nc"
    res = _run("--data", folder / "d.csv", "--formula", "y ~ x1 + x2", "--lower", 0,
               "--method", "bayes", "--draws", 100, "--tune", 100, "--chains", 1, "--seed", 1,
               "--quiet", "--out", out)
    assert res.returncode == 0, res.stderr
    summary = pd.read_csv(folder / "post_summary.csv")
    assert summary["term"].tolist() == ["Intercept", "x1", "x2", "sigma"]
    assert abs(summary.set_index("term").loc["x1", "mean"] - 1.0) < 0.3


def test_bayes_refuses_unknown_prior_before_sampling(panel_csv, tmp_path):
    folder, _ = panel_csv
    out = tmp_path / "post.nc"
    res = _run("--data", folder / "d.csv", "--formula", "y ~ x1 + x2", "--lower", 0,
               "--upper", 1, "--method", "bayes", "--prior", "slope_sd=2", "--out", out)
    assert res.returncode == 2 and "unknown prior 'slope_sd'" in res.stderr
    assert not out.exists()
