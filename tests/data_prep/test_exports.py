"""``data_prep`` exports what a notebook needs, lazily: importing the package loads no heavy
dependency, and every exported name is the object of its home module."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import data_prep


def test_import_is_light():
    code = ("import sys, data_prep; heavy = [m for m in ('xarray', 'scipy', 'pandas') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_export_is_its_home_object():
    for name, home in data_prep._EXPORTS.items():
        assert getattr(data_prep, name) is getattr(import_module(home), name)
    assert set(data_prep.__all__) == set(data_prep._EXPORTS)


def test_unknown_name_is_an_attribute_error():
    try:
        data_prep.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("expected AttributeError")
