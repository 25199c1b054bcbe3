"""Frequentist system estimators against independent references.

References: linearmodels ``IV3SLS`` (non-spatial 2SLS/3SLS), spreg ``GM_Lag`` and ``GM_Combo``
(single-equation spatial 2SLS / GS2SLS), a dense literal transcription of docs/method.md §2a written
here (GS3SLS), and direct OLS regressions (first-stage F). Tolerance 1e-6 relative on
coefficients and standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import least_squares

from data_prep.errors import InputError
from data_prep.synthetic.simulate import SystemTruth, default_truth, lattice_weights, simulate_system
from models.frequentist import estimate
from models.frequentist.diagnostics import first_stage
from models.frequentist.gm import gm_rho, kp_moments
from models.frequentist.iv import Projector, SingularSystemError, three_sls, two_sls
from models.spec.system import build_system, parse_system

RTOL = 1e-6


def close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=0)


# ---------------------------------------------------------------- data
def nonspatial_truth() -> SystemTruth:
    coefficients = {
        "y1": {"y2": 0.5, "Intercept": 1.0, "x1": 1.0, "z1": 0.8},
        "y2": {"y1": -0.3, "Intercept": 0.5, "x1": 0.4, "z2": 1.0, "x2": 0.6},
    }
    return SystemTruth(coefficients, np.array([[1.0, 0.4], [0.4, 0.7]]))


@pytest.fixture(scope="module")
def nonspatial():
    sim = simulate_system(lattice_weights(9), nonspatial_truth(), seed=3)
    data = sim.data.copy()
    noise = np.random.default_rng(5).standard_normal(len(data))
    data["q1"] = data["z1"] + noise  # an extra excluded instrument
    return sim, data


# ---------------------------------------------------------------- non-spatial vs linearmodels
def _linearmodels_system(data: pd.DataFrame, extra: tuple[str, ...]):
    """IV3SLS with each equation's instruments = all system exogenous variables it excludes
    (plus the user instruments), so both sides project on the same H = [Xu, Q]."""
    from linearmodels.system import IV3SLS

    const = pd.Series(1.0, index=data.index, name="Intercept")
    union = ["x1", "z1", "x2", "z2"]
    eqs = {}
    for dep, endog, exog in (("y1", ["y2"], ["x1", "z1"]), ("y2", ["y1"], ["x1", "z2", "x2"])):
        instr = [v for v in union if v not in exog] + list(extra)
        eqs[dep] = {
            "dependent": data[dep],
            "exog": pd.concat([const, data[exog]], axis=1),
            "endog": data[endog],
            "instruments": data[instr],
        }
    return IV3SLS(eqs)


@pytest.mark.parametrize("method,lm_method", [("3sls", "gls"), ("2sls", "ols")])
def test_nonspatial_matches_linearmodels(nonspatial, method, lm_method):
    sim, data = nonspatial
    spec = parse_system(["y1 ~ y2 + x1 + z1", "y2 ~ y1 + x1 + z2 + x2"], instruments=("q1",))
    ours = estimate(build_system(spec, data), method)
    # cov_type="unadjusted": classic (Σ̂⁻¹⊗I)-weighted covariance (linearmodels' default is
    # "robust"); debiased=False: Σ̂ = Ê'Ê/n, not /(n − k).
    ref = _linearmodels_system(data, ("q1",)).fit(method=lm_method, cov_type="unadjusted",
                                                   debiased=False)
    for eq in ("y1", "y2"):
        for term in ours.params.loc[eq].index:
            key = f"{eq}_{term}"
            close(ours.params[(eq, term)], ref.params[key])
            close(ours.std_errors[(eq, term)], ref.std_errors[key])
    close(ours.sigma.to_numpy(), ref.sigma.to_numpy())
    assert ours.rho == {"y1": None, "y2": None}


@pytest.mark.parametrize("method,lm_method", [("3sls", "gls"), ("2sls", "ols")])
def test_clustered_covariance_matches_linearmodels(nonspatial, method, lm_method):
    sim, data = nonspatial
    groups = np.arange(len(data)) % 17  # 17 clusters of 4-5 rows
    spec = parse_system(["y1 ~ y2 + x1 + z1", "y2 ~ y1 + x1 + z2 + x2"], instruments=("q1",))
    system = build_system(spec, data)
    plain = estimate(system, method)
    ours = estimate(system, method, cov_type="clustered", clusters=groups.astype(str))
    ref = _linearmodels_system(data, ("q1",)).fit(method=lm_method, cov_type="clustered",
                                                   clusters=groups, debiased=False,
                                                   group_debias=True)
    n, G = len(data), 17
    # linearmodels' group_debias factor is G/(G - 1) · (n - 1)/n; ours is G/(G - 1)
    scale = np.sqrt(n / (n - 1.0))
    for eq in ("y1", "y2"):
        for term in ours.params.loc[eq].index:
            key = f"{eq}_{term}"
            close(ours.params[(eq, term)], plain.params[(eq, term)])
            close(ours.std_errors[(eq, term)], ref.std_errors[key] * scale)
    assert ours.cov_type == "clustered" and ours.n_clusters == G
    assert not np.allclose(ours.std_errors, plain.std_errors)
    assert list(ours.to_frame().columns) == list(plain.to_frame().columns)
    assert "clustered by 17 clusters" in ours.summary()


def test_clustered_covariance_needs_usable_clusters(nonspatial):
    _, data = nonspatial
    system = build_system(["y1 ~ y2 + x1 + z1", "y2 ~ y1 + x1 + z2 + x2"], data)
    for clusters, words in ((np.zeros(len(data)), "at least two clusters"),
                            (np.arange(3), "3 cluster ids for 81 observations"),
                            (np.r_[np.nan, np.arange(len(data) - 1.0)], "have no cluster id")):
        with pytest.raises(InputError, match=words):
            estimate(system, "3sls", cov_type="clustered", clusters=clusters)
    with pytest.raises(InputError, match="unknown cov_type"):
        estimate(system, "3sls", cov_type="robust")
    with pytest.raises(InputError, match="clusters go with"):
        estimate(system, "3sls", cov_type="clustered")


# ---------------------------------------------------------------- spreg single-equation
def _pysal_w(W: sp.csr_matrix):
    from libpysal.weights import WSP

    return WSP(sp.csr_matrix(W)).to_W(silence_warnings=True)


@pytest.fixture(scope="module")
def lag_data():
    truth = SystemTruth({"y": {"W(y)": 0.4, "Intercept": 1.0, "x1": 1.0, "x2": -0.7}},
                        np.array([[1.0]]), rho={"y": 0.5})
    return simulate_system(lattice_weights(10), truth, seed=11)


def test_spatial_2sls_matches_spreg_gm_lag(lag_data):
    from spreg import GM_Lag

    sim = lag_data
    system = build_system(parse_system(["y ~ W(y) + x1 + x2"]), sim.data, weights=sim.W)
    ours = estimate(system, "2sls")
    y = sim.data[["y"]].to_numpy()
    X = sim.data[["x1", "x2"]].to_numpy()
    w = _pysal_w(sim.W)
    ref = GM_Lag(y, X, w=w, w_lags=2)
    # spreg's H = [1, X, WX, W²X] — the same instrument space as ours
    H, names = system.instruments(spatial=True)
    assert set(names) == {"Intercept", "x1", "x2", "W(x1)", "W(x2)", "W2(x1)", "W2(x2)"}
    Wd = sim.W.toarray()
    spreg_h = np.column_stack([np.ones(len(X)), X, Wd @ X, Wd @ Wd @ X])
    close(np.asarray(ref.h), spreg_h, rtol=1e-12)
    # spreg order: constant, x1, x2, W_y
    order = [("y", "Intercept"), ("y", "x1"), ("y", "x2"), ("y", "W(y)")]
    close(ours.params[order], ref.betas.ravel())
    close(ours.std_errors[order], np.sqrt(np.diag(ref.vm)))
    close(ours.rsquared["y"], ref.pr2, rtol=1e-9)


def test_gs2sls_matches_spreg_gm_combo(lag_data):
    """spreg GM_Combo = 2SLS → KP-1999 GM λ (L-BFGS-B) → 2SLS on the λ-filtered y, X, [yend, Wy]
    with the untransformed H, vm = (ε̂'ε̂/n)(Z*'PZ*)⁻¹ — exactly docs/method.md §2a steps 1–3 for one
    equation. λ: ours is the exact minimiser of the same criterion, spreg's an L-BFGS-B iterate
    with a numerical gradient, so λ agrees to ~1e-8 and the coefficients to far below 1e-6."""
    from spreg import GM_Combo

    sim = lag_data
    system = build_system(parse_system(["y ~ W(y) + x1 + x2"], spatial_errors="all"),
                          sim.data, weights=sim.W)
    ours = estimate(system, "gs2sls")
    y = sim.data[["y"]].to_numpy()
    X = sim.data[["x1", "x2"]].to_numpy()
    ref = GM_Combo(y, X, w=_pysal_w(sim.W), w_lags=2)
    assert abs(ours.rho["y"] - ref.betas[-1, 0]) < 1e-5
    order = [("y", "Intercept"), ("y", "x1"), ("y", "x2"), ("y", "W(y)")]
    close(ours.params[order], ref.betas[:-1].ravel())
    close(ours.std_errors[order], np.sqrt(np.diag(ref.vm)))  # spreg's vm excludes λ
    close(ours.sigma.iloc[0, 0], ref.sig2)
    close(ours.rsquared["y"], ref.pr2, rtol=1e-6)  # squared corr(y, Zδ̂), spreg's pr2


def test_gm_moments_match_spreg_and_minimiser_is_global():
    from spreg.error_sp import _momentsGM_Error
    from spreg.utils import optim_moments

    W = lattice_weights(12).matrix
    rng = np.random.default_rng(4)
    for rho in (-0.5, 0.0, 0.3, 0.7):
        u = sp.linalg.spsolve(sp.csc_matrix(sp.identity(144) - rho * W), rng.standard_normal(144))
        G, g = kp_moments(u, W)
        Gs, gs = _momentsGM_Error(W, u[:, None])
        close(G, Gs, rtol=1e-12)
        close(g, gs.ravel(), rtol=1e-12)
        est = gm_rho(G, g)
        # spreg stops L-BFGS-B (numerical gradient) within ~1e-6 of the minimiser; ours is exact
        lam, s2 = optim_moments([Gs, gs], all_par=True)
        assert abs(est.rho - lam) < 1e-5
        assert est.objective <= float(((g - G @ [lam, lam**2, s2]) ** 2).sum()) + 1e-15
        # brute-force grid with profiled σ² ≥ 0: nothing beats the exact minimiser
        grid = np.linspace(-0.99, 0.99, 20001)
        free = g[:, None] - np.outer(G[:, 0], grid) - np.outer(G[:, 1], grid**2)
        s2 = np.maximum(0, (G[:, 2] @ free) / (G[:, 2] @ G[:, 2]))
        r = free - np.outer(G[:, 2], s2)
        assert est.objective <= (r**2).sum(axis=0).min() + 1e-15


# ---------------------------------------------------------------- dense GS3SLS transcription
def _dense_gm(u: np.ndarray, Wd: np.ndarray) -> float:
    """KP (1999) moments written with dense matrices, solved by nonlinear least squares."""
    n = u.size
    ub, uu = Wd @ u, Wd @ Wd @ u
    g = np.array([u @ u, ub @ ub, u @ ub]) / n
    G = np.array([[2 * u @ ub, -ub @ ub, n],
                  [2 * ub @ uu, -uu @ uu, np.trace(Wd.T @ Wd)],
                  [u @ uu + ub @ ub, -ub @ uu, 0]]) / n
    fit = least_squares(lambda t: g - G @ np.array([t[0], t[0] ** 2, t[1]]), x0=[0.0, 1.0],
                        bounds=([-0.99, 0.0], [0.99, np.inf]), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    return float(fit.x[0])


def _dense_gs3sls(data: pd.DataFrame, Wd: np.ndarray, eqs, spatial_error, method="gs3sls",
                  clusters=None):
    """docs/method.md §2a literally: P = H(H'H)⁻¹H', Ẑ* = blockdiag(P Z*_j), Σ̂⁻¹ ⊗ I dense.
    With ``clusters`` the standard errors are the cluster sandwich, one cluster at a time."""
    n = len(data)
    one = np.ones(n)
    exog_union = ["x1", "x2", "z1", "z2"]
    Xu = data[exog_union].to_numpy()
    H = np.column_stack([one, Xu, Wd @ Xu, Wd @ Wd @ Xu])
    P = H @ np.linalg.inv(H.T @ H) @ H.T
    ys, Zs, rhos = [], [], []
    for dep, cols in eqs:
        Y = {c: data[c].to_numpy() for c in data.columns if c != "city"}
        cols_arr = []
        for c in cols:
            if c == "Intercept":
                cols_arr.append(one)
            elif c.startswith("W("):
                cols_arr.append(Wd @ Y[c[2:-1]])
            else:
                cols_arr.append(Y[c])
        ys.append(Y[dep])
        Zs.append(np.column_stack(cols_arr))
    # step 1: 2SLS
    deltas = [np.linalg.solve(Z.T @ P @ Z, Z.T @ P @ y) for y, Z in zip(ys, Zs)]
    # step 2: GM ρ and Cochrane–Orcutt transform (H untouched)
    for j, (y, Z) in enumerate(zip(ys, Zs)):
        r = _dense_gm(y - Z @ deltas[j], Wd) if spatial_error[j] else 0.0
        rhos.append(r)
        ys[j], Zs[j] = y - r * Wd @ y, Z - r * Wd @ Z
    # step 3: GS2SLS, Σ̂ = Ê'Ê/n
    deltas = [np.linalg.solve(Z.T @ P @ Z, Z.T @ P @ y) for y, Z in zip(ys, Zs)]
    E = np.column_stack([y - Z @ d for y, Z, d in zip(ys, Zs, deltas)])
    Sigma = E.T @ E / n
    # step 4: GS3SLS
    Zhat = np.zeros((len(eqs) * n, sum(Z.shape[1] for Z in Zs)))
    c0 = 0
    for j, Z in enumerate(Zs):
        Zhat[j * n:(j + 1) * n, c0:c0 + Z.shape[1]] = P @ Z
        c0 += Z.shape[1]
    Om = np.kron(np.linalg.inv(Sigma), np.eye(n))
    V = np.linalg.inv(Zhat.T @ Om @ Zhat)
    delta = V @ Zhat.T @ Om @ np.concatenate(ys)
    if clusters is not None:
        Zstar = np.zeros_like(Zhat)
        c0 = 0
        for j, Z in enumerate(Zs):
            Zstar[j * n:(j + 1) * n, c0:c0 + Z.shape[1]] = Z
            c0 += Z.shape[1]
        u = Om @ (np.concatenate(ys) - Zstar @ delta)  # (Σ̂⁻¹ ⊗ I) ε̂*
        meat = np.zeros_like(V)
        labels = np.unique(clusters)
        for c in labels:
            rows = np.concatenate([j * n + np.flatnonzero(clusters == c) for j in range(len(Zs))])
            score = Zhat[rows].T @ u[rows]
            meat += np.outer(score, score)
        V = V @ meat @ V * len(labels) / (len(labels) - 1)
    return delta, np.sqrt(np.diag(V)), rhos, Sigma, np.concatenate(deltas)


@pytest.mark.parametrize("errors", ["none", "ER"])
def test_gs3sls_matches_dense_transcription(errors):
    truth = default_truth()
    if errors == "ER":
        truth.rho["ER"] = 0.5
    sim = simulate_system(lattice_weights(8), truth, seed=7)  # n = 64
    spec = parse_system(sim.formulas, spatial_errors=errors)
    system = build_system(spec, sim.data, weights=sim.W)
    ours = estimate(system, "gs3sls")
    eqs = [(eq.dependent, eq.terms) for eq in spec.equations]
    delta, se, rhos, Sigma, gs2 = _dense_gs3sls(sim.data, sim.W.toarray(), eqs,
                                                [eq.spatial_error for eq in spec.equations])
    close(ours.params.to_numpy(), delta)
    close(ours.std_errors.to_numpy(), se)
    close(ours.sigma.to_numpy(), Sigma)
    if errors == "ER":
        assert abs(ours.rho["ER"] - rhos[0]) < 1e-8
        assert ours.rho["PSS"] is None
    close(estimate(system, "gs2sls").params.to_numpy(), gs2)
    # fitted values use the untransformed equation
    Z0 = system.Z(0)
    fitted = Z0 @ ours.params["ER"].to_numpy()
    close(ours.resid["ER"].to_numpy(), sim.data["ER"].to_numpy() - fitted, rtol=1e-9)


def test_clustered_gs3sls_with_spatial_errors_matches_dense_sandwich():
    truth = default_truth()
    truth.rho["ER"] = 0.5
    sim = simulate_system(lattice_weights(8), truth, seed=7)  # n = 64
    spec = parse_system(sim.formulas, spatial_errors="ER")
    system = build_system(spec, sim.data, weights=sim.W)
    clusters = np.arange(64) // 4  # 16 blocks of 4 neighbouring rows
    ours = estimate(system, "gs3sls", cov_type="clustered", clusters=clusters)
    eqs = [(eq.dependent, eq.terms) for eq in spec.equations]
    delta, se, *_ = _dense_gs3sls(sim.data, sim.W.toarray(), eqs,
                                  [eq.spatial_error for eq in spec.equations],
                                  clusters=clusters)
    close(ours.params.to_numpy(), delta)
    close(ours.std_errors.to_numpy(), se)
    assert ours.n_clusters == 16


# ---------------------------------------------------------------- errors in plain words
def test_collinear_instrument_is_dropped_with_a_warning(nonspatial):
    sim, data = nonspatial
    data = data.assign(dup=2.0 * data["x1"] - data["z2"])
    formulas = ["y1 ~ y2 + x1 + z1", "y2 ~ y1 + x1 + z2 + x2"]
    with pytest.warns(UserWarning, match="adds nothing"):
        res = estimate(build_system(parse_system(formulas, instruments=("dup",)), data), "3sls")
    ref = estimate(build_system(parse_system(formulas), data), "3sls")
    close(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-12)


def test_unidentified_system_is_a_clear_error(nonspatial):
    sim, data = nonspatial
    with pytest.raises(InputError, match="y1"):
        build_system(parse_system(["y1 ~ y2 + x1 + z1 + z2 + x2", "y2 ~ y1 + x1 + z2"]), data)


def test_unidentified_equation_and_bad_sigma_are_clear_errors():
    rng = np.random.default_rng(0)
    n = 50
    H = np.column_stack([np.ones(n), rng.standard_normal((n, 3))])
    proj = Projector.from_instruments(H, ["Intercept", "a", "b", "c"])
    e1 = rng.standard_normal(n)
    v = rng.standard_normal(n)
    v -= proj.project(v)  # orthogonal to H: P e2 = P e1
    Z = np.column_stack([e1, e1 + v, np.ones(n)])
    with pytest.raises(SingularSystemError, match="Z'PZ is singular"):
        two_sls(rng.standard_normal(n), Z, proj, ["e1", "e2", "Intercept"], "y")
    with pytest.raises(SingularSystemError, match="not positive definite"):
        three_sls([np.eye(4)[:, :2]] * 2, [np.ones(4)] * 2, np.ones((2, 2)), ["a", "b"],
                  [("p", "q")] * 2)
    with pytest.raises(SingularSystemError, match="singular"):
        Projector.from_instruments(np.column_stack([H, H[:, 1] - H[:, 2]]), list("Iabcd"))


def test_rho_at_bound_warns_in_plain_words():
    from models.frequentist.gm import estimate_rho

    W = lattice_weights(12).matrix
    u = sp.linalg.spsolve(sp.csc_matrix(sp.identity(144) - 0.999 * W),
                          np.random.default_rng(0).standard_normal(144))
    with pytest.warns(UserWarning, match="at the bound"):
        est = estimate_rho(u, W, "y")
    assert est.at_bound and est.rho == pytest.approx(0.99)


def test_unknown_method(nonspatial):
    sim, data = nonspatial
    spec = parse_system(["y1 ~ y2 + x1 + z1", "y2 ~ y1 + x1 + z2 + x2"])
    with pytest.raises(InputError, match="unknown method"):
        estimate(build_system(spec, data), "fiml")


# ---------------------------------------------------------------- first-stage diagnostics
def _ols_ssr(y, X):
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return r @ r


def test_first_stage_f_matches_direct_ols():
    rng = np.random.default_rng(2)
    n = 80
    X = np.column_stack([np.ones(n), rng.standard_normal(n)])
    excl = rng.standard_normal((n, 3))
    H = np.column_stack([X, excl])
    e1 = excl @ [0.8, 0.0, 0.3] + rng.standard_normal(n)
    e2 = excl @ [0.1, 0.5, 0.0] + 0.5 * e1 + rng.standard_normal(n)
    Z = np.column_stack([e1, e2, X])
    table = first_stage("y", ["e1", "e2", "Intercept", "x"], Z, 2, Projector.from_instruments(
        H, ["Intercept", "x", "a", "b", "c"]))
    q, dfd = 3, n - 5
    for k, e in enumerate((e1, e2)):
        ssr_u, ssr_r = _ols_ssr(e, H), _ols_ssr(e, X)
        F = ((ssr_r - ssr_u) / q) / (ssr_u / dfd)
        close(table["partial_F"].iloc[k], F, rtol=1e-10)
        close(table["partial_r2"].iloc[k], 1 - ssr_u / ssr_r, rtol=1e-10)
    # Cragg–Donald from its textbook definition with dense projections
    PH = H @ np.linalg.pinv(H)
    PX = X @ np.linalg.pinv(X)
    Y = np.column_stack([e1, e2])
    Svv = Y.T @ (np.eye(n) - PH) @ Y / dfd
    L = np.linalg.cholesky(np.linalg.inv(Svv))
    cd = np.linalg.eigvalsh(L.T @ Y.T @ (PH - PX) @ Y @ L).min() / q
    close(table["cragg_donald"].iloc[0], cd, rtol=1e-10)
    # single endogenous regressor: CD = SW conditional F = partial F
    one = first_stage("y", ["e1", "Intercept", "x"], np.column_stack([e1, X]), 1,
                      Projector.from_instruments(H, ["Intercept", "x", "a", "b", "c"]))
    close(one["cragg_donald"].iloc[0], one["partial_F"].iloc[0], rtol=1e-10)
    close(one["sw_F"].iloc[0], one["partial_F"].iloc[0], rtol=1e-10)


def test_weak_and_lag_only_identification_are_reported():
    truth = default_truth()
    for eq, z in (("ER", "z1"), ("PSS", "z2")):
        truth.coefficients[eq][z] = 0.0  # z1/z2 irrelevant: identification through W-lags only
    sim = simulate_system(lattice_weights(8), truth, seed=1)
    formulas = ["ER ~ W(ER) + W(PSS) + PSS + x1 + x2", "PSS ~ W(PSS) + W(ER) + ER + x1 + x2"]
    res = estimate(build_system(parse_system(formulas), sim.data, weights=sim.W), "gs3sls")
    text = " ".join(res.warnings)
    assert "spatial lag" in text and "only through the spatial structure" in text
    assert "weak" in text  # SW conditional F falls below 10 on this small lattice
    assert set(res.first_stage["equation"]) == {"ER", "PSS"}
    assert len(res.first_stage) == 6


def test_results_tables(nonspatial):
    sim, data = nonspatial
    spec = parse_system(["y1 ~ y2 + x1 + z1", "y2 ~ y1 + x1 + z2 + x2"])
    res = estimate(build_system(spec, data), "3sls")
    frame = res.to_frame()
    assert list(frame.columns) == ["equation", "term", "estimate", "std_error", "statistic",
                                   "p_value"]
    assert list(frame["term"][frame["equation"] == "y1"]) == ["y2", "Intercept", "x1", "z1"]
    close(frame["statistic"], frame["estimate"] / frame["std_error"], rtol=1e-12)
    text = res.summary()
    assert "3SLS" in text and "y2" in text and "***" in text
    assert res.nobs == len(data) and res.resid.shape == (len(data), 2)


def test_gs_without_spatial_errors_is_spatial_3sls_and_ignored_errors_are_reported():
    sim = simulate_system(lattice_weights(8), default_truth(), seed=2)
    plain = build_system(parse_system(sim.formulas), sim.data, weights=sim.W)
    a, b = estimate(plain, "gs3sls"), estimate(plain, "3sls")
    close(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-12)
    close(a.std_errors.to_numpy(), b.std_errors.to_numpy(), rtol=1e-12)
    with_errors = build_system(parse_system(sim.formulas, spatial_errors="all"), sim.data,
                               weights=sim.W)
    res = estimate(with_errors, "3sls")
    assert any("not modelled" in w for w in res.warnings)
    close(res.params.to_numpy(), b.params.to_numpy(), rtol=1e-12)


def test_structural_matrices_and_stability_warning():
    from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system
    from models.frequentist import estimate
    from models.frequentist.diagnostics import stability_warning
    from models.spec.system import build_system, parse_system

    weights = lattice_weights(12)
    sim = simulate_system(weights, seed=5)
    spec = build_system(parse_system(sim.formulas), sim.data, weights).spec
    truth = default_truth().coefficients
    B0, B1 = spec.structural_matrices(lambda e, t: truth[e][t])
    np.testing.assert_allclose(B0, [[0.0, 0.40], [-0.30, 0.0]])
    np.testing.assert_allclose(B1, [[0.30, 0.20], [-0.15, 0.25]])
    # the true system is admissible; an own lag of 1.8 is not: det = -0.33 at lambda = 1
    assert stability_warning(B0, B1, weights.matrix) is None
    message = stability_warning(B0, B1 + np.diag([1.5, 0.0]), weights.matrix)
    assert message is not None and "admissible region" in message
    res = estimate(build_system(parse_system(sim.formulas), sim.data, weights), "gs3sls")
    assert not any("admissible region" in w for w in res.warnings)
