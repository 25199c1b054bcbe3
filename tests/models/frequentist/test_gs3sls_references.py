"""Frequentist reporting layer against independent references: p-values, full covariance
matrices and the weak-identification diagnostics.

References: scipy's normal survival function on the reported estimates; linearmodels ``IV3SLS``
(p-values and the whole covariance matrix, off-diagonal cross-equation blocks included); spreg
``GM_Lag`` z-test p-values; a dense textbook Sanderson–Windmeijer (2016, J. Econometrics 190,
212–221) conditional F written out below with n × n projection matrices (test only).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import pandas as pd
import pytest
from scipy import stats

from data_prep.synthetic.simulate import SystemTruth, lattice_weights, simulate_system
from models.frequentist import estimate
from models.frequentist.diagnostics import first_stage, weak_identification_warnings
from models.frequentist.iv import Projector
from models.spec.coefficient_tables import paper_table
from models.spec.system import build_system, parse_system

FORMULAS = ["y1 ~ y2 + x1 + z1", "y2 ~ y1 + x1 + z2 + x2"]


def _data(seed: int = 3) -> pd.DataFrame:
    truth = SystemTruth({"y1": {"y2": 0.5, "Intercept": 1.0, "x1": 1.0, "z1": 0.8},
                         "y2": {"y1": -0.3, "Intercept": 0.5, "x1": 0.4, "z2": 1.0, "x2": 0.6}},
                        np.array([[1.0, 0.4], [0.4, 0.7]]))
    data = simulate_system(lattice_weights(9), truth, seed=seed).data.copy()
    data["q1"] = data["z1"] + np.random.default_rng(5).standard_normal(len(data))
    return data


def _linearmodels(data: pd.DataFrame, method: str):
    from linearmodels.system import IV3SLS

    const = pd.Series(1.0, index=data.index, name="Intercept")
    union = ["x1", "z1", "x2", "z2"]
    eqs = {}
    for dep, endog, exog in (("y1", ["y2"], ["x1", "z1"]), ("y2", ["y1"], ["x1", "z2", "x2"])):
        eqs[dep] = {"dependent": data[dep], "exog": pd.concat([const, data[exog]], axis=1),
                    "endog": data[endog],
                    "instruments": data[[v for v in union if v not in exog] + ["q1"]]}
    return IV3SLS(eqs).fit(method=method, cov_type="unadjusted", debiased=False)


@pytest.fixture(scope="module")
def fits():
    data = _data()
    system = build_system(parse_system(FORMULAS, instruments=("q1",)), data)
    return {m: (estimate(system, m), _linearmodels(data, lm))
            for m, lm in (("2sls", "ols"), ("3sls", "gls"))}


@pytest.mark.parametrize("method", ["2sls", "3sls"])
def test_pvalues_are_two_sided_normal_and_match_linearmodels(fits, method):
    ours, ref = fits[method]
    z = ours.params.to_numpy() / ours.std_errors.to_numpy()
    np.testing.assert_allclose(ours.pvalues.to_numpy(), 2 * stats.norm.sf(np.abs(z)),
                               rtol=1e-12)
    keys = [f"{eq}_{t}" for eq, t in ours.params.index]
    # linearmodels with debiased=False uses the normal distribution, two-sided
    np.testing.assert_allclose(ours.pvalues.to_numpy(), ref.pvalues[keys].to_numpy(),
                               rtol=1e-6, atol=1e-12)
    assert ours.pvalues.between(0, 1).all()


@pytest.mark.parametrize("method", ["2sls", "3sls"])
def test_full_covariance_matches_linearmodels(fits, method):
    """All blocks, including the cross-equation ones Cov(δ̂_y1, δ̂_y2)."""
    ours, ref = fits[method]
    keys = [f"{eq}_{t}" for eq, t in ours.params.index]
    ref_cov = ref.cov.loc[keys, keys].to_numpy()
    cov = ours.cov.to_numpy()
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-6, atol=1e-10)
    n1 = len(ours.params.loc["y1"])
    off = ref_cov[:n1, n1:]
    assert np.abs(off).max() > 1e-3 * np.abs(np.diag(ref_cov)).max()  # blocks matter here


def test_paper_table_stars_follow_two_sided_pvalues(fits):
    ours, _ = fits["2sls"]
    frame = ours.to_frame()
    table = paper_table({"2SLS": frame}).set_index("term")
    for row in frame.itertuples():
        p = 2 * stats.norm.sf(abs(row.estimate / row.std_error))
        mark = "***" if p < 0.01 else "**" if p < 0.05 else "*" if p < 0.10 else ""
        label = "Constant" if row.term == "Intercept" else row.term
        col = f"2SLS: {row.equation}"
        assert table.loc[label, col] == f"{row.estimate:.3f}{mark}"
    # the design has p-values where a one-sided test would add a star
    assert ((frame.p_value > 0.01) & (frame.p_value < 0.2)).any()


def test_spatial_pvalues_match_spreg_gm_lag():
    from spreg import GM_Lag

    from data_prep.weights import to_libpysal

    w = lattice_weights(10)
    truth = SystemTruth({"y": {"W(y)": 0.4, "Intercept": 1.0, "x1": 0.15, "x2": -0.7}},
                        np.array([[1.0]]))
    sim = simulate_system(w, truth, seed=11)
    ours = estimate(build_system(parse_system(["y ~ W(y) + x1 + x2"]), sim.data, weights=sim.W),
                    "2sls")
    ref = GM_Lag(sim.data[["y"]].to_numpy(), sim.data[["x1", "x2"]].to_numpy(),
                 w=to_libpysal(w), w_lags=2)
    order = [("y", "Intercept"), ("y", "x1"), ("y", "x2"), ("y", "W(y)")]
    ref_p = np.array([p for _, p in ref.z_stat])
    np.testing.assert_allclose(ours.pvalues[order].to_numpy(), ref_p, rtol=1e-5, atol=1e-12)
    assert 0.001 < ours.pvalues[("y", "x1")] < 0.5   # a p-value in the range where 2× matters


def test_gs2sls_cross_equation_covariance_is_the_system_formula():
    """GS2SLS block (i, j) = σ̂_ij (Ẑ_i'Ẑ_i)⁻¹ Ẑ_i'Ẑ_j (Ẑ_j'Ẑ_j)⁻¹ on the ρ-filtered regressors,
    written densely here (P = H(H'H)⁻¹H')."""
    w = lattice_weights(8)
    truth = simulate_system(w, seed=1).truth
    truth.rho["ER"] = 0.4
    sim = simulate_system(w, truth, seed=1)
    system = build_system(parse_system(sim.formulas, spatial_errors="ER"), sim.data,
                          weights=sim.W)
    res = estimate(system, "gs2sls")
    H, _ = system.instruments(spatial=True)
    P = H @ np.linalg.solve(H.T @ H, H.T)
    Wd = sim.W.toarray()
    Zh, E = [], []
    for j, dep in enumerate(system.spec.dependents):
        r = res.rho[dep] or 0.0
        Z = system.Z(j) - r * Wd @ system.Z(j)
        y = system.Y[:, j] - r * Wd @ system.Y[:, j]
        Zp = P @ Z
        d = np.linalg.solve(Zp.T @ Z, Zp.T @ y)
        Zh.append(Zp)
        E.append(y - Z @ d)
    E = np.column_stack(E)
    S = E.T @ E / E.shape[0]
    inv = [np.linalg.inv(Z.T @ Z) for Z in Zh]
    ref = np.block([[S[i, j] * inv[i] @ Zh[i].T @ Zh[j] @ inv[j] for j in range(2)]
                    for i in range(2)])
    np.testing.assert_allclose(res.cov.to_numpy(), ref, rtol=1e-7, atol=1e-12)
    assert np.abs(ref[:7, 7:]).max() > 1e-4


# ----------------------------------------------------------------- weak identification

def _sw_dense(Ye: np.ndarray, X: np.ndarray, H: np.ndarray, k: int) -> float:
    """Sanderson & Windmeijer (2016), eq. (18)/(19): partial out X, 2SLS of ỹ_k on the other
    endogenous Ỹ_{-k} with instruments Z̃ = M_X H_excl, residual ε̂; F = [ε̂'P_Z̃ε̂/(k_z − k_e + 1)] /
    [ε̂'M_Z̃ε̂/(n − L)] (M_Z̃ within the M_X space)."""
    n = X.shape[0]
    MX = np.eye(n) - X @ np.linalg.pinv(X)
    Zt = MX @ H
    PZ = Zt @ np.linalg.pinv(Zt)
    Yt = MX @ Ye
    yk, Yo = Yt[:, k], np.delete(Yt, k, axis=1)
    delta = np.linalg.solve(Yo.T @ PZ @ Yo, Yo.T @ PZ @ yk)
    e = yk - Yo @ delta
    kz = np.linalg.matrix_rank(Zt)
    L = np.linalg.matrix_rank(H)
    num = e @ PZ @ e / (kz - Ye.shape[1] + 1)
    den = (e @ e - e @ PZ @ e) / (n - L)
    return float(num / den)


def _design(n: int, seed: int, weak_joint: bool, extra: int = 0):
    """Two endogenous regressors, four excluded instruments. ``weak_joint``: both regressors load
    on (nearly) the same instrument combination, so each partial F is large while each
    conditional F (SW) is small."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal(n)])
    Z = rng.standard_normal((n, 4))
    v = rng.standard_normal((n, 2))
    if weak_joint:
        common = Z @ np.array([1.0, 1.0, 0.5, 0.0])
        e1 = common + v[:, 0]
        e2 = 0.8 * common + 0.03 * Z[:, 3] + v[:, 1]
    else:
        e1 = Z @ np.array([1.0, 0.0, 0.6, 0.0]) + v[:, 0]
        e2 = Z @ np.array([0.0, 1.0, 0.0, 0.7]) + v[:, 1]
    H = np.column_stack([X, Z, rng.standard_normal((n, extra))])
    return np.column_stack([e1, e2]), X, H


@pytest.mark.parametrize("weak_joint,extra", [(False, 0), (True, 0), (False, 1)])
def test_sanderson_windmeijer_f_matches_dense_textbook(weak_joint, extra):
    """k_e = 2 with 4 and 5 excluded instruments (numerator df q − k_e + 1 = 3 and 4)."""
    Ye, X, H = _design(150, seed=4, weak_joint=weak_joint, extra=extra)
    names = ["Intercept", "x", "a", "b", "c", "d", "e"][:H.shape[1]]
    table = first_stage("y", ["e1", "e2", "Intercept", "x"], np.column_stack([Ye, X]), 2,
                        Projector.from_instruments(H, names))
    for k in range(2):
        assert table["sw_F"].iloc[k] == pytest.approx(_sw_dense(Ye, X, H, k), rel=1e-9)
    if weak_joint:
        # the case that separates SW from the partial F
        assert (table["partial_F"] > 20).all() and (table["sw_F"] < 10).all()


def _system_from(Ye, X, H, seed: int):
    """A two-equation system y ~ e1 + e2 + x whose endogenous regressors are the dependents
    of two first-stage equations; used to see the warnings in ``estimate``'s output."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    data = pd.DataFrame({"x": X[:, 1], "a": H[:, 2], "b": H[:, 3], "c": H[:, 4], "d": H[:, 5]})
    data["e1"], data["e2"] = Ye[:, 0], Ye[:, 1]
    data["y"] = 0.5 * data.e1 - 0.5 * data.e2 + data.x + rng.standard_normal(n)
    data["city"] = [f"c{i}" for i in range(n)]
    formulas = ["y ~ e1 + e2 + x", "e1 ~ x + a + b + c + d", "e2 ~ x + a + b + c + d"]
    return build_system(parse_system(formulas), data)


def test_weak_warnings_fire_on_weak_and_not_on_strong_designs():
    strong = estimate(_system_from(*_design(200, 1, weak_joint=False), seed=2), "2sls")
    assert not any("weak" in w for w in strong.warnings), strong.warnings
    weak = estimate(_system_from(*_design(200, 1, weak_joint=True), seed=2), "2sls")
    text = "\n".join(weak.warnings)
    assert "weakly identified given the other endogenous regressors" in text
    assert "Sanderson-Windmeijer F" in text and "Cragg-Donald" in text
    assert "instruments are weak for" not in text     # each partial F is large


def test_weak_identification_warnings_thresholds():
    table = pd.DataFrame({"equation": ["A", "A", "B"], "regressor": ["u", "v", "w"],
                          "partial_F": [4.0, 30.0, 25.0], "sw_F": [3.0, 6.0, 40.0],
                          "cragg_donald": [2.5, 2.5, 25.0]})
    out = weak_identification_warnings(table)
    assert len(out) == 3
    assert "equation A: the instruments are weak for u" in out[0] and "4.00" in out[0]
    assert "equation A: v is weakly identified" in out[1] and "6.00" in out[1]
    assert "equation A" in out[2] and "jointly weakly identified" in out[2] and "2.50" in out[2]
    assert weak_identification_warnings(table, threshold=2.0) == []
    strong = table.assign(partial_F=[11.0, 30.0, 25.0], sw_F=[10.5, 12.0, 40.0],
                          cragg_donald=[10.1, 10.1, 25.0])
    assert weak_identification_warnings(strong) == []
    # "below the threshold" is strict: statistics exactly at 10 are not flagged
    edge = table.assign(partial_F=[10.0, 30.0, 25.0], sw_F=[10.0, 12.0, 40.0],
                        cragg_donald=[10.0, 10.0, 25.0])
    assert weak_identification_warnings(edge) == []
    # a single endogenous regressor: the CD of that equation is its F, no joint warning
    single = table.iloc[[2]].assign(partial_F=9.0, sw_F=9.0, cragg_donald=9.0)
    out = weak_identification_warnings(single)
    assert len(out) == 1 and "instruments are weak for w" in out[0]


# ----------------------------------------------------------------- edge cases of the diagnostics

def _ols_ssr(y, X):
    if X.shape[1] == 0:
        return float(y @ y)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r)


@pytest.mark.parametrize("n_exog", [0, 1])
def test_partial_f_with_no_or_one_included_exogenous(n_exog):
    """X_j empty (no intercept) or the intercept alone: F against direct OLS regressions."""
    rng = np.random.default_rng(8)
    n = 60
    X = np.ones((n, n_exog))
    Zx = rng.standard_normal((n, 3))
    H = np.column_stack([X, Zx])
    e = Zx @ [0.5, 0.2, 0.0] + rng.standard_normal(n) + 0.7
    table = first_stage("y", ["e"] + ["Intercept"] * n_exog, np.column_stack([e, X]), 1,
                        Projector.from_instruments(H, [f"h{i}" for i in range(H.shape[1])]))
    q, dfd = 3, n - H.shape[1]
    ssr_u, ssr_r = _ols_ssr(e, H), _ols_ssr(e, X)
    F = ((ssr_r - ssr_u) / q) / (ssr_u / dfd)
    assert table["partial_F"].iloc[0] == pytest.approx(F, rel=1e-10)
    assert table["sw_F"].iloc[0] == pytest.approx(F, rel=1e-10)


def test_stability_warning_edges():
    from models.frequentist.diagnostics import stability_warning

    W = lattice_weights(5).matrix
    zero = np.zeros((2, 2))
    # admissible on [-1, 1] although det < 0 beyond λ = 1: no warning (only [-1, 1] matters)
    assert stability_warning(zero, np.diag([0.6, 0.0]), W) is None
    # an own lag of exactly 1 (a unit root at λ = 1) is outside the region: warned
    msg = stability_warning(zero, np.diag([1.0, 0.0]), W)
    assert msg is not None and "lambda in [1.00, 1.00]" in msg
    # a negative own lag of -1 fails at the other end of the interval, λ = -1
    msg = stability_warning(zero, np.diag([-1.0, 0.0]), W)
    assert msg is not None and "lambda in [-1.00, -1.00]" in msg
    # an island (no links either way) keeps the unit root of the other cities
    Wi = W.tolil()
    Wi[0, :] = 0.0
    Wi[:, 0] = 0.0
    Wi = sp.diags(1.0 / np.maximum(np.asarray(Wi.sum(axis=1)).ravel(), 1e-300)) @ Wi.tocsr()
    msg = stability_warning(zero, np.diag([1.0, 0.0]), sp.csr_matrix(Wi))
    assert msg is not None and "lambda in [1.00, 1.00]" in msg
    # no weights: the spatial lags cannot be checked
    assert stability_warning(zero, np.diag([1.5, 0.0]), None) is None
    # a W that is not row-standardised is checked on its own spectrum (λ_max ≈ 3.46)
    binary = (W > 0).astype(float)
    msg = stability_warning(zero, np.diag([0.5, 0.0]), binary)
    assert msg is not None and "lambda in [2.00, 3.46]" in msg
    # cross-endogenous and cross-lag coefficients together: det(I − B0 − B1 λ) =
    # 1 − (0.7 + 0.5 λ)², which is ≤ 0 exactly for λ ≥ 0.6 on [−1, 1] (a sign error in B0 would
    # move the interval to λ ≤ −0.6)
    B0 = np.array([[0.0, 0.7], [0.7, 0.0]])
    B1 = np.array([[0.0, 0.5], [0.5, 0.0]])
    msg = stability_warning(B0, B1, W)
    lam = np.linspace(-1.0, 1.0, 401)
    dense = np.array([np.linalg.det(np.eye(2) - B0 - B1 * x) for x in lam])
    bad = lam[dense <= 0]
    assert msg is not None and f"lambda in [{bad.min():.2f}, {bad.max():.2f}]" in msg
    assert "lambda in [0.60, 1.00]" in msg


def test_lag_only_identification_note():
    from models.frequentist.diagnostics import lag_only_identification

    msg = lag_only_identification("ER", ["W(x1)", "W2(x1)"], 1)
    assert msg is not None and msg.startswith("equation ER: identification comes only")
    assert lag_only_identification("ER", ["W(x1)", "W2(x1)"], 0) is None      # no endogenous
    assert lag_only_identification("ER", ["z1", "W(x1)"], 2) is None          # a real instrument
    assert lag_only_identification("ER", [], 1) is None
