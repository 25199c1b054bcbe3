"""The installed commands run from outside the checkout and find their configs as package data.

Each `[project.scripts]` entry of pyproject.toml is called from a temporary folder that holds
no project file (so nothing can be found through the working directory); the demo config is
read through importlib.resources.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent


def _run(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_every_script_has_an_installed_command():
    scripts = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))
    targets = sorted(entry.split(":")[0].rsplit(".", 1)[1] for entry in COMMANDS.values())
    assert targets == scripts
    for entry in COMMANDS.values():
        assert entry.endswith(":main")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_answers_help_from_a_temporary_folder(command, tmp_path):
    exe = BIN / command
    if not exe.exists():
        pytest.skip(f"{command} is not installed in this environment (pip install -e .)")
    result = _run([str(exe), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert list(tmp_path.iterdir()) == []  # --help writes nothing


def test_bad_input_from_a_temporary_folder_is_one_error_line(tmp_path):
    exe = BIN / "resilience-fit-gs3sls"
    if not exe.exists():
        pytest.skip("resilience-fit-gs3sls is not installed in this environment")
    result = _run([str(exe), "--equation", "y ~ x", "--data", "missing.csv",
                   "--weights", "missing.gal", "--out", "coef.csv"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "missing" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_configs_are_package_data():
    from models.study.config import DEFAULT_CONFIG, load_config

    packaged = resources.files("models.study") / "configs"
    assert DEFAULT_CONFIG == Path(str(packaged / "demo.toml")) and DEFAULT_CONFIG.is_file()
    assert (packaged / "tiny.toml").is_file()
    for name in ("employment.csv", "covariates.csv", "cities.csv", "map.gal"):
        assert (packaged / "tiny" / name).is_file()
    assert load_config(None).source == str(DEFAULT_CONFIG)


def test_run_all_dry_run_from_a_temporary_folder(tmp_path):
    exe = BIN / "resilience-run-all"
    if not exe.exists():
        pytest.skip("resilience-run-all is not installed in this environment")
    result = _run([str(exe), "--dry-run", "--quick"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Table" in result.stdout
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing
