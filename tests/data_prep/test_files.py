"""data_prep.files: output paths checked before any work, outputs written together, staging.

The tests run as root, for whom permission bits do not stop a write: unwritable folders are made
root-proof by a parent that is a regular FILE, or by a monkeypatched os.access.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from data_prep import files
from data_prep.errors import InputError
from data_prep.files import (check_output_paths, deferred_interrupt, staged_folder,
                             write_manifest, write_together)


def test_file_where_a_folder_is_expected_and_the_reverse(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(InputError, match=r"^--out .*afile/coef.csv: .*afile is a file, not a "
                                         r"folder$"):
        check_output_paths(files=[("--out", tmp_path / "afile" / "coef.csv")])
    with pytest.raises(InputError, match=r"^--out .*adir: is a folder; give a file name$"):
        check_output_paths(files=[("--out", tmp_path / "adir")])
    with pytest.raises(InputError, match=r"^--out-dir .*afile: is a file; give a folder$"):
        check_output_paths(folders=[("--out-dir", tmp_path / "afile")])
    with pytest.raises(InputError, match=r"cannot create folder .*afile/sub/deeper: .*afile "
                                         r"is a file"):
        check_output_paths(folders=[("--out-dir", tmp_path / "afile" / "sub" / "deeper")])


def test_missing_and_read_only_folders(tmp_path, monkeypatch):
    target = tmp_path / "new" / "deeper" / "coef.csv"
    check_output_paths(files=[("--out", target)])           # creatable: fine, nothing created
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match=r"^--out .*: folder .*deeper does not exist$"):
        check_output_paths(files=[("--out", target)], create_folders=False)
    real_access = os.access
    monkeypatch.setattr(files.os, "access",
                        lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(InputError, match=r"^--out .*: cannot create folder .*deeper: "
                                         r".* is not writable$"):
        check_output_paths(files=[("--out", target)])
    with pytest.raises(InputError, match=r"^--table .*t\.md: folder .* is not writable$"):
        check_output_paths(files=[("--table", tmp_path / "t.md")])


def test_two_outputs_on_one_file_and_bad_names(tmp_path):
    with pytest.raises(InputError, match=r"^--table .*x\.csv: the same file as --out"):
        check_output_paths(files=[("--out", tmp_path / "x.csv"), ("--table", tmp_path / "x.csv")])
    with pytest.raises(InputError, match="not a file name"):
        check_output_paths(files=[("--out", "")])
    with pytest.raises(InputError, match="file name is too long"):
        check_output_paths(files=[("--out", tmp_path / ("a" * 300 + ".csv"))])


def test_write_together_all_or_nothing(tmp_path):
    (tmp_path / "a.csv").write_text("old a")
    (tmp_path / "b.md").write_text("old b")

    def fail(tmp):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_together([(tmp_path / "a.csv", lambda t: Path(t).write_text("new a")),
                        (tmp_path / "b.md", fail)])
    assert (tmp_path / "a.csv").read_text() == "old a"       # first output not committed
    assert (tmp_path / "b.md").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.md"]   # no temporaries
    with pytest.raises(KeyboardInterrupt):
        write_together([(tmp_path / "new" / "c.csv", lambda t: Path(t).write_text("c")),
                        (tmp_path / "new" / "d.csv", lambda t: (_ for _ in ()).throw(
                            KeyboardInterrupt()))])
    assert not (tmp_path / "new").exists()                   # the folder it made is gone too
    done = write_together([(tmp_path / "a.csv", lambda t: Path(t).write_text("new a")),
                           (tmp_path / "b.md", lambda t: Path(t).write_text("new b"))])
    assert [p.read_text() for p in done] == ["new a", "new b"]


def test_interrupt_is_held_back_until_the_block_ends():
    seen = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            seen.append("block finished")
    assert seen == ["block finished"]


def _study(folder: Path, text: str) -> None:
    (folder / "tables").mkdir()
    (folder / "tables" / "t.csv").write_text(text)
    (folder / "report.md").write_text(text)


def test_staged_folder_swaps_in_and_keeps_old_on_failure(tmp_path):
    target = tmp_path / "results"
    with staged_folder(target) as stage:
        assert stage.parent == tmp_path and stage != target and not target.exists()
        _study(stage, "first")
    assert (target / "tables" / "t.csv").read_text() == "first"
    (target / "README.md").write_text("keep me")

    for exc in (RuntimeError("stage failed"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with staged_folder(target) as stage:
                _study(stage, "second")
                raise exc
        assert (target / "report.md").read_text() == "first"     # old results untouched
        assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]   # staging removed

    with staged_folder(target, keep=("README.md",)) as stage:
        _study(stage, "third")
    assert (target / "report.md").read_text() == "third"
    assert (target / "README.md").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]       # old ones removed


def test_staged_folder_without_atomic_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "exchange_paths", lambda a, b: False)
    target = tmp_path / "results"
    for text in ("one", "two"):
        with staged_folder(target) as stage:
            _study(stage, text)
    assert (target / "report.md").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_write_manifest(tmp_path):
    _study(tmp_path, "x")
    path = write_manifest(tmp_path, config_hash="c0", data_hash="d0", seed=3,
                          versions={"pymc": "5", "numpy": "2"},
                          files=[tmp_path / "report.md", "tables/t.csv"])
    manifest = json.loads(path.read_text())
    assert manifest["seed"] == 3 and manifest["versions"] == {"numpy": "2", "pymc": "5"}
    import hashlib

    assert manifest["files"] == [
        {"path": "report.md", "bytes": 1, "sha256": hashlib.sha256(b"x").hexdigest()},
        {"path": "tables/t.csv", "bytes": 1, "sha256": hashlib.sha256(b"x").hexdigest()}]
    with pytest.raises(InputError, match="not inside"):
        write_manifest(tmp_path / "tables", config_hash="c", data_hash="d", seed=0, versions={},
                       files=[tmp_path / "report.md"])
