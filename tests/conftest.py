"""Test-session settings shared by every test file."""

import os

import pytest


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
