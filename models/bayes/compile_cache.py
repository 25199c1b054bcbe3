"""A disk cache of the compiled sampler callbacks, shared by every process of the same user.

Where a first fit's time goes (benchmarks/results.md, "Where the first fit's time goes"): PyTensor
already keeps the numba code of the log-density graph on disk (its compiledir), but nutpie wraps
that graph in two C callbacks (log-density + gradient, and the expansion to the traced
variables) with ``numba.cfunc``, and those closures are compiled again in every process: the
callee is linked into the callback's module and LLVM optimises the whole of it anew, about three
quarters of a fresh process's compile. nutpie cannot put those callbacks in numba's own cache
(their closures pickle differently in every process, so numba's index key never matches).

This module compiles the same callbacks and stores each compiled library under a key of what
fixes its machine code: PyTensor's own cache key of the inner graph (a hash of the rewritten
graph, so any change of the model's structure or priors is a different entry), the parameter
count, the names, ranks and dtypes of the shared data, and the numba, llvmlite, nutpie and
PyTensor versions and the CPU (numba's ``magic_tuple``). The data values are not part of the
key: nutpie reads them through a pointer at every call, so one entry serves every system of the
same structure. Loading an entry yields the very object code a fresh compile produces, so the
draws of a given seed are the same from a cold or a warm cache.

Where: ``$RESILIENCE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/resilience-agglomeration``
(``~/.cache/...``). ``RESILIENCE_NO_CACHE=1`` disables it (compile every time, write nothing);
:func:`clear_cache` (``python -m models.bayes.compile_cache clear``) deletes it. Entries are
written to a temporary file and renamed (concurrent processes see a whole entry or none; two
writing the same key write the same bytes); an entry that cannot be read (truncated, corrupt,
another numba) is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

import numpy as np

from data_prep.files import atomic_write

ENV_DIR = "RESILIENCE_CACHE_DIR"
ENV_OFF = "RESILIENCE_NO_CACHE"
FORMAT = 1  # bump when the layout of an entry changes


def cache_dir() -> Path:
    """The cache folder: ``$RESILIENCE_CACHE_DIR``, else the XDG user cache folder."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser() / "compiled"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "resilience-agglomeration" / "compiled"


def cache_enabled() -> bool:
    """False when ``RESILIENCE_NO_CACHE`` is set to anything but ``""``/``0``."""
    return os.environ.get(ENV_OFF, "").strip().lower() in ("", "0", "false", "no")


def clear_cache() -> int:
    """Delete every cached entry; returns how many files were removed."""
    folder = cache_dir()
    count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    shutil.rmtree(folder, ignore_errors=True)
    return count


def cache_entries() -> list[Path]:
    """The entries currently stored (for reports and tests)."""
    folder = cache_dir()
    return sorted(folder.glob("*.nbc")) if folder.is_dir() else []


class DiskEntry:
    """numba's cache interface (``load_overload`` / ``save_overload``) for one file of our own.

    numba's ``CFunc.compile`` asks its cache first and saves what it compiled; this class keeps
    one compiled library per key, written atomically, and treats any unreadable file as absent.
    """

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key
        self.hit = False

    def load_overload(self, sig, target_context):
        from numba.core.compiler import CompileResult

        target_context.refresh()
        try:
            stored_key, payload = pickle.loads(self.path.read_bytes())
            if stored_key != self.key:
                raise ValueError("key mismatch")
            cres = CompileResult._rebuild(target_context, *payload)
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001  # any unreadable entry is rebuilt, never fatal
            self.path.unlink(missing_ok=True)
            return None
        self.hit = True
        return cres

    def save_overload(self, sig, cres) -> None:
        if cres.library.has_dynamic_globals or any(not x.can_cache for x in cres.lifted):
            return
        data = pickle.dumps((self.key, cres._reduce()), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            atomic_write(self.path, lambda tmp: Path(tmp).write_bytes(data), create_folder=True)
        except OSError as exc:  # a read-only or full disk costs a recompile next time, no more
            warnings.warn(f"could not write the compile cache entry {self.path}: {exc}")


def inner_key(pytensor_fn) -> str | None:
    """PyTensor's own disk-cache key of a compiled numba function's graph, or None when
    PyTensor did not cache it (then neither may we: nothing identifies the code)."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    jit = pytensor_fn.vm.jit_fn
    return CACHED_SRC_FUNCTIONS.get(getattr(jit, "py_func", jit))


def entry_key(kind: str, inner: str, n_dim: int, n_expanded: int, shared: dict,
              names: list[str]) -> str:
    """sha256 of everything that fixes a callback's machine code (see the module docstring)."""
    from numba.core.registry import cpu_target

    layout = [(name, np.asarray(shared[name]).ndim, str(np.asarray(shared[name]).dtype))
              for name in names]
    parts = (FORMAT, kind, inner, int(n_dim), int(n_expanded), layout,
             cpu_target.target_context.codegen().magic_tuple(),
             [version(p) for p in ("numba", "llvmlite", "nutpie", "pytensor")])
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def cached_cfunc(pyfunc: Callable, sig, key: str | None) -> tuple[Any, bool]:
    """``numba.cfunc(sig)(pyfunc)``, loaded from / saved to the disk cache under ``key``
    (no cache when ``key`` is None or the cache is disabled). Returns (cfunc, cache hit)."""
    from numba.core import sigutils
    from numba.core.ccallback import CFunc

    cf = CFunc(pyfunc, sigutils.normalize_signature(sig), locals={}, options={})
    entry = None
    if key is not None and cache_enabled():
        entry = DiskEntry(cache_dir() / f"{key}.nbc", key)
        cf._cache = entry
    cf.compile()
    return cf, bool(entry and entry.hit)


def compile_nutpie_model(model, jitter: set):
    """nutpie's compiled PyMC model (``nutpie.compile_pymc_model`` with the numba backend), its
    two C callbacks taken from the disk cache when an entry of the same structure exists.

    The steps are nutpie's own (graph, initial point, user data, callbacks); only the
    ``numba.cfunc`` calls differ, so the compiled model is the one nutpie would build. Returns
    (compiled model, number of callbacks loaded from the cache: 0, 1 or 2).
    """
    from nutpie import compile_pymc as cp
    from pymc.initial_point import make_initial_point_fn

    initial = cp._wrap_with_lock(make_initial_point_fn(
        model=model, jitter_rvs=jitter, default_strategy="support_point",
        return_transformed=True))
    n_dim, n_expanded, logp_pt, expand_pt, initial_point_fn, shape_info = cp._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=initial)
    shared_vars = {v.name: v for v in [*logp_pt.get_shared(), *expand_pt.get_shared()]}
    shared_data = {name: np.array(v.get_value(), order="C", copy=True)
                   for name, v in shared_vars.items()}
    for value in shared_data.values():
        value.flags.writeable = False
    user_data = cp.make_user_data(shared_vars, shared_data)
    hits, funcs = 0, {}
    for kind, fn_pt in (("logp", logp_pt), ("expand", expand_pt)):
        names = [v.name for v in fn_pt.get_shared()]
        if kind == "logp":
            raw, sig = cp._make_c_logp_func(n_dim, fn_pt.vm.jit_fn, user_data, names, shared_data)
        else:
            raw, sig = cp._make_c_expand_func(n_dim, n_expanded, fn_pt.vm.jit_fn, user_data,
                                              names, shared_data)
        inner = inner_key(fn_pt)
        key = (entry_key(kind, inner, n_dim, n_expanded, shared_data, names)
               if inner is not None else None)
        funcs[kind], hit = cached_cfunc(raw, sig, key)
        hits += hit
    dims, coords = cp._prepare_dims_and_coords(model, shape_info)
    compiled = cp.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info)},
        compiled_logp_func=funcs["logp"], compiled_expand_func=funcs["expand"],
        initial_point_func=initial_point_fn, shared_data=shared_data, user_data=user_data,
        n_expanded=n_expanded, shape_info=shape_info, logp_func=logp_pt, expand_func=expand_pt)
    return compiled, hits


def main(argv: list[str] | None = None) -> int:
    """``python -m models.bayes.compile_cache [where|clear]``: print the folder, or empty it."""
    import argparse

    ap = argparse.ArgumentParser(description="The compile cache of the sampler callbacks.")
    ap.add_argument("action", choices=("where", "clear"), nargs="?", default="where")
    args = ap.parse_args(argv)
    if args.action == "clear":
        print(f"removed {clear_cache()} file(s) from {cache_dir()}")
    else:
        print(f"{cache_dir()} ({len(cache_entries())} entries; "
              f"{'enabled' if cache_enabled() else f'disabled by {ENV_OFF}'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
