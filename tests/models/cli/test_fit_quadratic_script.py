"""scripts/fit_quadratic.py end to end (docs/contracts.md contract 6): outputs, figures, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep.synthetic.simulate import lattice_weights
from models.bayes.idata import coef_grid, is_internal
from tests.fixtures import write_city_files

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "fit_quadratic.py"
COEF = ["equation", "term", "estimate", "std_error", "statistic", "p_value", "ci_low", "ci_high"]
SUMMARY = ["equation", "term", "mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess_bulk"]
TRUE_TURNING_POINT = 2.0   # y = 1 + 2A − 0.5A² + …


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quad")
    w = lattice_weights(15)
    n = len(w.cities)
    rng = np.random.default_rng(17)
    A = rng.uniform(0, 4, n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = 1 + 2 * A - 0.5 * A ** 2 + 0.7 * x1 - 0.3 * x2 + 0.8 * rng.normal(size=n)
    df = pd.DataFrame({"city": list(w.cities), "y": y, "A": A, "x1": x1, "x2": x2,
                       "binary": (A > 2).astype(int), "flat": 5.0})
    write_city_files(folder, df, w)
    return folder, df


def _run(folder, *args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), "--data", str(folder / "d.csv"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_help():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "--quadratic" in proc.stdout and "--spatial-lag" in proc.stdout


def test_ols_contract_matches_library_and_plots(inputs):
    from models.frequentist.quadratic import fit_quadratic_frequentist
    from models.spec.quadratic import build_quadratic

    folder, df = inputs
    out = folder / "ols" / "quad.csv"
    proc = _run(folder, "--formula", "y ~ A + x1 + x2", "--quadratic", "A", "--method", "ols",
                "--out", str(out), "--plots", str(folder / "fig"))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout and "Fieller 95% set" in proc.stdout
    frame = pd.read_csv(out)
    assert list(frame.columns) == COEF
    assert frame.term.tolist() == ["Intercept", "A", "A^2", "x1", "x2", "turning_point",
                                   "lind_mehlum"]
    assert (frame.equation == "y").all()
    ref = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1 + x2", "A")).to_frame()
    np.testing.assert_allclose(frame.estimate, ref.estimate, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(frame.p_value, ref.p_value, rtol=1e-8, equal_nan=True)
    tp = frame.set_index("term").loc["turning_point"]
    c = frame.set_index("term").estimate
    assert tp.estimate == pytest.approx(-c["A"] / (2 * c["A^2"]))
    assert tp.ci_low < TRUE_TURNING_POINT < tp.ci_high
    png = folder / "fig" / "quadratic_y_A.png"
    assert f"wrote {png}" in proc.stdout and png.read_bytes()[:4] == b"\x89PNG"


def test_ols_spatial_lag_reports_total_effect(inputs):
    folder, _ = inputs
    out = folder / "sar.csv"
    proc = _run(folder, "--formula", "y ~ A + x1 + x2", "--quadratic", "A", "--method", "ols",
                "--weights", str(folder / "w.gal"), "--spatial-lag", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(out)
    assert frame.term.tolist()[0] == "W(y)"
    assert "Total effect of A" in proc.stdout and "same point" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["--formula", "y ~ binary + x1", "--quadratic", "binary"], "only 2 distinct"),
    (["--formula", "y ~ A + x1", "--quadratic", "x2"], "not a term of the formula"),
    (["--formula", "y ~ A + flat", "--quadratic", "A"], "flat does not vary"),
    (["--formula", "y ~ A + x1", "--quadratic", "A", "--spatial-lag"], "needs spatial weights"),
    (["--formula", "y ~ A + nothere", "--quadratic", "A"], "nothere"),
])
@pytest.mark.parametrize("method", ["ols", "bayes"])
def test_bad_input_one_line_no_file(inputs, args, message, method):
    folder, _ = inputs
    out = folder / "bad" / ("x.csv" if method == "ols" else "x.nc")
    proc = _run(folder, *args, "--method", method, "--out", str(out), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_bayes_contract_and_recovery(inputs):
    import arviz as az

    folder, df = inputs
    out = folder / "bayes" / "quad.nc"
    proc = _run(folder, "--formula", "y ~ A + x1 + x2", "--quadratic", "A", "--method", "bayes",
                "--draws", "400", "--tune", "400", "--chains", "2", "--seed", "3", "--quiet",
                "--out", str(out), "--plots", str(folder / "bfig"))
    assert proc.returncode == 0, proc.stderr
    summary_path = folder / "bayes" / "quad_summary.csv"
    assert f"wrote {out}" in proc.stdout and f"wrote {summary_path}" in proc.stdout
    summary = pd.read_csv(summary_path)
    assert list(summary.columns) == SUMMARY
    assert summary.term.tolist() == ["Intercept", "A", "A^2", "x1", "x2", "turning_point",
                                     "p_inverted_u", "p_inverted_u_range",
                                     "p_turning_point_in_range"]
    rows = summary.set_index("term")
    assert rows.loc["turning_point", "hdi_low"] < TRUE_TURNING_POINT < \
        rows.loc["turning_point", "hdi_high"]
    assert rows.loc["p_inverted_u", "mean"] > 0.99
    assert summary.r_hat.max() < 1.02   # 2 chains × 400 draws: measured 1.001-1.012 over seeds 1-6
    # the slope prior is wide enough not to shrink the nearly collinear A and A² (choice in
    # models.bayes.quadratic): posterior means within 0.25 posterior sd of OLS (measured at
    # most 0.05 sd over seeds 1-6)
    from models.frequentist.quadratic import fit_quadratic_frequentist
    from models.spec.quadratic import build_quadratic

    ols = fit_quadratic_frequentist(build_quadratic(folder / "d.csv", "y ~ A + x1 + x2", "A"))
    for term in ("A", "A^2"):
        assert abs(rows.loc[term, "mean"] - ols.coef(term)) < 0.25 * rows.loc[term, "sd"], term
    idata = az.from_netcdf(out)
    post = idata.posterior
    assert post["coef"].dims == ("chain", "draw", "coefficient")   # models.bayes.idata
    assert post["coef"].shape[:2] == (2, 400)
    assert not any(is_internal(name) for name in post.data_vars)
    assert "beta_std" in idata.unconstrained_posterior
    c = coef_grid(post).sel(equation="y")
    p = float(((c.sel(term="A") > 0) & (c.sel(term="A^2") < 0)).mean())
    assert rows.loc["p_inverted_u", "mean"] == pytest.approx(p)
    assert float(post["inside_range"].mean()) > 0.99
    # the true inverted U has its vertex (2) inside the observed range (about [0, 4]): the range
    # probabilities, counted on the stored draws over the stored range, are near 1
    lo, hi = json.loads(post.attrs["range_of_A"])
    assert (lo, hi) == pytest.approx((df.A.min(), df.A.max()))
    c1, c2 = c.sel(term="A").values, c.sel(term="A^2").values
    on_range = float(np.mean((c1 + 2 * c2 * lo > 0) & (c1 + 2 * c2 * hi < 0)))
    assert rows.loc["p_inverted_u_range", "mean"] == pytest.approx(on_range) and on_range > 0.95
    theta = -c1 / (2 * c2)
    inside = float(np.mean((lo < theta) & (theta < hi)))
    assert rows.loc["p_turning_point_in_range", "mean"] == pytest.approx(inside)
    assert (folder / "bfig" / "quadratic_y_A.png").exists()
    assert "P(turning point inside the observed range)" in proc.stdout
