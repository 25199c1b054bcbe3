"""scripts/simulate_recovery.py (docs/contracts.md contract 7): recovery on a two-worker dask cluster.

The fast test runs 20 replications (n = 100 lattice, two chains of 150 draws) twice with the same
seed, concurrently: on a LocalCluster of two worker processes and in-process (--workers 0, in
the test's own process). The
tables must be identical, the model compiled once per process, and each method's pooled 90 %
coverage within ±3.29 standard errors of 0.90 (a 99.9 % band; the standard error is taken from
the spread of the per-replication coverage, because the 14 intervals of one replication are
correlated, and bounded below by the independent-interval value √(0.09/14)/√20 ≈ 0.018; see
models.simulation.recovery.coverage_check). Bad input must give a one-line error, exit 2 and no output.

Timing on two cores shared with other test runs (load average 6-7): the cluster/in-process
fixture took 114 s after tests/models/bayes/test_compile_reuse.py (whose compilation the in-process run
reuses), 164 s when run alone; almost all of it is compiling the Bayesian model once per
worker process (and once in-process when nothing was compiled before).

The slow test is the SBC study of the README: 200 replications at n = 241 with truths drawn
from the model's fixed-scale prior; the chi-square test of the binned ranks (20 bins) must not
reject uniformity for any coefficient after a Bonferroni correction at level 0.01.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from models.simulation.recovery import RECOVERY_COLUMNS, coverage_check

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "simulate_recovery.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SMALL = ["--replications", "20", "--n", "100", "--draws", "150", "--tune", "150", "--chains",
         "2", "--seed", "7"]


def _start(*args: str) -> subprocess.Popen:
    # a shell's background job (or a CI runner) may hand SIGINT down ignored; a user's terminal
    # does not, so restore the default disposition in the child
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _script():
    import importlib

    module = importlib.import_module("models.cli.simulate_recovery")
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The cluster run in a subprocess and, meanwhile, the in-process run (--workers 0) in this
    process: a model of the same structure compiled here by an earlier test is reused (the
    compilation cache holds across map sizes), which saves one of the three compilations."""
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("recovery")
    cluster = _start(*SMALL, "--workers", "2", "--out", str(folder / "cluster"))
    local_log = io.StringIO()
    with contextlib.redirect_stdout(local_log):
        status = _script().main([*SMALL, "--workers", "0", "--out", str(folder / "local")])
    stdout, stderr = cluster.communicate(timeout=900)
    assert status == 0
    assert cluster.returncode == 0, stderr[-3000:]
    return {"cluster": (folder / "cluster", stdout), "local": (folder / "local",
                                                               local_log.getvalue())}


def test_cluster_and_in_process_give_the_same_tables(runs):
    (cluster, log), (local, local_log) = runs["cluster"], runs["local"]
    for folder in (cluster, local):
        for name in ("recovery.csv", "replications.csv", "diagnostics.csv", "verdict.txt",
                     "recovery_coverage.png"):
            assert (folder / name).stat().st_size > 0, name
        assert not (folder / "sbc_ranks.csv").exists()
    table = pd.read_csv(cluster / "recovery.csv")
    assert tuple(table.columns) == RECOVERY_COLUMNS
    assert set(table["method"]) == {"bayes", "gs3sls"} and len(table) == 28
    assert (table["replications"] == 20).all()
    for name in ("recovery.csv", "replications.csv", "diagnostics.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(cluster / name), pd.read_csv(local / name),
                                      check_exact=True)
    assert "local cluster of 2 workers" in log
    assert sum(line.startswith("replication ") for line in log.splitlines()) == 20
    assert f"wrote {cluster / 'recovery.csv'}" in log
    # one compilation per worker process: replications 3..20 of a worker reuse its model
    assert "compiled 2 time(s) in 2 process(es)" in (cluster / "verdict.txt").read_text()
    # in-process: one compilation, or none when an earlier test compiled this structure here
    assert "time(s) in 1 process(es)" in (local / "verdict.txt").read_text()
    assert "compiled 2 time(s)" not in (local / "verdict.txt").read_text()
    assert sum(line.startswith("replication ") for line in local_log.splitlines()) == 20


def test_coverage_within_binomial_slack(runs):
    folder, _ = runs["cluster"]
    estimates = pd.read_csv(folder / "replications.csv")
    for method in ("bayes", "gs3sls"):
        check = coverage_check(estimates, method)
        assert check.replications == 20 and check.terms == 14
        assert check.consistent, check
    verdict = (folder / "verdict.txt").read_text()
    assert "Bayes: pooled coverage" in verdict and "GS3SLS: pooled coverage" in verdict


def test_existing_scheduler_gives_the_in_process_table(runs, tmp_path):
    """--scheduler ADDRESS runs the tasks on a cluster started elsewhere. GS3SLS only (no
    compilation, so it stays fast): its rows must equal those of the in-process run with both
    methods, since a replication's data depend on (seed, r) only."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        remote = subprocess.run([sys.executable, str(SCRIPT), *SMALL, "--methods", "gs3sls",
                                 "--scheduler", cluster.scheduler_address,
                                 "--out", str(tmp_path / "remote")],
                                capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    assert remote.returncode == 0, remote.stderr[-2000:]
    assert cluster.scheduler_address in remote.stdout
    local, _ = runs["local"]
    for name in ("recovery.csv", "replications.csv"):
        theirs = pd.read_csv(local / name)
        theirs = theirs[theirs["method"] == "gs3sls"].reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "remote" / name), theirs,
                                      check_exact=True)


R5 = ["--replications", "5", "--seed", "1"]
BAD = {
    "one replication": (["--replications", "1", "--seed", "1"], "at least 2"),
    "unknown method": ([*R5, "--methods", "bayes,ols"], "unknown method(s) ols"),
    "sbc without bayes": ([*R5, "--sbc", "--methods", "gs3sls"], "needs the method bayes"),
    "tiny map": ([*R5, "--n", "3"], "at least 4 cities"),
    "missing weights": ([*R5, "--weights", "nowhere.gal"], "nowhere.gal"),
    "negative workers": ([*R5, "--workers", "-1"], "--workers"),
    "too few draws": ([*R5, "--sbc", "--draws", "10", "--chains", "2"], "at least that many"),
    "target acceptance": ([*R5, "--target-accept", "1.5"], "between 0 and 1"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(name, tmp_path, capsys):
    args, message = BAD[name]
    out = tmp_path / "out"
    assert _script().main([*args, "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()


def test_out_is_a_file(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    proc = subprocess.run([sys.executable, str(SCRIPT), *R5, "--out", str(taken)],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: --out {taken}: is a file; give a folder"]
    assert taken.read_text() == "a file"


def test_help_and_interrupt(tmp_path):
    help_text = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                               text=True, cwd=ROOT, env=ENV, timeout=120).stdout
    for option in ("--replications", "--n", "--weights", "--methods", "--sbc", "--scheduler",
                   "--workers", "--seed", "--out"):
        assert option in help_text
    out = tmp_path / "stopped"
    proc = _start("--replications", "100000", "--n", "16", "--methods", "gs3sls",
                  "--workers", "0", "--seed", "1", "--out", str(out))
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("replication "):
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("interrupted: ")
    assert not out.exists()


@pytest.mark.slow
def test_sbc_ranks_are_uniform_at_241_cities(tmp_path):
    """Measured once (seed 2026, 2 workers, 2 chains x 500 draws after 1000 tuning steps at
    target acceptance 0.9; 15 min on two shared cores): per-coefficient chi-square p-values
    0.154 (PSS: W(ER)) to 0.902, Bonferroni-adjusted smallest 1.0; pooled Bayesian coverage
    0.901. With the default tuning (500 steps, acceptance 0.8) the same seed gave 735
    divergences instead of 135 and a smallest p of 0.0027 (adjusted 0.038, ER: Intercept)."""
    out = tmp_path / "sbc"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--replications", "200", "--n", "241",
                           "--sbc", "--tune", "1000", "--target-accept", "0.9", "--workers", "2",
                           "--seed", "2026", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=7200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = pd.read_csv(out / "sbc_ranks.csv")
    assert ranks["replication"].nunique() == 200 and (ranks["draws"] == 99).all()
    uniform = pd.read_csv(out / "sbc_uniformity.csv")
    assert len(uniform) == 14 and (uniform["bins"] == 20).all()
    assert uniform["p_bonferroni"].min() >= 0.01, uniform.sort_values("p_value").head()
    estimates = pd.read_csv(out / "replications.csv")
    # averaged over the prior, Bayesian 90 % intervals cover exactly 90 %
    assert coverage_check(estimates, "bayes").consistent
    assert (out / "sbc_ranks.png").stat().st_size > 0
