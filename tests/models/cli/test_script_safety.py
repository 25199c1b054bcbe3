"""Every script: output paths checked before any work, outputs committed together, Ctrl-C and a
closed stdout pipe handled without a traceback or a lost file.

Ctrl-C during imports is simulated deterministically: the script runs under an import hook that
raises KeyboardInterrupt when numpy is first imported (what a real Ctrl-C during a slow import
does). Ctrl-C during sampling is a real SIGINT sent to a subprocess once it reports that its chains
have started (tests/models/bayes/test_interrupt_sampling.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fixtures import write_lattice_case

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "scripts"
FORMULAS = ["ER ~ W(ER) + W(PSS) + PSS + x1 + x2 + z1",
            "PSS ~ W(PSS) + W(ER) + ER + x1 + x2 + z2"]


def run(script: str, *args, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
                          **kwargs)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = write_lattice_case(tmp_path_factory.mktemp("safety"), side=6, seed=3).folder
    (folder / "afile").write_text("not a folder")
    return folder


def system_args(folder: Path) -> list[str]:
    out = []
    for f in FORMULAS:
        out += ["--equation", f]
    return out + ["--data", folder / "d.csv", "--weights", folder / "w.gal"]


def one_error_line(proc, *needles) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- output paths

def test_fit_refuses_unwritable_table_before_fitting(inputs, tmp_path):
    bad_table = inputs / "afile" / "tab"            # its folder is a regular file
    proc = run("fit_gs3sls.py", *system_args(inputs), "--out", tmp_path / "coef.csv",
               "--table", bad_table)
    one_error_line(proc, "--table", inputs / "afile")
    assert ".tmp" not in proc.stderr and "GS3SLS" not in proc.stdout   # before any fitting
    assert list(tmp_path.iterdir()) == []                              # coef.csv not written
    proc = run("fit_gs3sls.py", *system_args(inputs), "--out", tmp_path,
               "--table", tmp_path / "t")
    one_error_line(proc, f"--out {tmp_path}: is a folder")


def test_fit_read_only_folder_is_refused_in_process(inputs, tmp_path, monkeypatch, capsys):
    """Root ignores permission bits, so the read-only folder is simulated through os.access."""
    import importlib

    from data_prep import files

    module = importlib.import_module("models.cli.fit_gs3sls")
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(files.os, "access", lambda p, m: False if Path(p) == ro else real(p, m))
    argv = [str(a) for a in system_args(inputs)] + ["--out", str(tmp_path / "coef.csv"),
                                                     "--table", str(ro / "tab")]
    assert module.main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: --table {ro / 'tab.csv'}: folder {ro} is not writable\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"] and not any(ro.iterdir())


def test_compare_writes_both_files_or_neither(tmp_path):
    freq = pd.DataFrame({"equation": ["ER", "ER"], "term": ["PSS", "x1"], "estimate": [1.0, 2.0],
                         "std_error": [0.3, 0.1], "statistic": [3.3, 20], "p_value": [0.001, 0]})
    post = pd.DataFrame({"equation": ["ER", "ER"], "term": ["PSS", "x1"], "mean": [1.1, 2.0],
                         "sd": [0.3, 0.1], "hdi_low": [0.5, 1.8], "hdi_high": [1.7, 2.2],
                         "r_hat": [1.0, 1.0], "ess_bulk": [900, 900]})
    freq.to_csv(tmp_path / "coef.csv", index=False)
    post.to_csv(tmp_path / "post_summary.csv", index=False)
    (tmp_path / "afile").write_text("x")
    base = ["--frequentist", tmp_path / "coef.csv", "--posterior", tmp_path / "post_summary.csv",
            "--out", tmp_path / "cmp.csv"]
    proc = run("compare_estimates.py", *base, "--markdown", tmp_path / "afile" / "cmp.md")
    one_error_line(proc, "--markdown", tmp_path / "afile")
    assert not (tmp_path / "cmp.csv").exists()
    proc = run("compare_estimates.py", *base, "--markdown", tmp_path / "cmp.md")
    assert proc.returncode == 0 and proc.stderr == ""
    assert (tmp_path / "cmp.csv").is_file() and (tmp_path / "cmp.md").is_file()


def test_compare_refuses_tables_of_different_systems(tmp_path):
    freq = pd.DataFrame({"equation": ["ER", "PSS"], "term": ["PSS", "ER"], "estimate": [1.0, 2.0],
                         "std_error": [0.3, 0.1], "statistic": [3.3, 20], "p_value": [0.001, 0]})
    post = pd.DataFrame({"equation": ["ER", "PSD"], "term": ["PSD", "ER"], "mean": [1.1, 2.0],
                         "sd": [0.3, 0.1], "hdi_low": [0.5, 1.8], "hdi_high": [1.7, 2.2],
                         "r_hat": [1.0, 1.0], "ess_bulk": [900, 900]})
    freq.to_csv(tmp_path / "coef.csv", index=False)
    post.to_csv(tmp_path / "psd_summary.csv", index=False)
    base = ["--frequentist", tmp_path / "coef.csv", "--out", tmp_path / "cmp.csv"]
    proc = run("compare_estimates.py", *base, "--posterior", tmp_path / "psd_summary.csv")
    one_error_line(proc, tmp_path / "coef.csv", tmp_path / "psd_summary.csv", "ER, PSS",
                   "ER, PSD", "different systems")
    # same equations, terms only partly shared: compared, with a loud warning naming both sides
    post.assign(equation=["ER", "PSS"], term=["PSS", "W(ER)"]).to_csv(
        tmp_path / "pss_summary.csv", index=False)
    proc = run("compare_estimates.py", *base, "--posterior", tmp_path / "pss_summary.csv")
    assert proc.returncode == 0
    assert proc.stderr.startswith("WARNING: the terms only partly match (1 shared; only in ")
    assert "PSS:ER" in proc.stderr and "PSS:W(ER)" in proc.stderr
    # a file that is not a posterior summary is named
    proc = run("compare_estimates.py", *base, "--posterior", tmp_path / "coef.csv")
    one_error_line(proc, f"--posterior {tmp_path / 'coef.csv'}: posterior summary lacks column")


def test_other_scripts_check_their_outputs_first(inputs, tmp_path):
    bad = inputs / "afile"
    proc = run("plot_diagnostics.py", "--posterior", tmp_path / "missing.nc", "--out-dir", bad)
    one_error_line(proc, f"--out-dir {bad}: is a file")
    proc = run("prepare_data.py", "--demo", "--out", bad / "data.nc")
    one_error_line(proc, f"--out {bad / 'data.nc'}")
    proc = run("sample_posteriors.py", *system_args(inputs), "--draws", 10, "--tune", 10,
               "--out", bad / "post.nc")
    one_error_line(proc, f"--out {bad / 'post.nc'}")
    assert "sampling:" not in proc.stdout                 # refused before any sampling


# ----------------------------------------------------------------------------- pipes, Ctrl-C

def test_closed_stdout_pipe_loses_no_file(inputs, tmp_path):
    """`fit_gs3sls.py ... | head -c 0`: the reader is gone before the first print."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(SCRIPTS / "fit_gs3sls.py"), *map(str, system_args(inputs)),
           "--out", str(tmp_path / "coef.csv"), "--table", str(tmp_path / "tab")]
    read, write = os.pipe()
    os.close(read)                                  # nobody will ever read stdout
    proc = subprocess.run(cmd, stdout=write, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                          env=env, timeout=600)
    os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coef.csv", "tab.csv", "tab.md",
                                                          "tab.tex"]


INTERRUPT_AT_IMPORT = textwrap.dedent("""
    import runpy, sys

    class Interrupt:
        def find_spec(self, name, path=None, target=None):
            if name == {module!r}:
                raise KeyboardInterrupt
            return None

    sys.meta_path.insert(0, Interrupt())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


@pytest.mark.parametrize("script, args, module", [
    ("prepare_data.py", ["--demo", "--out", "{tmp}/d.nc"], "numpy"),
    ("fit_gs3sls.py", ["{system}", "--out", "{tmp}/coef.csv"], "numpy"),
    ("sample_posteriors.py", ["{system}", "--out", "{tmp}/post.nc"], "numpy"),
    ("sample_posteriors.py", ["{system}", "--draws", "10", "--tune", "10",
                              "--out", "{tmp}/post.nc"], "nutpie"),     # at compile time
    ("compare_estimates.py", ["--frequentist", "{tmp}/a.csv", "--posterior", "{tmp}/b.csv",
                              "--out", "{tmp}/c.csv"], "pandas"),
    ("plot_diagnostics.py", ["--posterior", "{tmp}/post.nc", "--out-dir", "{tmp}/figs"], "arviz"),
])
def test_ctrl_c_during_import_or_compile_is_one_line(inputs, tmp_path, script, args, module):
    (tmp_path / "post.nc").write_text("old")
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("equation,term\n")
    argv = []
    for a in args:
        if a == "{system}":
            argv += [str(x) for x in system_args(inputs)]
        else:
            argv.append(a.format(tmp=tmp_path))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", INTERRUPT_AT_IMPORT.format(module=module),
                           str(SCRIPTS / script), *argv], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("interrupted: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (tmp_path / "post.nc").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "post.nc"]


def test_identical_z_statistics_whatever_the_units(inputs, tmp_path):
    """x1 in units of 10^16 or 10^-16 (PGDP in yuan x 10^12 is of that order) fits with the same
    z statistics: rank decisions do not depend on units (they refused at 10^16 before)."""
    data = pd.read_csv(inputs / "d.csv")
    stats = []
    for k, scale in enumerate((1.0, 1e16, 1e-16)):
        data.assign(x1=data["x1"] * scale).to_csv(tmp_path / f"d{k}.csv", index=False)
        args = [a if a != inputs / "d.csv" else tmp_path / f"d{k}.csv"
                for a in system_args(inputs)]
        proc = run("fit_gs3sls.py", *args, "--out", tmp_path / f"c{k}.csv")
        assert proc.returncode == 0, proc.stderr
        stats.append(pd.read_csv(tmp_path / f"c{k}.csv")["statistic"].to_numpy())
    np.testing.assert_allclose(stats[1], stats[0], rtol=1e-6)
    np.testing.assert_allclose(stats[2], stats[0], rtol=1e-6)
