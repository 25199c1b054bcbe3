"""Diagnostic figures use only the coefficients an equation has (NaN elsewhere in `coef`)."""

import subprocess
import sys
from pathlib import Path

import arviz as az
import numpy as np

from models.bayes.diagnostics_plots import diagnostic_figures, present_coefficients

ROOT = Path(__file__).resolve().parents[3]


def fake_posterior():
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(2, 50, 2, 3))
    coef[:, :, 0, 2] = np.nan  # equation ER has no term "ER"
    coef[:, :, 1, 1] = np.nan  # equation PSS has no term "PSS"
    return az.from_dict(posterior={"coef": coef},
                        coords={"equation": ["ER", "PSS"], "term": ["Intercept", "PSS", "ER"]},
                        dims={"coef": ["equation", "term"]})


def test_present_coefficients_drop_absent_pairs():
    idata = fake_posterior()
    flat = present_coefficients(idata.posterior)
    assert list(flat["coefficient"].values) == ["ER: Intercept", "ER: PSS", "PSS: Intercept", "PSS: ER"]
    np.testing.assert_array_equal(flat.isel(coefficient=3).values,
                                  idata.posterior["coef"].sel(equation="PSS", term="ER").values)


def test_figures_and_script(tmp_path):
    idata = fake_posterior()
    written = diagnostic_figures(idata, tmp_path / "figs", prefix="x_")
    assert [p.name for p in written] == ["x_trace.png", "x_rank.png", "x_forest.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    idata.to_netcdf(tmp_path / "post.nc")
    script = str(ROOT / "scripts" / "plot_diagnostics.py")
    ok = subprocess.run([sys.executable, script, "--posterior", str(tmp_path / "post.nc"),
                         "--out-dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "forest.png").is_file()
    bad = subprocess.run([sys.executable, script, "--posterior", str(tmp_path / "missing.nc"),
                          "--out-dir", str(tmp_path / "none")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    assert not (tmp_path / "none").exists()
