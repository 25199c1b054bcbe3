"""sample_posteriors.py: the summary is named after the output (two fits in one folder never share
one), and a normal run prints no third-party noise (PyTensor's BLAS notice, ArviZ's
"Array contains NaN-value" for the absent terms that are NaN by design)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "sample_posteriors.py"


def test_summary_path_is_named_after_the_output():
    module = importlib.import_module("models.cli.sample_posteriors")
    assert module.summary_path(Path("out/pss.nc")) == Path("out/pss_summary.csv")
    assert module.summary_path(Path("out/psd.nc")) == Path("out/psd_summary.csv")
    assert module.summary_path("post.v2.nc") == Path("post.v2_summary.csv")


def test_normal_run_is_quiet_and_writes_named_summary(tmp_path, lattice_files):
    case = lattice_files(side=4, seed=5)
    sim = case.sim
    argv = [sys.executable, str(SCRIPT), *case.arguments(),
            "--draws", "40", "--tune", "40", "--chains", "2", "--seed", "2", "--quiet",
            "--out", str(tmp_path / "pss.nc")]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    for noise in ("BLAS", "NaN-value", "Traceback", "UserWarning", "RuntimeWarning"):
        assert noise not in proc.stderr, proc.stderr
    assert f"wrote {tmp_path / 'pss_summary.csv'}" in proc.stdout
    assert not (tmp_path / "summary.csv").exists()
    summary = pd.read_csv(tmp_path / "pss_summary.csv")
    assert summary["r_hat"].notna().all() and summary["ess_bulk"].gt(0).all()
    assert len(summary) == sum(len(t) for t in sim.truth.coefficients.values())


def test_student_t_errors_end_to_end(tmp_path, lattice_files):
    """--errors student-t: the posterior has nu, the summary a row errors,nu, the impacts keep
    their form and the LOO group is the Student-t one; the default stays normal (no nu)."""
    import arviz as az
    import numpy as np

    case = lattice_files(side=4, seed=5)
    base = [sys.executable, str(SCRIPT), *case.arguments(),
            "--draws", "40", "--tune", "40", "--chains", "2", "--seed", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for errors in ("student-t", "normal"):
        out = tmp_path / f"{errors}.nc"
        extra = ["--errors", errors] if errors == "student-t" else []
        proc = subprocess.run(base + extra + ["--out", str(out)], capture_output=True,
                              text=True, cwd=ROOT, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr
        idata = az.from_netcdf(out)
        summary = pd.read_csv(tmp_path / f"{errors}_summary.csv")
        nu_rows = summary[(summary["equation"] == "errors") & (summary["term"] == "nu")]
        if errors == "normal":
            assert "nu" not in idata.posterior and nu_rows.empty
            assert idata.loo.attrs["errors"] == "normal"
            continue
        assert idata.posterior["nu"].shape == (2, 40)
        assert len(nu_rows) == 1 and nu_rows["mean"].iloc[0] > 0
        assert idata.posterior.attrs["errors"] == "student-t"
        assert idata.loo.attrs["errors"] == "student-t"
        assert np.isfinite(idata.loo["elpd_i"]).all()
        assert set(idata.posterior["impact"].dims) >= {"chain", "draw", "effect"}
