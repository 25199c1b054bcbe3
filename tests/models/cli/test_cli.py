"""Shared command-line arguments of the contract-2 scripts."""

import argparse

import pytest

from data_prep.errors import InputError
from data_prep.synthetic.demo import demo_inputs
from data_prep.weights import weights_from_file
from models.cli.arguments import add_system_arguments, run_reporting_errors, weights_argument


@pytest.fixture(scope="module")
def demo_map(tmp_path_factory):
    path = tmp_path_factory.mktemp("map") / "demo.geojson"
    demo_inputs().geometry.to_file(path, driver="GeoJSON")
    return path


def parse(*extra):
    p = argparse.ArgumentParser()
    add_system_arguments(p)
    return p.parse_args(["--equation", "y ~ x", "--data", "d.csv", *extra])


def test_island_policy_reaches_the_weights(demo_map):
    with pytest.raises(InputError, match="no neighbours|island"):
        weights_from_file(demo_map)  # the demo map has island cities: refused by default
    assert weights_argument(parse("--weights", str(demo_map))) == str(demo_map)
    linked = weights_argument(parse("--weights", str(demo_map), "--island-policy", "nearest"))
    assert linked.n == 241 and linked.islands and linked.matrix.sum(axis=1).min() > 0.99


def test_errors_become_one_line_and_status_2(capsys):
    def bad(_):
        raise InputError("equation ER: unknown variable Foo")

    assert run_reporting_errors(bad, None) == 2
    assert capsys.readouterr().err == "error: equation ER: unknown variable Foo\n"


def test_interrupts_and_terminations_are_one_line_and_status_130(capsys):
    import os
    import signal

    from models.cli.arguments import EXIT_INTERRUPTED

    def interrupted(_):
        raise KeyboardInterrupt

    def killed(_):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have stopped the run")

    before = signal.getsignal(signal.SIGTERM)
    assert run_reporting_errors(interrupted, None) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == ("interrupted: nothing written; earlier outputs left as "
                                       "they were\n")
    assert run_reporting_errors(killed, None) == 130
    assert capsys.readouterr().err.startswith("interrupted: terminated (SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) == before        # handler restored
