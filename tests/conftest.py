"""Test-session settings and fixtures shared by every test file."""

import os

import pytest

from tests.fixtures import LatticeCase, write_lattice_case


@pytest.fixture(scope="session", autouse=True)
def private_compile_cache(tmp_path_factory):
    """The compile cache of models.bayes.compile_cache in a temporary folder, never the user's
    own cache folder (child processes inherit it through the environment)."""
    old = os.environ.get("RESILIENCE_CACHE_DIR")
    os.environ["RESILIENCE_CACHE_DIR"] = str(tmp_path_factory.mktemp("compile-cache"))
    yield
    if old is None:
        os.environ.pop("RESILIENCE_CACHE_DIR", None)
    else:
        os.environ["RESILIENCE_CACHE_DIR"] = old


@pytest.fixture
def lattice_files(tmp_path):
    """``lattice_files(side, seed, **simulate_options)``: a simulated system on a rook lattice
    written into the test's tmp_path as ``d.csv`` and ``w.gal`` (:mod:`tests.fixtures`)."""
    def write(side: int, seed: int, **simulate_options) -> LatticeCase:
        return write_lattice_case(tmp_path, side, seed, **simulate_options)

    return write
