"""Input values: non-finite and unparseable covariates, text ids, GAL files with asymmetric
links, spaces in ids or undeclared neighbours, and the messages that say so."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from data_prep.errors import InputError
from data_prep.readers import read_covariates
from data_prep.synthetic.simulate import lattice_weights, simulate_system
from data_prep.weights import weights_from_gal
from models.spec.system import build_system, parse_system
from tests.fixtures import write_city_files

CITIES = ["A", "B", "C"]


def covariates(tmp_path, gov) -> str:
    path = tmp_path / "c.csv"
    pd.DataFrame({"city": CITIES, "year": [2010] * 3, "Gov": gov}).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("value, shown", [("inf", "inf"), ("n/a", "n/a"), ("", None),
                                          ("nan", "nan"), ("-inf", "-inf")])
def test_covariates_refuse_non_finite_with_line_and_city(tmp_path, value, shown):
    path = covariates(tmp_path, ["0.1", value, "0.3"])
    with pytest.raises(InputError) as err:
        read_covariates(path, CITIES, [2010])
    msg = str(err.value)
    assert msg.startswith(f"{path}: column Gov is ")
    assert "line" in msg and " 3" in msg             # header is line 1, so B is on line 3
    if value in ("n/a", "nan"):                      # text: shown as written
        assert f"not numeric in lines 3 (cities B; values {value})" in msg
    else:
        assert "missing or not finite in lines 3 (cities B" in msg
    assert "\n" not in msg


def test_covariates_warn_about_values_that_overflow(tmp_path):
    path = covariates(tmp_path, [0.1, 1e300, 0.3])
    with pytest.warns(UserWarning, match=r"column Gov has values so large .*1e\+300 in lines 3, "
                                         r"cities B"):
        ds = read_covariates(path, CITIES, [2010])
    assert float(ds.Gov.sel(city="B", year=2010)) == 1e300   # kept: a warning, not an error


def test_numeric_looking_ids_keep_their_text(tmp_path):
    w = lattice_weights(4)
    sim = simulate_system(w, seed=1)
    ids = [f"{k:04d}" for k in range(16)]                   # "0000", "0001", ...
    rename = dict(zip(w.cities, ids))
    data = sim.data.assign(city=sim.data["city"].map(rename))
    csv, gal = write_city_files(tmp_path, data, w)
    text = gal.read_text()
    for old, new in rename.items():
        text = text.replace(old, new)
    gal.write_text(text)
    weights = weights_from_gal(gal)
    assert weights.cities[:2] == ("0000", "0001")
    system = build_system(parse_system(sim.formulas), csv, weights=str(gal))
    assert list(system.cities[:2]) == ["0000", "0001"]


def test_gal_problems_are_named(tmp_path):
    spaced = tmp_path / "spaced.gal"
    spaced.write_text("3\nXi an 1\nB\nB 1\nXi an\nC 0\n\n")
    with pytest.raises(InputError, match=r"^GAL spaced.gal line 2: expected 'city "
                                         r"number-of-neighbours', found 'Xi an 1' \(GAL ids "
                                         r"cannot contain spaces\)$"):
        weights_from_gal(spaced)
    undeclared = tmp_path / "undeclared.gal"
    undeclared.write_text("2\nA 1\nZZZ\nB 1\nA\n")
    with pytest.raises(InputError, match=r"^GAL undeclared.gal line 3: city A names neighbour "
                                         r"ZZZ, which has no entry of its own"):
        weights_from_gal(undeclared)
    short = tmp_path / "short.gal"
    short.write_text("2\nA 2\nB\nB 1\nA\n")
    with pytest.raises(InputError, match=r"line 3: city A should list 2 neighbours but 1"):
        weights_from_gal(short)


def test_asymmetric_gal_is_used_as_given_with_a_warning(tmp_path):
    path = tmp_path / "asym.gal"
    path.write_text("3\nA 2\nB C\nB 1\nA\nC 1\nB\n")      # A-C and C-B lack their reverse
    with pytest.warns(UserWarning, match=r"asymmetric: 2 of 4 links have no reverse link; used "
                                         r"as given"):
        w = weights_from_gal(path)
    M = w.matrix.toarray()
    np.testing.assert_allclose(M, [[0, 0.5, 0.5], [1, 0, 0], [0, 1, 0]])   # rows as given
    assert not w.symmetric_relation
    symmetric = tmp_path / "sym.gal"
    symmetric.write_text("2\nA 1\nB\nB 1\nA\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights_from_gal(symmetric)


def test_not_numeric_message_shows_an_offending_value_and_its_city():
    w = lattice_weights(3)
    sim = simulate_system(w, seed=2)
    data = sim.data.astype({"x1": object})
    data.loc[4, "x1"] = "12k"
    with pytest.raises(InputError, match=r"column x1 is not numeric \('12k' for city "
                                         rf"{data.loc[4, 'city']}\)"):
        build_system(parse_system(sim.formulas), data, w)


def test_formula_syntax_error_is_one_plain_line():
    w = lattice_weights(3)
    sim = simulate_system(w, seed=2)
    with pytest.raises(InputError) as err:
        build_system(parse_system(["ER ~ PSS + x1 +* x2", "PSS ~ ER + x2 + z2"]), sim.data, w)
    msg = str(err.value)
    assert "\n" not in msg and "\x1b" not in msg and "+*" in msg
