"""Rank and collinearity decisions do not depend on the units of a column; extreme values get
their own message (models.spec.identification, models.spec.instruments, models.spec.inputs)."""

import numpy as np
import pytest

from data_prep.errors import InputError
from data_prep.readers import overflow_limit
from data_prep.synthetic.simulate import lattice_weights, simulate_system
from models.spec.instruments import independent_columns, unit_columns
from models.spec.system import build_system, parse_system

FORMULAS = ["ER ~ W(ER) + W(PSS) + PSS + x1 + x2 + z1",
            "PSS ~ W(PSS) + W(ER) + ER + x1 + x2 + z2"]


@pytest.fixture(scope="module")
def sim():
    w = lattice_weights(6)
    return simulate_system(w, seed=3), w


@pytest.mark.parametrize("scale", [1e-200, 1e-16, 1e16, 1e120])
def test_units_do_not_change_identification(sim, scale):
    s, w = sim
    base = build_system(parse_system(FORMULAS), s.data, w)
    scaled = build_system(parse_system(FORMULAS), s.data.assign(x1=s.data.x1 * scale), w)
    assert scaled.instruments()[1] == base.instruments()[1]      # same instrument columns kept


def test_collinearity_is_relative_per_column():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    cols = [("a", a * 1e14), ("b", b * 1e-14), ("a+b", a + b), ("c", 1e-200 * rng.normal(size=50))]
    kept, _ = independent_columns(cols, [])
    assert [n for n, _ in kept] == ["a", "b", "c"]      # a+b is a combination, c is not zero
    u = unit_columns(np.column_stack([a * 1e200, np.zeros(50)]))
    assert np.isclose(np.linalg.norm(u[:, 0]), 1.0) and not u[:, 1].any()


def test_extreme_value_has_its_own_message(sim):
    s, w = sim
    data = s.data.copy()
    data.loc[3, "x2"] = 1e300
    with pytest.raises(InputError, match=r"^equation ER: column x2 has values too large for the "
                                         r"estimators \(1e\+300 for city c00003; cities c00003\)"):
        build_system(parse_system(FORMULAS), data, w)
    data.loc[3, "x2"] = overflow_limit(len(data)) / 2    # just below the limit: accepted
    build_system(parse_system(FORMULAS), data, w, check=False)
