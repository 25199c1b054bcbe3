"""One compilation per graph structure: systems of the same shape share a compiled model.

A second process with the same structure loads nutpie's compiled callbacks from the disk cache
(models.bayes.compile_cache) and draws exactly what the first drew; the cache is keyed by the
graph (other data share an entry, another prior does not), rebuilds unreadable entries, can be
disabled and cleared, and tests keep it in a temporary folder.

The second fit must reuse the first one's compilation (no new entry in the structure cache), and
give exactly the draws a fresh compilation of the same model gives with the same seed, with the
model's own coordinate labels.
"""

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from data_prep.synthetic.simulate import lattice_weights, simulate_system
from models.bayes import compile_cache, sampling
from models.bayes.system import build_system_model
from models.spec.system import build_system, parse_system


def _model(sim, lam, rename: dict[str, str] | None = None):
    data, formulas = sim.data, sim.formulas
    for old, new in (rename or {}).items():
        data = data.rename(columns={old: new})
        formulas = [f.replace(old, new) for f in formulas]
    system = build_system(parse_system(formulas), data, weights=sim.W, check=False)
    return build_system_model(system, lam)


def test_same_structure_reuses_the_compilation_and_draws_identically():
    w = lattice_weights(6)
    lam = np.linalg.eigvals(w.matrix.toarray()).real
    first, second = simulate_system(w, seed=1), simulate_system(w, seed=2)
    sampling._BY_STRUCTURE.clear()
    sampling.sample(_model(first, lam), draws=30, tune=30, chains=1, seed=4, progress=False)
    assert sampling.compiled_structures() == 1
    other = _model(second, lam, rename={"z1": "zeta"})   # other data, other labels
    reused = sampling.sample(other, draws=30, tune=30, chains=2, seed=5, progress=False)
    assert sampling.compiled_structures() == 1
    assert "zeta" in reused.posterior["coef"]["coef_term"].values
    sampling._BY_STRUCTURE.clear()
    fresh = sampling.sample(_model(second, lam, rename={"z1": "zeta"}), draws=30, tune=30,
                            chains=2, seed=5, progress=False)
    np.testing.assert_array_equal(reused.posterior["coef"].values, fresh.posterior["coef"].values)
    np.testing.assert_array_equal(reused.posterior["Sigma"].values,
                                  fresh.posterior["Sigma"].values)


# ------------------------------------------------------------- the disk cache between processes

ROOT = Path(__file__).resolve().parents[3]
CHILD = """
import sys
import numpy as np
from data_prep.synthetic.simulate import lattice_weights, simulate_system
from models.bayes import sampling
from models.bayes.system import build_system_model
from models.spec.system import build_system, parse_system
w = lattice_weights(6)
lam = np.linalg.eigvals(w.matrix.toarray()).real
sim = simulate_system(w, seed=1)
system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W, check=False)
idata = sampling.sample(build_system_model(system, lam), draws=30, tune=30, chains=2, seed=4,
                        progress=False)
np.save(sys.argv[1], idata.posterior["coef"].values)
print("HITS", sampling._DISK_HITS[-1])
"""


def _child(out: Path, cache: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RESILIENCE_CACHE_DIR": str(cache)}
    env.pop("RESILIENCE_NO_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(next(ln for ln in proc.stdout.splitlines() if ln.startswith("HITS")).split()[1])


def test_second_process_loads_the_compiled_callbacks_and_draws_identically(tmp_path):
    cache = tmp_path / "cache"
    assert _child(tmp_path / "cold.npy", cache) == 0          # cold: compiled and stored
    assert len(list((cache / "compiled").glob("*.nbc"))) == 2  # log-density and expansion
    assert _child(tmp_path / "warm.npy", cache) == 2          # warm: both callbacks loaded
    np.testing.assert_array_equal(np.load(tmp_path / "cold.npy"), np.load(tmp_path / "warm.npy"))


def _callback_keys(model, monkeypatch) -> list:
    """The cache keys compile_nutpie_model asks for (the callbacks themselves not compiled)."""
    keys = []

    def record(fn, sig, key):
        keys.append(key)
        return None, False

    monkeypatch.setattr(compile_cache, "cached_cfunc", record)
    compile_cache.compile_nutpie_model(model, set(model.free_RVs))
    return keys


def test_cache_key_follows_the_structure_not_the_data(monkeypatch):
    w = lattice_weights(6)
    lam = np.linalg.eigvals(w.matrix.toarray()).real
    first, second = simulate_system(w, seed=1), simulate_system(w, seed=2)
    base = _callback_keys(_model(first, lam), monkeypatch)
    assert None not in base and len(set(base)) == 2
    same = _callback_keys(_model(second, lam, rename={"z1": "zeta"}), monkeypatch)
    assert same == base                               # other data and labels: the same entry
    system = build_system(parse_system(first.formulas), first.data, weights=first.W, check=False)
    other = build_system_model(system, lam, priors={"structural_sigma": 0.3})
    # another prior is another log-density graph, a miss (the expansion to the traced
    # variables does not involve the prior: its entry is rightly shared)
    assert _callback_keys(other, monkeypatch)[0] != base[0]


SIG = numba.float64(numba.float64)


def _plus_one(x):
    return x + 1.0


def _compile_plus_one(key: str):
    cf, hit = compile_cache.cached_cfunc(_plus_one, SIG, key)
    assert cf.ctypes(2.0) == 3.0
    return hit


def test_corrupt_or_partial_entries_are_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("RESILIENCE_CACHE_DIR", str(tmp_path))
    assert not _compile_plus_one("k1") and _compile_plus_one("k1")   # stored, then loaded
    entry = compile_cache.cache_dir() / "k1.nbc"
    whole = entry.read_bytes()
    for broken in (whole[: len(whole) // 2], b"not a cache entry"):
        entry.write_bytes(broken)
        assert not _compile_plus_one("k1")        # ignored, compiled again and stored
        assert _compile_plus_one("k1")            # the rebuilt entry loads


def test_cache_can_be_disabled_and_cleared(tmp_path, monkeypatch):
    monkeypatch.setenv("RESILIENCE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RESILIENCE_NO_CACHE", "1")
    assert not compile_cache.cache_enabled()
    assert not _compile_plus_one("k2") and not _compile_plus_one("k2")
    assert compile_cache.cache_entries() == []                     # nothing written
    monkeypatch.delenv("RESILIENCE_NO_CACHE")
    _compile_plus_one("k2")
    assert len(compile_cache.cache_entries()) == 1
    assert compile_cache.clear_cache() == 1
    assert compile_cache.cache_entries() == [] and not _compile_plus_one("k2")


def test_tests_never_write_the_users_cache_folder():
    folder = compile_cache.cache_dir().resolve()
    home_cache = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")).resolve()
    assert home_cache not in folder.parents


@pytest.mark.parametrize("value, enabled", [("", True), ("0", True), ("1", False),
                                            ("yes", False)])
def test_the_disable_switch_reads_plain_values(monkeypatch, value, enabled):
    monkeypatch.setenv("RESILIENCE_NO_CACHE", value)
    assert compile_cache.cache_enabled() is enabled
