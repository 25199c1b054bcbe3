"""The shared system specification: parsing, design matrices, instruments, input errors."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from data_prep.errors import InputError
from data_prep.synthetic.simulate import lattice_weights, simulate_system
from models.spec.system import (build_system, check_identification, identification_note,
                                parse_system)
from tests.fixtures import write_city_files


@pytest.fixture(scope="module")
def lattice():
    return lattice_weights(5)


@pytest.fixture(scope="module")
def sim(lattice):
    return simulate_system(lattice, seed=3)


def test_parse_classifies_lags_endogenous_durbin_and_intercept():
    spec = parse_system(["ER ~ PSS + W(ER) + W(PSS) + Gov + W(Gov) + log(PGDP) - 1",
                         "PSS ~ ER + W(PSS) + Gov + Fdi"], spatial_errors="PSS")
    er, pss = spec.equations
    assert spec.dependents == ("ER", "PSS")
    assert er.spatial_lags == ("ER", "PSS")
    assert er.endogenous == ("PSS",)
    assert er.exogenous == ("Gov", "W(Gov)", "log(PGDP)")     # no Intercept after "- 1"
    assert er.terms == ("W(ER)", "W(PSS)", "PSS", "Gov", "W(Gov)", "log(PGDP)")
    assert not er.spatial_error and pss.spatial_error
    assert pss.exogenous == ("Intercept", "Gov", "Fdi")
    assert pss.terms[:2] == ("W(PSS)", "ER")
    assert spec.uses_weights


@pytest.mark.parametrize("rhs, intercept", [("x1 + 0", False), ("0 + x1", False),
                                            ("-1 + x1", False), ("x1", True), ("1 + x1", True)])
def test_intercept_removal(rhs, intercept):
    eq = parse_system([f"y ~ {rhs}"]).equations[0]
    assert ("Intercept" in eq.exogenous) is intercept
    assert eq.exogenous[-1] == "x1"


def test_single_equation_without_weights():
    spec = parse_system("y ~ x1 + x2")
    assert len(spec.equations) == 1 and not spec.uses_weights
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"city": [f"k{i}" for i in range(20)], "y": rng.normal(size=20),
                       "x1": rng.normal(size=20), "x2": rng.normal(size=20)})
    system = build_system(spec, df)
    assert system.W is None and system.G == 1 and system.n == 20
    np.testing.assert_array_equal(system.Z(0), np.column_stack([np.ones(20), df.x1, df.x2]))
    H, names = system.instruments(spatial=True)  # no weights: plain X
    assert names == ("Intercept", "x1", "x2")


def test_three_equations(lattice):
    rng = np.random.default_rng(1)
    n = 25
    df = pd.DataFrame({"city": list(lattice.cities)})
    for v in ("a", "b", "c", "x1", "x2", "x3", "x4"):
        df[v] = rng.normal(size=n)
    spec = parse_system(["a ~ b + W(a) + x1 + x2", "b ~ c + W(a) + x2 + x3",
                         "c ~ a + b + x1 + x4"])
    system = build_system(spec, df, lattice)
    assert system.G == 3
    assert spec.equations[2].endogenous == ("a", "b")
    assert system.spec.equations[1].terms == ("W(a)", "c", "Intercept", "x2", "x3")
    W = lattice.matrix.toarray()
    np.testing.assert_allclose(system.Z(1)[:, 0], W @ df.a.to_numpy())
    np.testing.assert_allclose(system.Z(1)[:, 1], df.c)


def test_design_matrices_match_direct_numpy(sim, lattice):
    df = sim.data.copy()
    df["x2"] = df["x2"] + 5.0  # positive for log
    df["tier"] = np.arange(len(df)) % 3 + 1
    spec = parse_system(["ER ~ W(ER) + W(PSS) + PSS + x1 + log(x2) + W(x1) + C(tier) + z1",
                         "PSS ~ W(PSS) + ER + x1 + x2 + z2"])
    system = build_system(spec, df, lattice)
    W = lattice.matrix.toarray()
    er = system.spec.equations[0]
    assert er.exogenous == ("Intercept", "x1", "log(x2)", "W(x1)", "C(tier)[T.2]",
                            "C(tier)[T.3]", "z1")
    expected = np.column_stack([
        W @ df.ER, W @ df.PSS, df.PSS, np.ones(len(df)), df.x1, np.log(df.x2), W @ df.x1,
        (df.tier == 2).astype(float), (df.tier == 3).astype(float), df.z1])
    np.testing.assert_allclose(system.Z(0), expected)
    np.testing.assert_allclose(system.Y, df[["ER", "PSS"]].to_numpy())
    Xu, names = system.exogenous_union()
    assert names == er.exogenous + ("x2", "z2")
    np.testing.assert_allclose(Xu[:, names.index("z2")], df.z2)


def test_weights_are_reordered_to_the_data(sim, lattice):
    spec = parse_system(sim.formulas)
    shuffled = sim.data.sample(frac=1.0, random_state=0).reset_index(drop=True)
    a = build_system(spec, sim.data, lattice)
    b = build_system(spec, shuffled, lattice)
    order = [list(a.cities).index(c) for c in b.cities]
    np.testing.assert_allclose(b.Z(0), a.Z(0)[order])
    # a sparse matrix is taken as aligned with the rows as given
    c = build_system(spec, sim.data, sp.csr_matrix(lattice.matrix))
    np.testing.assert_allclose(c.Z(1), a.Z(1))


def test_spatial_instruments_names_duplicates_and_rank(sim, lattice):
    df = sim.data.assign(x1copy=sim.data.x1, combo=sim.data.x1 + 2 * sim.data.x2)
    spec = parse_system(["ER ~ W(ER) + W(PSS) + PSS + x1 + x2 + z1 + W(x1)",
                         "PSS ~ W(PSS) + ER + x1 + x2 + z2"], instruments="combo,x1copy")
    with pytest.warns(UserWarning, match="combo, x1copy"):
        system = build_system(spec, df, lattice)
    H, names = system.instruments()   # cached: no second warning
    assert names == ("Intercept", "x1", "x2", "z1", "W(x1)", "z2",
                     "W(x2)", "W(z1)", "W2(x1)", "W(z2)",      # W(W(x1)) is W2(x1); W(x1) a dup
                     "W2(x2)", "W2(z1)", "W3(x1)", "W2(z2)")   # W2(x1) dup, no Intercept lags
    W = lattice.matrix.toarray()
    np.testing.assert_allclose(H[:, names.index("W2(z1)")], W @ W @ df.z1)
    np.testing.assert_allclose(H[:, names.index("W3(x1)")], W @ W @ W @ df.x1)
    assert np.linalg.matrix_rank(H) == H.shape[1]
    with pytest.warns(UserWarning, match="combo, x1copy"):
        Hn, nn = system.instruments(spatial=False)
    assert nn == ("Intercept", "x1", "x2", "z1", "W(x1)", "z2")


def test_user_instruments_are_appended(sim, lattice):
    df = sim.data.assign(hist=np.random.default_rng(5).normal(size=len(sim.data)))
    spec = parse_system(sim.formulas, instruments=["hist"])
    system = build_system(spec, df, lattice)
    H, names = system.instruments()
    assert names[-1] == "hist" and system.Q.shape == (25, 1)
    np.testing.assert_allclose(H[:, -1], df["hist"])


def test_exactly_collinear_columns_are_dropped_keeping_the_first(sim, lattice):
    # W applied to a constant is constant for a row-standardised W; W(c) must not enter H
    df = sim.data.assign(c=3.0 * np.ones(len(sim.data)))
    spec = parse_system(["ER ~ W(ER) + PSS + x1 + z1 - 1", "PSS ~ ER + x1 + z2 + c - 1"])
    H, names = build_system(spec, df, lattice).instruments()
    assert "c" in names and "W(c)" not in names and "W2(c)" not in names
    assert np.linalg.matrix_rank(H) == H.shape[1]


def test_identification_note_when_only_spatial_lags_identify(sim, lattice):
    same = ["ER ~ W(ER) + PSS + x1 + x2", "PSS ~ W(PSS) + ER + x1 + x2"]
    note = identification_note(build_system(parse_system(same), sim.data, lattice))
    lines = note.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("equation ER: every excluded instrument is a spatial lag")
    assert "(PSS, W(ER)) are identified only through the spatial structure" in lines[0]
    assert lines[1].startswith("equation PSS:")
    assert identification_note(parse_system(sim.formulas)) is None      # z1, z2 excluded
    assert identification_note(parse_system(same, instruments="z1")) is None
    # Durbin terms are spatial lags too: excluding W(x2) from one equation does not help
    durbin = ["ER ~ PSS + x1 + W(x2)", "PSS ~ ER + x1"]
    assert "equation PSS: every excluded" in identification_note(parse_system(durbin))
    # three equations, two endogenous regressors and a single excluded variable
    three = ["a ~ b + c + x1", "b ~ a + x1 + x2", "c ~ a + x1 + x2"]
    partial = identification_note(parse_system(three))
    assert partial.startswith("equation a: only 1 excluded instrument besides spatial lags "
                              "for 2 endogenous regressors (b, c)")
    assert "equation b: every" in partial


@pytest.mark.parametrize("formulas, data_change, weights, message", [
    (["ER ~ PSS + x1 + x9", "PSS ~ ER + x1 + z2"], None, True,
     "equation ER: unknown variable x9"),
    (["ER ~ W(PSS) + PSS + x1 + z1", "PSS ~ ER + x1 + z2"], None, False,
     r"equation ER uses W\(PSS\) but no spatial weights"),
    (["ER ~ x1 + W(x2)", "PSS ~ x1"], None, False, r"W\(x2\) needs spatial weights"),
    (["ER ~ PSS + x1", "PSS ~ ER + x1"], None, False,
     r"equation ER: 1 endogenous regressor \(PSS\) but only 0 excluded instruments; add "
     r"exogenous variables excluded from this equation, their spatial lags, or --instruments"),
    (["ER ~ x1 + x1b", "PSS ~ x1"], "x1b", False, "equation ER: exogenous column x1b"),
    (["ER ~ x1 + log(x2)", "PSS ~ x1"], None, False,
     r"column log\(x2\) has missing or non-finite values for \d+ cities: c000"),
    (["ER ~ x1 + xn", "PSS ~ x1"], "xn", False,
     "column xn has missing or non-finite values for 2 cities: c00003, c00007"),
    (["ER ~ x1 + xs", "PSS ~ x1"], "xs", False, r"column xs is not numeric.*C\(xs\)"),
])
def test_build_errors(sim, lattice, formulas, data_change, weights, message):
    df = sim.data.copy()
    df["x1b"] = 2 * df.x1
    df["xn"] = df.x1
    df.loc[[3, 7], "xn"] = np.nan
    df["xs"] = "a"
    with pytest.raises(InputError, match=message) as info:
        build_system(parse_system(formulas), df, lattice if weights else None)
    assert "\n" not in str(info.value)


def test_order_condition_counts_lags(sim, lattice):
    spec = parse_system(["ER ~ x1 + x2", "PSS ~ ER + W(ER) + W(PSS) + x1 + x2"])
    system = build_system(spec, sim.data, lattice, check=False)
    with pytest.raises(InputError, match=r"equation PSS: 3 endogenous regressors "
                                         r"\(ER, W\(ER\), W\(PSS\)\) but only 0 excluded"):
        check_identification(system, spatial=False)
    check_identification(system, spatial=True)  # W x, W² x supply 4 excluded instruments


@pytest.mark.parametrize("formulas, kwargs, message", [
    (["ER x1"], {}, "expected exactly one '~'"),
    (["ER ~ (x1 + x2"], {}, "unbalanced parentheses"),
    (["ER ~ x1", "ER ~ x2"], {}, "dependent ER has more than one equation"),
    (["ER ~ ER + x1"], {}, "dependent ER cannot be its own regressor"),
    (["ER ~ log(PSS) + x1", "PSS ~ x1"], {}, "transforms the system dependent PSS"),
    (["ER ~ x1 + W(x1):x2"], {}, "must be a whole term"),
    (["ER ~ x1"], {"spatial_errors": "PSS"}, "PSS, which is not a dependent"),
    (["ER ~ x1", "PSS ~ x1"], {"instruments": "PSS"}, "PSS is a dependent of the system"),
    ([], {}, "no equations"),
])
def test_parse_errors(formulas, kwargs, message):
    with pytest.raises(InputError, match=message):
        parse_system(formulas, **kwargs)


def test_weights_mismatch_names_cities(sim, lattice):
    spec = parse_system(sim.formulas)
    with pytest.raises(InputError, match="weights cities are not in the data .c00024"):
        build_system(spec, sim.data.iloc[:-1], lattice)
    with pytest.raises(InputError, match=r"shape \(3, 3\) but the data have 25"):
        build_system(spec, sim.data, sp.identity(3, format="csr"))
    dup = pd.concat([sim.data, sim.data.iloc[:1]])
    with pytest.raises(InputError, match="repeats cities: c00000"):
        build_system(spec, dup, lattice)


def test_csv_path_and_gal_path(tmp_path, sim, lattice):
    csv, gal = write_city_files(tmp_path, sim.data, lattice)
    a = build_system(parse_system(sim.formulas), csv, gal)
    b = build_system(parse_system(sim.formulas), sim.data, lattice)
    np.testing.assert_allclose(a.Z(0), b.Z(0))
    with pytest.raises(InputError, match="not found"):
        build_system(parse_system(sim.formulas), tmp_path / "missing.csv", gal)


def test_prepared_dataset_path_uses_its_cross_section_and_weights(tmp_path, lattice):
    from data_prep.dataset import build_dataset, cross_section, load_dataset, save_dataset

    rng = np.random.default_rng(7)
    rows = [(c, y, f"ind{i}", float(rng.integers(50, 500)))
            for c in lattice.cities for y in (2010, 2011, 2012) for i in range(4)]
    emp = pd.DataFrame(rows, columns=["city", "year", "industry", "employment"])
    cov = pd.DataFrame([(c, y, rng.normal()) for c in lattice.cities for y in (2010, 2011, 2012)],
                       columns=["city", "year", "Gov"])
    path = tmp_path / "small.nc"
    save_dataset(build_dataset(emp, weights=lattice, covariates=cov, synthetic=True,
                               spectrum=False), path)
    formulas = ["PSS ~ W(PSS) + PSD + Gov", "PSD ~ PSS + W(Gov)"]
    from_file = build_system(parse_system(formulas), path)
    frame = cross_section(load_dataset(path))
    direct = build_system(parse_system(formulas), frame, lattice)
    assert list(from_file.cities) == list(frame["city"])
    np.testing.assert_allclose(from_file.Z(0), direct.Z(0))
    np.testing.assert_allclose(from_file.Z(1)[:, -1], lattice.matrix @ frame["Gov"].to_numpy())
