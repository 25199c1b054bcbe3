"""Atomic file output: every writer of the project goes through :func:`atomic_write`.

A result is written to a temporary file in the destination folder and renamed over the target
only when complete, so an interrupted or failed run never leaves a half-written file (DESIGN.md,
command-line contracts).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from data_prep.errors import InputError


def atomic_write(path, write: Callable[[str], object], *, create_folder: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    The temporary file keeps the target's suffix (some writers infer the format from it) and gets
    the usual permissions (mkstemp's 0600 would make results private). On any failure the
    temporary file is removed and the exception propagates; an existing ``path`` is untouched.
    """
    path = Path(path)
    folder = path.parent
    if create_folder:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise InputError(f"{path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
