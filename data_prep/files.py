"""Safe file output: every writer of the project goes through this module.

* :func:`check_output_paths` validates the output paths a user gave *before* any work is done
  (a folder where a file is expected, a file where a folder is expected, a parent that is a file
  or cannot be written), so a long fit never ends in "cannot write".
* :func:`atomic_write` writes one file to a temporary beside it and renames it over the target
  only when complete; :func:`write_together` does the same for several files, renaming them only
  once all are written (all outputs of one command, or none).
* :func:`staged_folder` writes a whole study into a fresh staging folder and swaps it for the
  target folder at the end; :func:`write_manifest` records what produced it.

An interrupted or failed run never leaves a half-written file, and never a mixture of old and new
outputs (docs/contracts.md, command-line contracts). Ctrl-C during the final renames is deferred until
they are done (:func:`deferred_interrupt`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from data_prep.errors import InputError

Writer = Callable[[str], object]


# ----------------------------------------------------------------------------- path checks

def _labelled(items) -> list[tuple[str, Path]]:
    """(label, path) pairs from paths or (label, path) tuples; the label names the option."""
    out = []
    for item in items:
        if isinstance(item, tuple):
            label, path = item
            out.append((f"{label} {path}" if label else str(path), Path(path)))
        else:
            out.append((str(item), Path(item)))
    return out


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_folder_writable(label: str, folder: Path, *, create: bool) -> None:
    """``folder`` (where a file or subfolder will be created) exists and is writable, or can be
    created (its nearest existing ancestor is a writable folder)."""
    if folder.exists():
        if not folder.is_dir():
            raise InputError(f"{label}: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"{label}: folder {folder} is not writable")
        return
    if not create:
        raise InputError(f"{label}: folder {folder} does not exist")
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise InputError(f"{label}: cannot create folder {folder}: {base} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"{label}: cannot create folder {folder}: {base} is not writable")


def _check_name(label: str, path: Path) -> None:
    if str(path) in ("", ".") or path.name in ("", ".", ".."):
        raise InputError(f"{label}: not a file name")
    try:
        limit = os.pathconf(_nearest_existing(path.parent.absolute()), "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    # the temporary name adds a dot prefix and a random suffix to the target's name
    if len(os.fsencode(path.name)) + 16 > limit:
        raise InputError(f"{label}: the file name is too long ({len(path.name)} characters)")


def check_output_paths(files: Iterable = (), folders: Iterable = (), *,
                       create_folders: bool = True) -> None:
    """Refuse, in one line naming the path as given, outputs that cannot be written.

    ``files`` and ``folders`` hold paths or ``(option, path)`` pairs (the option, e.g.
    ``"--out"``, starts the message). A file must not be an existing folder, and its folder must be
    writable or creatable (``create_folders``; else it must exist). A folder must not be an
    existing file and must be writable or creatable. Two outputs naming the same file are refused.
    Call this before any work; it creates nothing.
    """
    seen: dict[Path, str] = {}
    for label, path in _labelled(files):
        _check_name(label, path)
        if path.is_dir():
            raise InputError(f"{label}: is a folder; give a file name")
        resolved = path.absolute()
        if resolved in seen:
            raise InputError(f"{label}: the same file as {seen[resolved]}; give different names")
        seen[resolved] = label
        _check_folder_writable(label, path.parent if str(path.parent) else Path("."),
                               create=create_folders)
    for label, path in _labelled(folders):
        if str(path) == "":
            raise InputError(f"{label}: not a folder name")
        if path.exists() and not path.is_dir():
            raise InputError(f"{label}: is a file; give a folder")
        if path.exists():
            _check_folder_writable(label, path, create=False)
        else:
            _check_folder_writable(label, path, create=create_folders)


# ----------------------------------------------------------------------------- interrupts

@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the duration of the block, then raise it.

    Used around the final renames so that an interrupt cannot leave some outputs renamed and
    others not. Outside the main thread signals cannot be handled, and the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# ----------------------------------------------------------------------------- writing

def _temporary_beside(path: Path) -> str:
    """An empty temporary file in ``path``'s folder, keeping its suffix (some writers infer the
    format from it), with the usual permissions (mkstemp's 0600 would make results private)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=path.suffix or ".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def _make_folders(folders: Iterable[Path], create: bool, label_of: dict) -> list[Path]:
    """Create missing folders (returns those created, deepest last), or refuse them."""
    created: list[Path] = []
    for folder in dict.fromkeys(folders):
        if folder.is_dir():
            continue
        if not create:
            raise InputError(f"{label_of.get(folder, folder)}: folder {folder} does not exist")
        missing = []
        probe = folder
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        folder.mkdir(parents=True, exist_ok=True)
        created += reversed(missing)
    return created


def write_together(outputs: Sequence[tuple[object, Writer]], *,
                   create_folder: bool = True) -> list[Path]:
    """Write several files as one unit: each ``write(tmp)`` fills a temporary beside its target;
    only when every one succeeded are they all renamed over their targets (Ctrl-C held back
    during the renames). On any failure the temporaries (and folders this call created) are
    removed and the exception propagates; the existing targets are untouched.
    """
    items = [(Path(p), w) for p, w in outputs]
    label_of = {p.parent: p for p, _ in items}
    created = _make_folders((p.parent for p, _ in items), create_folder, label_of)
    temporaries: list[str] = []
    try:
        for path, write in items:
            tmp = _temporary_beside(path)
            temporaries.append(tmp)
            write(tmp)
        with deferred_interrupt():
            for tmp, (path, _) in zip(temporaries, items):
                os.replace(tmp, path)
    except BaseException:
        for tmp in temporaries:
            Path(tmp).unlink(missing_ok=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise
    return [p for p, _ in items]


def atomic_write(path, write: Writer, *, create_folder: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    On any failure the temporary file is removed and the exception propagates; an existing
    ``path`` is untouched. Without ``create_folder`` a missing folder is an InputError.
    """
    return write_together([(path, write)], create_folder=create_folder)[0]


# ----------------------------------------------------------------------------- whole study

def _libc_renameat2():
    """renameat2(2) from the C library, or None (not Linux, or an old libc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


AT_FDCWD, RENAME_EXCHANGE = -100, 2


def exchange_paths(a, b) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    Returns False when the system cannot do it (the caller falls back to two renames)."""
    fn = _libc_renameat2()
    if fn is None:
        return False
    if fn(AT_FDCWD, os.fsencode(str(a)), AT_FDCWD, os.fsencode(str(b)), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


@contextlib.contextmanager
def staged_folder(target, *, keep: Sequence[str] = ()) -> Iterator[Path]:
    """Write a whole result folder into a fresh staging folder beside ``target``, then swap it in.

    ``with staged_folder("results") as stage: ...`` yields the staging folder (a new empty folder
    ``.results.staging-XXXX`` beside ``results``). When the block ends normally the staging
    folder becomes ``target``: an existing ``target`` is exchanged with it in one atomic step
    where the system allows (Linux renameat2), else moved aside and the staging folder renamed
    in its place (Ctrl-C held back meanwhile); the old results are then removed. Entries named in
    ``keep`` (e.g. a README) are copied from the old folder when the new one lacks them.
    On any exception, KeyboardInterrupt included, the staging folder is removed and the old
    results stay untouched.
    """
    target = Path(target)
    parent = target.absolute().parent
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: is a file; give a folder")
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.staging-"))
    os.chmod(stage, 0o777 & ~_umask())
    try:
        yield stage
        for name in keep:
            old, new = target / name, stage / name
            if old.exists() and not new.exists():
                (shutil.copytree if old.is_dir() else shutil.copy2)(old, new)
        aside: Path | None = None
        try:
            with deferred_interrupt():
                if not target.exists():
                    os.rename(stage, target)
                elif exchange_paths(stage, target):
                    aside = stage  # now holds the old results
                else:
                    aside = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.old-"))
                    os.rmdir(aside)
                    os.rename(target, aside)
                    try:
                        os.rename(stage, target)
                    except BaseException:
                        os.rename(aside, target)
                        aside = None
                        raise
        finally:
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder, *, config_hash: str, data_hash: str, seed: int,
                   versions: dict[str, str], files: Iterable) -> Path:
    """Write ``folder/manifest.json``: what produced the results and what they are.

    ``files`` are paths inside ``folder`` (absolute or relative to it); each is listed with its
    path relative to ``folder``, size in bytes and SHA-256, sorted by path, so two runs can be
    compared file by file. ``config_hash``/``data_hash`` identify the inputs, ``versions`` maps
    package names to versions. Written atomically.
    """
    folder = Path(folder)
    listed = []
    for f in files:
        path = Path(f) if Path(f).is_absolute() else folder / f
        try:
            rel = path.absolute().relative_to(folder.absolute())
        except ValueError:
            raise InputError(f"manifest: {path} is not inside {folder}") from None
        if not path.is_file():
            raise InputError(f"manifest: {path} does not exist")
        listed.append({"path": rel.as_posix(), "bytes": path.stat().st_size,
                       "sha256": file_sha256(path)})
    manifest = {"config_hash": str(config_hash), "data_hash": str(data_hash), "seed": int(seed),
                "versions": {str(k): str(v) for k, v in sorted(versions.items())},
                "files": sorted(listed, key=lambda e: e["path"])}
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    return atomic_write(folder / "manifest.json",
                        lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def figure_writer(fig, *, dpi: int = 110) -> Writer:
    """A writer for :func:`atomic_write` / :func:`write_together`: the figure as PNG."""
    return lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")


def save_figure(fig, path, *, dpi: int = 110, create_folder: bool = True) -> Path:
    """Write a matplotlib figure as PNG through :func:`atomic_write`, then close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, figure_writer(fig, dpi=dpi), create_folder=create_folder)
    finally:
        plt.close(fig)
