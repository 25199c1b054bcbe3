"""The Bayesian system's log-density equals a dense, literal transcription of docs/method.md §2b.

Reference: stacked multivariate normal with the dense 𝒜 = I − (B0 ⊗ I + B1 ⊗ W) and
``np.linalg.slogdet`` (+ log|det(I − ρW)| per spatial-error equation), evaluated at the model's own
original-scale ``coef``, ``Sigma`` and ``rho`` deterministics, so the standardisation round trip
is checked too.
"""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.synthetic.simulate import SystemTruth, lattice_weights, simulate_system
from models.bayes.jacobian import log_jacobian_numpy, spectral_basis
from models.bayes.system import build_system_model
from models.spec.system import build_system, parse_system


def _three_equation_truth() -> SystemTruth:
    coefficients = {
        "y1": {"W(y1)": 0.2, "y2": 0.3, "W(y3)": 0.1, "Intercept": 1.0, "x1": 1.0, "z1": 0.7},
        "y2": {"W(y2)": 0.3, "y3": -0.2, "Intercept": -0.5, "x1": 0.5, "W(x1)": 0.4, "z2": 1.0},
        "y3": {"W(y3)": -0.2, "W(y1)": 0.2, "y1": 0.25, "Intercept": 0.2, "x2": -0.7, "z3": 0.9},
    }
    Sigma = np.array([[1.0, 0.3, 0.1], [0.3, 0.8, -0.2], [0.1, -0.2, 0.6]])
    return SystemTruth(coefficients, Sigma)


def _system(G: int, errors: str, seed: int = 3, side: int = 6):
    w = lattice_weights(side)
    truth = None if G == 2 else _three_equation_truth()
    sim = simulate_system(w, truth, seed=seed)
    data = sim.data.copy()
    data[sim.truth.dependents[0]] += 3.0  # a non-zero mean so the centring is exercised
    spec = parse_system(sim.formulas, spatial_errors=errors)
    return build_system(spec, data, weights=sim.W, check=False)


def _dense_residuals(system, coef: np.ndarray, rho: np.ndarray | None,
                     terms) -> tuple[np.ndarray, float]:
    """ε (n × G) of a dense 𝒜 and the log|det| of 𝒜 and of every I − ρ_g W."""
    W = system.W.toarray()
    n, G = system.Y.shape
    deps = list(system.spec.dependents)
    B0, B1 = np.zeros((G, G)), np.zeros((G, G))
    eps = []
    for g, eq in enumerate(system.spec.equations):
        c = dict(zip(terms, coef[g]))
        for v in eq.spatial_lags:
            B1[g, deps.index(v)] = c[f"W({v})"]
        for v in eq.endogenous:
            B0[g, deps.index(v)] = c[v]
    A = np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W)
    y = system.Y.T.reshape(-1)
    resid = (A @ y).reshape(G, n).T
    logdet = np.linalg.slogdet(A)[1]
    for g, eq in enumerate(system.spec.equations):
        c = dict(zip(terms, coef[g]))
        e = resid[:, g] - system.X[g] @ np.array([c[x] for x in eq.exogenous])
        if eq.spatial_error:
            R = np.eye(n) - rho[g] * W
            e = R @ e
            logdet += np.linalg.slogdet(R)[1]
        eps.append(e)
    return np.column_stack(eps), logdet


def _dense_logp(system, coef: np.ndarray, Sigma: np.ndarray, rho: np.ndarray | None,
                terms) -> float:
    E, logdet = _dense_residuals(system, coef, rho, terms)
    n, G = E.shape
    Si = np.linalg.inv(Sigma)
    return float(logdet - 0.5 * n * np.linalg.slogdet(Sigma)[1]
                 - 0.5 * np.einsum("rg,gh,rh->", E, Si, E) - 0.5 * n * G * np.log(2 * np.pi))


def _evaluator(model):
    names = ["loglik", "coef", "Sigma"] + [nm for nm in ("rho", "nu") if nm in model.named_vars]
    outs = model.replace_rvs_by_values([model[nm] for nm in names])
    return model.compile_fn(outs, inputs=model.value_vars, point_fn=True), names


@pytest.mark.parametrize("G", [2, 3])
@pytest.mark.parametrize("errors", ["none", "all", "first"])
def test_loglik_matches_dense(G, errors):
    first = "y1" if G == 3 else "ER"
    system = _system(G, first if errors == "first" else errors)
    lam = np.linalg.eigvals(system.W.toarray())
    model = build_system_model(system, lam)
    f, names = _evaluator(model)
    rng = np.random.default_rng(G)
    start = model.initial_point()
    checked = 0
    for _ in range(6):
        point = {k: v + rng.normal(0.0, 0.15 if k == "structural_std" else 0.4, np.shape(v))
                 for k, v in start.items()}
        out = dict(zip(names, f(point)))
        assert np.isnan(out["coef"]).sum() == sum(
            len(model.coords["term"]) - len(eq.terms) for eq in system.spec.equations)
        ref = _dense_logp(system, out["coef"], out["Sigma"], out.get("rho"), model.coords["term"])
        assert np.isfinite(out["loglik"])
        assert out["loglik"] == pytest.approx(ref, abs=1e-8, rel=1e-11)
        checked += 1
    assert checked == 6


@pytest.mark.parametrize("G", [1, 2, 3])
@pytest.mark.parametrize("errors", ["none", "all"])
def test_student_t_loglik_matches_dense(G, errors):
    """Student-t errors: Σ_r log t_ν(ε_r; 0, Σ) by scipy on the dense residuals + dense slogdet."""
    from scipy.stats import multivariate_t

    if G == 1:
        w = lattice_weights(6)
        sim = simulate_system(w, seed=4)
        system = build_system(parse_system([sim.formulas[0].replace(" + PSS", "")],
                                           spatial_errors=errors), sim.data, weights=sim.W,
                              check=False)
    else:
        system = _system(G, errors)
    model = build_system_model(system, np.linalg.eigvals(system.W.toarray()), errors="student-t")
    assert "nu" in model.free_RVs[-1].name
    f, names = _evaluator(model)
    rng = np.random.default_rng(20 + G)
    start = model.initial_point()
    for _ in range(4):
        point = {k: v + rng.normal(0.0, 0.1 if k == "structural_std" else 0.4, np.shape(v))
                 for k, v in start.items()}
        out = dict(zip(names, f(point)))
        E, logdet = _dense_residuals(system, out["coef"], out.get("rho"), model.coords["term"])
        Sigma = np.atleast_2d(out["Sigma"])
        ref = logdet + multivariate_t(np.zeros(E.shape[1]), Sigma, df=float(out["nu"])).logpdf(E).sum()
        assert np.isfinite(out["loglik"])
        assert out["loglik"] == pytest.approx(ref, abs=1e-8, rel=1e-11)


def test_student_t_panel_blocks_share_a_scale():
    """t_blocks = b: each city's b·G errors are one (bG)-dimensional t (block-major rows)."""
    from scipy.stats import multivariate_t

    system = _system(2, "none")
    model = build_system_model(system, np.linalg.eigvals(system.W.toarray()), errors="student-t",
                               t_blocks=2)
    f, names = _evaluator(model)
    point = {k: v + 0.2 for k, v in model.initial_point().items()}
    out = dict(zip(names, f(point)))
    E, logdet = _dense_residuals(system, out["coef"], None, model.coords["term"])
    half = E.shape[0] // 2
    joint = np.hstack([E[:half], E[half:]])      # city r: (ε_r in block 1, ε_r in block 2)
    S = np.kron(np.eye(2), out["Sigma"])
    ref = logdet + multivariate_t(np.zeros(4), S, df=float(out["nu"])).logpdf(joint).sum()
    assert out["loglik"] == pytest.approx(ref, abs=1e-8, rel=1e-11)


def test_unknown_error_law_and_nu_prior_only_with_student_t():
    from data_prep.errors import InputError

    system = _system(2, "none")
    lam = np.linalg.eigvals(system.W.toarray())
    with pytest.raises(InputError, match="errors must be one of"):
        build_system_model(system, lam, errors="cauchy")
    with pytest.raises(InputError, match="nu_shape"):
        build_system_model(system, lam, {"nu_shape": 3.0})
    model = build_system_model(system, lam, {"nu_shape": 3.0, "nu_rate": 0.5},
                               errors="student-t")
    import pymc as pm
    from scipy.stats import gamma

    assert float(pm.logp(model["nu"], 4.0).eval()) == pytest.approx(
        gamma(3.0, scale=2.0).logpdf(4.0), rel=1e-6)


@pytest.mark.parametrize("case", ["no_intercept", "binary_W"])
def test_loglik_matches_dense_without_centring(case):
    """Scaling-only standardisation (no intercept, or W rows not summing to one)."""
    import scipy.sparse as sp

    w = lattice_weights(6)
    sim = simulate_system(w, seed=5)
    data = sim.data.copy()
    data["ER"] += 2.0
    formulas = list(sim.formulas)
    W = sim.W
    if case == "no_intercept":
        formulas[0] += " - 1"
    else:
        W = sp.csr_matrix((W > 0).astype(float))        # binary contiguity, rows sum to 2..4
    system = build_system(parse_system(formulas, spatial_errors="ER"), data, weights=W,
                          check=False)
    lam = np.linalg.eigvals(W.toarray())
    model = build_system_model(system, lam, {"structural_sigma": 0.1})
    assert not model.layout.centred
    f, names = _evaluator(model)
    rng = np.random.default_rng(0)
    start = model.initial_point()
    for _ in range(4):
        point = {k: v + rng.normal(0.0, 0.05 if k == "structural_std" else 0.4, np.shape(v))
                 for k, v in start.items()}
        out = dict(zip(names, f(point)))
        ref = _dense_logp(system, out["coef"], out["Sigma"], out.get("rho"), model.coords["term"])
        assert np.isfinite(out["loglik"])
        assert out["loglik"] == pytest.approx(ref, abs=1e-8, rel=1e-11)


def test_compile_logp_is_potential_plus_priors():
    system = _system(2, "all")
    model = build_system_model(system, np.linalg.eigvals(system.W.toarray()))
    point = {k: v + 0.1 for k, v in model.initial_point().items()}
    total = model.compile_logp()(point)
    priors = model.compile_logp(vars=model.free_RVs, jacobian=True)(point)
    f, names = _evaluator(model)
    loglik = dict(zip(names, f(point)))["loglik"]
    assert total == pytest.approx(priors + loglik, abs=1e-9)


def test_outside_admissible_region_is_minus_infinity():
    system = _system(2, "none")
    lam = np.linalg.eigvals(system.W.toarray()).real
    model = build_system_model(system, lam)
    f, names = _evaluator(model)
    point = model.initial_point()
    # own lags of 1.2 in both equations: the factor at λ = 1 is (1 − 1.2)² − (…) < 0 somewhere
    labels = list(model.coords["structural"])
    s = np.zeros(len(labels))
    s[labels.index("ER: W(ER)")] = 1.2
    s[labels.index("PSS: W(PSS)")] = 0.0
    point["structural_std"] = s
    out = dict(zip(names, f(point)))
    B1 = np.zeros((2, 2))
    B1[0, 0] = out["coef"][0, list(model.coords["term"]).index("W(ER)")]
    assert log_jacobian_numpy(np.zeros((2, 2)), B1, lam) == -np.inf
    assert out["loglik"] == -np.inf
    assert model.compile_logp()(point) == -np.inf
    # just inside: finite
    s[labels.index("ER: W(ER)")] = 0.9
    point["structural_std"] = s
    assert np.isfinite(dict(zip(names, f(point)))["loglik"])


@pytest.mark.parametrize("G", [1, 2, 3, 4])
def test_jacobian_polynomial_matches_slogdet(G):
    import pytensor
    import pytensor.tensor as pt

    from models.bayes.jacobian import log_jacobian

    W = lattice_weights(5, "queen").matrix.toarray()
    n = W.shape[0]
    lam = np.linalg.eigvals(W)
    rng = np.random.default_rng(10 + G)
    B0 = rng.normal(0, 0.2, (G, G)) * (1 - np.eye(G))
    B1 = rng.normal(0, 0.25, (G, G))
    rho = np.array([0.4, -0.6])
    dense = np.linalg.slogdet(np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W))
    assert dense[0] > 0
    ref = dense[1] + sum(np.linalg.slogdet(np.eye(n) - r * W)[1] for r in rho)
    assert log_jacobian_numpy(B0, B1, lam, rho=rho) == pytest.approx(ref, abs=1e-9)
    b0, b1, r = pt.dmatrix(), pt.dmatrix(), pt.dvector()
    if G >= 4:  # no closed form of the admissible region in the model beyond G = 3
        from data_prep.errors import InputError

        with pytest.raises(InputError, match="4 equations"):
            log_jacobian(b0, b1, spectral_basis(lam, G), G, rho=r)
        return
    expr, _ = log_jacobian(b0, b1, spectral_basis(lam, G), G, rho=r)
    fn = pytensor.function([b0, b1, r], expr, on_unused_input="ignore")
    assert fn(B0, B1, rho) == pytest.approx(ref, abs=1e-9)


def _knn_weights(n: int, k: int, seed: int):
    """Row-standardised k-nearest-neighbour W: a non-symmetric relation, complex spectrum."""
    import scipy.sparse as sp

    pts = np.random.default_rng(seed).random((n, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.eye(n) * 1e9
    idx = np.argsort(d, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    return sp.csr_matrix((np.full(n * k, 1.0 / k), (rows, idx.ravel())), shape=(n, n))


@pytest.mark.parametrize("errors", ["none", "all"])
def test_complex_spectrum_matches_dense(errors):
    W = _knn_weights(30, 3, seed=4)
    lam = np.linalg.eigvals(W.toarray())
    assert np.abs(lam.imag).max() > 1e-3            # genuinely complex
    sim = simulate_system(W, seed=8)
    system = build_system(parse_system(sim.formulas, spatial_errors=errors), sim.data,
                          weights=W, check=False)
    model = build_system_model(system, lam)
    f, names = _evaluator(model)
    rng = np.random.default_rng(1)
    start = model.initial_point()
    for _ in range(4):
        point = {k: v + rng.normal(0.0, 0.15 if k == "structural_std" else 0.4, np.shape(v))
                 for k, v in start.items()}
        out = dict(zip(names, f(point)))
        ref = _dense_logp(system, out["coef"], out["Sigma"], out.get("rho"), model.coords["term"])
        assert out["loglik"] == pytest.approx(ref, abs=1e-8, rel=1e-11)


def test_lanczos_quadrature_error_is_small():
    """Measured error of the quadrature log-Jacobian against the exact spectrum (n = 900)."""
    from data_prep.spectrum.quadrature import lanczos_quadrature

    w = lattice_weights(30, "queen")
    lam = np.linalg.eigvals(w.matrix.toarray()).real
    nodes, weights = lanczos_quadrature(w.matrix, steps=30, probes=100, seed=0)
    assert weights.sum() == pytest.approx(900)
    B0 = np.array([[0.0, 0.4], [-0.3, 0.0]])
    B1 = np.array([[0.3, 0.2], [-0.15, 0.25]])
    for s in (1.0, 2.0):
        exact = log_jacobian_numpy(B0, B1 * s, lam)
        approx = log_jacobian_numpy(B0, B1 * s, nodes, weights=weights)
        assert abs(approx - exact) <= 0.02 * abs(exact)
    from data_prep.errors import InputError

    with pytest.raises(InputError, match="symmetric"):
        lanczos_quadrature(_knn_weights(30, 3, seed=1))


def test_unknown_prior_refused():
    from data_prep.errors import InputError

    system = _system(2, "none")
    with pytest.raises(InputError, match="prior"):
        build_system_model(system, np.linalg.eigvals(system.W.toarray()), {"beta_sd": 2.0})


def test_priors_override_changes_prior_density():
    system = _system(2, "none")
    lam = np.linalg.eigvals(system.W.toarray()).real
    point = None
    values = []
    for priors in (None, {"beta_sigma": 3.0}):
        model = build_system_model(system, lam, priors)
        point = point or {k: v + 0.5 for k, v in model.initial_point().items()}
        values.append(model.compile_logp(vars=[model["beta_std"]])(point))
    assert values[0] != pytest.approx(values[1])


def test_spectrum_of_another_map_is_refused():
    from data_prep.errors import InputError
    from data_prep.synthetic.simulate import lattice_weights, simulate_system
    from data_prep.spectrum.exact import eigenvalues
    from models.spec.system import build_system, parse_system

    rook, queen = lattice_weights(5, "rook"), lattice_weights(5, "queen")
    sim = simulate_system(rook, seed=2)
    system = build_system(parse_system(sim.formulas), sim.data, rook)
    build_system_model(system, eigenvalues(rook))  # its own spectrum is accepted
    with pytest.raises(InputError, match="does not match W"):
        build_system_model(system, eigenvalues(queen))


def test_fixed_scale_prior_is_on_the_original_scale():
    """standardise=False: coef is the free coefficients themselves, the log-density is still the
    dense one, and the prior does not depend on the data (the premise of SBC)."""
    system = _system(2, "none")
    lam = np.linalg.eigvals(system.W.toarray()).real
    scaled = build_system(parse_system([eq.formula for eq in system.spec.equations]),
                          _scaled_frame(system, 10.0), weights=system.W, check=False)
    models = [build_system_model(s, lam, standardise=False) for s in (system, scaled)]
    assert not models[0].layout.centred
    point = {k: v + 0.1 for k, v in models[0].initial_point().items()}
    f, names = _evaluator(models[0])
    out = dict(zip(names, f(point)))
    labels = models[0].coords["structural"] + models[0].coords["exogenous"]
    theta = np.concatenate([point["structural_std"], point["beta_std"]])
    terms = list(models[0].coords["term"])
    deps = list(models[0].coords["equation"])
    for label, value in zip(labels, theta):
        eq, term = label.split(": ", 1)
        assert out["coef"][deps.index(eq), terms.index(term)] == pytest.approx(value, abs=1e-12)
    ref = _dense_logp(system, out["coef"], out["Sigma"], None, terms)
    assert out["loglik"] == pytest.approx(ref, abs=1e-8, rel=1e-11)
    # the same free values mean the same coefficients whatever the data's scale, so the prior of
    # the coefficients is fixed; the default (standardised) prior moves with the data's scale
    g, g_names = _evaluator(models[1])
    assert np.array_equal(dict(zip(g_names, g(point)))["coef"], out["coef"], equal_nan=True)
    default = [build_system_model(s, lam) for s in (system, scaled)]
    first = dict(zip(_evaluator(default[0])[1], _evaluator(default[0])[0](point)))["coef"]
    second = dict(zip(_evaluator(default[1])[1], _evaluator(default[1])[0](point)))["coef"]
    assert not np.allclose(first, second, equal_nan=True)


def _scaled_frame(system, factor: float):
    import pandas as pd

    frame = pd.DataFrame(system.Y * factor, columns=list(system.spec.dependents))
    frame.insert(0, "city", system.cities)
    Xu, names = system.exogenous_union()
    for k, name in enumerate(names):
        if name != "Intercept" and not name.startswith("W("):
            frame[name] = np.asarray(Xu)[:, k]
    return frame


def test_normal_errors_keep_the_gaussian_graph():
    """errors="normal" (the default) keeps the sufficient-statistic model: no nu, no n × q
    design data, the same variables and log-density as the model built without the argument."""
    system = _system(2, "all")
    lam = np.linalg.eigvals(system.W.toarray())
    default, normal = build_system_model(system, lam), build_system_model(system, lam,
                                                                          errors="normal")
    assert list(default.named_vars) == list(normal.named_vars)
    assert "crossprod" in default.named_vars
    assert not {"nu", "design"} & set(default.named_vars)
    point = {k: v + 0.1 for k, v in default.initial_point().items()}
    assert default.compile_logp()(point) == normal.compile_logp()(point)
    t_model = build_system_model(system, lam, errors="student-t")
    assert "crossprod" not in t_model.named_vars and t_model.structure_key != default.structure_key
