"""Ctrl-C while sample_posteriors.py samples: exit 130, one line, earlier outputs untouched;
--keep-partial writes the draws made so far, marked partial.

nutpie (and PyMC) catch the KeyboardInterrupt and return the draws made so far as if sampling had
finished (nutpie pads the short chains with NaN); before the fix the script exited 0, printed
"wrote post.nc" and replaced the previous posterior with the padded one. A real SIGINT is sent to
the subprocess once it prints that its chains have started (after compilation), on a model big
enough (400 cities, 100,000 draws requested) to be still sampling then.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures import write_lattice_case

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "sample_posteriors.py"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    case = write_lattice_case(tmp_path_factory.mktemp("interrupt"), side=20, seed=7)
    return case.folder, case.formulas


def _interrupt_while_sampling(folder: Path, formulas, out: Path, *extra):
    argv = [sys.executable, str(SCRIPT)]
    for f in formulas:
        argv += ["--equation", f]
    argv += ["--data", str(folder / "d.csv"), "--weights", str(folder / "w.gal"),
             "--draws", "100000", "--tune", "100", "--chains", "2", "--seed", "1", "--quiet",
             "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a shell's background job (or a CI runner) may hand SIGINT down ignored; a user's terminal
    # does not, so restore the default disposition in the child
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    stdout = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        stdout.append(line)
        if line.startswith("sampling:"):
            break
    assert stdout and stdout[-1].startswith("sampling:"), "".join(stdout) + proc.stderr.read()
    time.sleep(3.0)                       # well into sampling: 100,000 draws take minutes
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(stdout) + rest, err


def test_ctrl_c_leaves_earlier_outputs_untouched(inputs, tmp_path):
    folder, formulas = inputs
    out = tmp_path / "post.nc"
    out.write_text("earlier posterior")
    (tmp_path / "post_summary.csv").write_text("earlier summary")
    code, stdout, stderr = _interrupt_while_sampling(folder, formulas, out)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "wrote" not in stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: sampling stopped after "), stderr
    assert "nothing written" in lines[0]
    assert out.read_text() == "earlier posterior"
    assert (tmp_path / "post_summary.csv").read_text() == "earlier summary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["post.nc", "post_summary.csv"]


def test_keep_partial_writes_marked_draws(inputs, tmp_path):
    import arviz as az
    import numpy as np

    folder, formulas = inputs
    out = tmp_path / "post.nc"
    code, stdout, stderr = _interrupt_while_sampling(folder, formulas, out, "--keep-partial")
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted: PARTIAL posterior written to" in stderr
    idata = az.from_netcdf(out)
    attrs = idata.posterior.attrs
    assert attrs["partial"] == "true"
    per_chain = json.loads(attrs["draws_per_chain"])
    kept = idata.posterior.sizes["draw"]
    assert len(per_chain) == 2 and kept == min(per_chain) and 0 < kept < 100000
    assert int(attrs["draws_kept_per_chain"]) == kept
    coef = idata.posterior["coef"].sel(coefficient="ER: z1").values
    assert np.isfinite(coef).all()                # cut to the shortest chain: no NaN padding
    assert (tmp_path / "post_summary.csv").is_file()
