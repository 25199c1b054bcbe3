"""Bayesian spatial simultaneous equation system: full-information likelihood in PyMC.

Model (docs/method.md §2b). For equations g = 1..G over n cities

    y_g = Σ_h B1[g,h] W y_h + Σ_{h≠g} B0[g,h] y_h + X_g β_g + u_g,   u_g = ρ_g W u_g + ε_g,
    (ε_1r, …, ε_Gr) ~ iid N(0, Σ) over cities r,

    log p(y | θ) = log|det 𝒜| + Σ_g log|det(I − ρ_g W)| − (n/2) log det Σ − ½ Σ_r ε_r' Σ⁻¹ ε_r
                   − (nG/2) log 2π,        𝒜 = I_Gn − (B0 ⊗ I_n + B1 ⊗ W).

Sufficient statistics. The residual of equation g is linear in the coefficients:
e_g = D c_g with D = [Y, WY, X_union] and c_g = (unit_g − B0[g,:], −B1[g,:], −β_g), and with a
spatial error ε_g = (I − ρ_g W) e_g = [D, WD] (c_g, −ρ_g c_g). So with the cross-product
M = E'E of E = [D, WD] (computed once, numpy) the quadratic form is tr(Σ⁻¹ C'MC): O(p²G) per
evaluation, never O(n·p). The Jacobian is the O(n) spectral form of ``models.bayes.jacobian``.

Standardisation (choice). Sampling runs on ỹ_g = (y_g − m_g)/s_g and x̃ = (x − m_x)/s_x with the
lags taken of the standardised variables (W ỹ), which maps the system onto itself with
B̃ = S⁻¹ B S (same Jacobian), β̃ = β s_x / s_g, Σ̃ = S⁻¹ Σ S⁻¹. Columns are centred only when every
equation has an intercept and every row of W sums to one (otherwise centring would leak into
non-constant terms); then only scaled by their root mean square. The log-density is that of the
original y (the −n Σ log s_g change-of-variable term is included), and ``coef``, ``Sigma`` and
``rho`` are reported on the original scale (the posterior group holds only these; the
standardised parameters are kept in ``unconstrained_posterior``, :mod:`models.bayes.idata`).

Priors (choice, overridable through ``priors``; all on the standardised scale, or on the
original scale with ``standardise=False``):
  ``structural_sigma`` 0.5  Normal(0, ·) for spatial-lag and cross-endogenous coefficients,
                            restricted to the admissible region by the Jacobian's −∞;
  ``beta_sigma``       1.0  Normal(0, ·) for exogenous slopes;
  ``intercept_sigma``  2.5  Normal(0, ·) for intercepts;
  ``sd_sigma``         1.0  HalfNormal(·) for the error scales;
  ``lkj_eta``          2.0  LKJ(η) for the error correlation (G ≥ 2);
  ``rho``                   Uniform(1/λ_min, 1/λ_max), the whole admissible interval;
  ``nu_shape``, ``nu_rate`` 2, 0.1  Gamma(shape, rate) for the Student-t degrees of freedom ν
                            (Juárez & Steel 2010, "Model-based clustering of non-Gaussian panel
                            data based on skew-t distributions", JBES 28; prior mean 20), only
                            with ``errors="student-t"``.

Student-t errors (docs/method.md §2c, ``errors="student-t"``). Each city's error vector is
multivariate Student-t, ε_r ~ t_ν(0, Σ), the scale mixture ε_r | w_r ~ N(0, Σ/w_r),
w_r ~ Gamma(ν/2, rate ν/2), with the scales integrated out (no n latent parameters):

    log p(y | θ) = log|det 𝒜| + Σ_g log|det(I − ρ_g W)| + Σ_r [log Γ((ν+G)/2) − log Γ(ν/2)
                   − (G/2) log(νπ) − ½ log det Σ − ((ν+G)/2) log(1 + ε_r'Σ⁻¹ε_r/ν)].

The quadratic forms are needed city by city, so the sufficient statistic M = E'E no longer
applies: ε (n × G) = E C with the n × q matrix E = [D, WD] held as data, O(n·q·G) per
evaluation, no n × n object. Σ is the scale matrix (Cov ε_r = ν/(ν − 2) Σ for ν > 2). With
``t_blocks`` = b > 1 (panel mode, rows ordered block-major: row k·n_c + r is city r's k-th
block) the b·G errors of a city are jointly t with one shared scale w_r, dimension d = bG:
Σ_r [log Γ((ν+d)/2) − log Γ(ν/2) − (d/2) log(νπ) − (b/2) log det Σ − ((ν+d)/2)
log(1 + Σ_k ε_rk'Σ⁻¹ε_rk/ν)].

Written on PyMC directly because no library offers a simultaneous spatial system likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from data_prep.errors import InputError
from data_prep.spectrum.chooser import as_spectrum
from data_prep.spectrum.exact import check_spectrum
from data_prep.terms import lag_target
from models.bayes.jacobian import SpectralBasis, log_jacobian, spectral_basis

DEFAULT_PRIORS: dict[str, float] = {
    "structural_sigma": 0.5,
    "beta_sigma": 1.0,
    "intercept_sigma": 2.5,
    "sd_sigma": 1.0,
    "lkj_eta": 2.0,
}


# prior settings that reach the model as pm.Data (``beta_prior_sd``), not as graph constants
DATA_PRIORS = ("beta_sigma", "intercept_sigma")

ERRORS = ("normal", "student-t")
STUDENT_T_PRIORS: dict[str, float] = {"nu_shape": 2.0, "nu_rate": 0.1}


@dataclass
class SystemLayout:
    """Numpy precomputation: parameter layout, scaling, linear maps and the cross-product matrix.

    Parameter vector θ = (θ_s, θ_b): θ_s the structural entries (B̃0, B̃1) and θ_b the exogenous
    coefficients, both standardised. All maps below are affine in θ:
      vec(B̃0) = L0 θ_s, vec(B̃1) = L1 θ_s (row-major G × G),
      vec(C)  = c0 + Lc θ   (C is p × G, column g = c_g),
      coef_present = a + T θ  (original-scale coefficients of the present (equation, term) pairs).
    """

    dependents: tuple[str, ...]
    terms: tuple[str, ...]                      # union of all equations' terms
    structural: list[tuple[int, str]]           # (equation index, term)
    exogenous: list[tuple[int, str]]
    present: list[tuple[int, int]]              # (equation index, term index) in coef order
    error_equations: tuple[int, ...]            # equations with a spatial error
    n: int
    G: int
    y_centre: np.ndarray
    y_scale: np.ndarray
    crossprod: np.ndarray                       # E'E, (q, q)
    L0: np.ndarray
    L1: np.ndarray
    c0: np.ndarray
    Lc: np.ndarray
    a: np.ndarray
    T: np.ndarray
    centred: bool
    log_scale_term: float = field(default=0.0)  # −n Σ log s_g
    design: np.ndarray | None = field(default=None, repr=False)  # E, (n, q)

    @property
    def labels(self) -> dict[str, list[str]]:
        lab = lambda pairs: [f"{self.dependents[g]}: {t}" for g, t in pairs]  # noqa: E731
        return {"structural": lab(self.structural), "exogenous": lab(self.exogenous)}

    def is_intercept(self) -> np.ndarray:
        return np.array([t == "Intercept" for _, t in self.exogenous], dtype=bool)


def system_layout(system, standardise: bool = True) -> SystemLayout:
    """Precompute everything that does not depend on the parameters (one pass over the data).

    With ``standardise`` False no column is centred or scaled (m = 0, s = 1): the parameters
    and hence the priors are then on the original scale, fixed whatever the data (the prior of
    simulation-based calibration must not depend on the simulated data).
    """
    spec = system.spec
    deps = tuple(spec.dependents)
    G, n = len(deps), int(system.Y.shape[0])
    index = {d: g for g, d in enumerate(deps)}
    Xu, xnames = system.exogenous_union()
    Xu = np.asarray(Xu, dtype=float)
    xnames = tuple(xnames)
    k = len(xnames)
    W = system.W
    uses_w = any(eq.spatial_lags or eq.spatial_error for eq in spec.equations)
    if uses_w and W is None:
        raise InputError("the system uses W() terms or spatial errors but no weights were given")

    # standardisation -------------------------------------------------------------
    all_intercept = all("Intercept" in eq.exogenous for eq in spec.equations)
    rows_one = W is None or np.allclose(np.asarray(W.sum(axis=1)).ravel(), 1.0)
    centred = all_intercept and rows_one and standardise
    Y = np.asarray(system.Y, dtype=float)
    if not standardise:
        y_centre, y_scale = np.zeros(G), np.ones(G)
    elif centred:
        y_centre = Y.mean(axis=0)
        y_scale = Y.std(axis=0)
    else:
        y_centre = np.zeros(G)
        y_scale = np.sqrt((Y ** 2).mean(axis=0))
    if np.any(y_scale <= 0):
        bad = [deps[g] for g in np.flatnonzero(y_scale <= 0)]
        raise InputError(f"dependent variable(s) {', '.join(bad)} do not vary across cities")
    is_const = np.array([nm == "Intercept" for nm in xnames])
    x_centre = np.where(is_const | (not centred), 0.0, Xu.mean(axis=0) if k else 0.0)
    x_spread = Xu.std(axis=0) if centred else np.sqrt((Xu ** 2).mean(axis=0))
    x_scale = np.where(is_const | (x_spread <= 0) | (not standardise), 1.0, x_spread)
    Yt = (Y - y_centre) / y_scale
    Xt = (Xu - x_centre) / x_scale
    WYt = np.asarray(W @ Yt) if W is not None else np.zeros((n, G))
    D = np.hstack([Yt, WYt, Xt])
    p = D.shape[1]
    error_eqs = tuple(g for g, eq in enumerate(spec.equations) if eq.spatial_error)
    E = np.hstack([D, np.asarray(W @ D)]) if error_eqs else D
    crossprod = E.T @ E

    # parameter layout ----------------------------------------------------------------
    structural, exogenous = [], []
    for g, eq in enumerate(spec.equations):
        for v in eq.spatial_lags:
            structural.append((g, f"W({v})"))
        for v in eq.endogenous:
            structural.append((g, v))
        for x in eq.exogenous:
            exogenous.append((g, x))
    ns, nb = len(structural), len(exogenous)
    nt = ns + nb
    L0, L1 = np.zeros((G * G, ns)), np.zeros((G * G, ns))
    c0, Lc = np.zeros(p * G), np.zeros((p * G, nt))
    xpos = {x: i for i, x in enumerate(xnames)}
    for j, (g, term) in enumerate(structural):
        target = lag_target(term)
        h = index[target] if target is not None else index[term]
        (L1 if target is not None else L0)[g * G + h, j] = 1.0
        col = (G + h) if target is not None else h
        Lc[col * G + g, j] = -1.0           # C row-major (p, G): entry (col, g)
    for g in range(G):
        c0[g * G + g] = 1.0
    for j, (g, x) in enumerate(exogenous):
        Lc[(2 * G + xpos[x]) * G + g, ns + j] = -1.0

    # original-scale coefficients: coef = a + T θ --------------------------------------
    terms: list[str] = []
    for eq in spec.equations:
        for t in eq.terms:
            if t not in terms:
                terms.append(t)
    tpos = {t: i for i, t in enumerate(terms)}
    present = [(g, tpos[t]) for g, t in structural] + [(g, tpos[t]) for g, t in exogenous]
    a, T = np.zeros(nt), np.zeros((nt, nt))
    row_of = {}
    for j, (g, term) in enumerate(structural):
        target = lag_target(term)
        h = index[target] if target is not None else index[term]
        T[j, j] = y_scale[g] / y_scale[h]
    for j, (g, x) in enumerate(exogenous):
        row_of[(g, x)] = ns + j
        if x != "Intercept":
            T[ns + j, ns + j] = y_scale[g] / x_scale[xpos[x]]
    for g in range(G):
        r = row_of.get((g, "Intercept"))
        if r is None:
            continue
        # intercept = m_g − Σ_h (B0+B1)[g,h] m_h + s_g β̃_0 − Σ_x β_x m_x
        a[r] = y_centre[g]
        T[r, r] = y_scale[g]
        for j, (g2, term) in enumerate(structural):
            if g2 != g:
                continue
            target = lag_target(term)
            h = index[target] if target is not None else index[term]
            T[r, j] -= y_scale[g] / y_scale[h] * y_centre[h]
        for j, (g2, x) in enumerate(exogenous):
            if g2 == g and x != "Intercept":
                T[r, ns + j] -= y_scale[g] / x_scale[xpos[x]] * x_centre[xpos[x]]

    return SystemLayout(
        dependents=deps, terms=tuple(terms), structural=structural, exogenous=exogenous,
        present=present, error_equations=error_eqs, n=n, G=G, y_centre=y_centre,
        y_scale=y_scale, crossprod=crossprod, L0=L0, L1=L1, c0=c0, Lc=Lc, a=a, T=T,
        centred=centred, log_scale_term=-n * float(np.sum(np.log(y_scale))), design=E,
    )


def _triangular_inverse(L, G: int):
    """Inverse of a small lower-triangular matrix by unrolled forward substitution.

    Scalar graph ops instead of a LAPACK call: for G ≤ ~6 this is far cheaper per evaluation
    than the generic triangular-solve Op (whose call overhead dominated the gradient).
    """
    inv = [[None] * G for _ in range(G)]
    for i in range(G):
        inv[i][i] = 1.0 / L[i, i]
        for j in range(i):
            acc = L[i, j] * inv[j][j]
            for k in range(j + 1, i):
                acc = acc + L[i, k] * inv[k][j]
            inv[i][j] = -acc / L[i, i]
    zero = pt.zeros(())
    return pt.stack([pt.stack([inv[i][j] if j <= i else zero for j in range(G)])
                     for i in range(G)])


def system_loglik(layout: SystemLayout, basis: SpectralBasis, theta_s, theta_b, chol, rho=None,
                  crossprod=None, powers=None, powers_imag=None, data: Mapping | None = None,
                  nu=None, design=None, t_blocks: int = 1):
    """Pytensor log p(y | θ) of the original data, from standardised parameters.

    ``chol`` is the lower Cholesky factor of Σ̃ (G × G); ``rho`` the spatial-error coefficients of
    ``layout.error_equations`` (original = standardised scale). −∞ outside the admissible region.
    ``data`` may hold shared (pm.Data) versions of the layout's arrays (see :func:`layout_data`),
    so that one compiled graph serves every system of the same shape. With ``nu`` (a scalar
    tensor) the errors are multivariate Student-t (module docstring), evaluated from the n × q
    ``design`` E = [D, WD] (``layout.design``); ``t_blocks`` rows per city share a scale.
    """
    G = layout.G
    d = {**layout_data(layout, basis), **(data or {})}
    n = d["n_obs"]
    theta = pt.concatenate([theta_s, theta_b]) if layout.structural else theta_b
    B0 = pt.dot(d["L0"], theta_s).reshape((G, G)) if layout.structural else pt.zeros((G, G))
    B1 = pt.dot(d["L1"], theta_s).reshape((G, G)) if layout.structural else pt.zeros((G, G))
    C = (d["c0"] + pt.dot(d["Lc"], theta)).reshape((-1, G))           # (p, G)
    if layout.error_equations:
        rho_full = pt.zeros(G)
        rho_full = pt.set_subtensor(rho_full[list(layout.error_equations)], rho)
        C = pt.concatenate([C, -C * rho_full[None, :]], axis=0)         # (2p, G)
    Linv = _triangular_inverse(chol, G)
    logdet_sigma = 2.0 * pt.sum(pt.log(pt.diag(chol)))
    jac, _ = log_jacobian(B0, B1, basis, G, rho=rho if layout.error_equations else None,
                          powers=powers, powers_imag=powers_imag,
                          weights=d["eigen_weights"], scale=d["eigen_scale"])
    if nu is not None:
        E = layout.design if design is None else design
        return jac + _student_t_terms(pt.dot(E, C), Linv, logdet_sigma, nu, G, t_blocks) \
            + d["log_scale_term"]
    M = layout.crossprod if crossprod is None else crossprod
    K = pt.dot(C.T, pt.dot(M, C))                                       # ε_g'ε_h
    quad = pt.sum(pt.diag(pt.dot(Linv, pt.dot(K, Linv.T))))
    const = -0.5 * n * G * np.log(2 * np.pi) + d["log_scale_term"]
    return jac - 0.5 * n * logdet_sigma - 0.5 * quad + const


def _student_t_terms(eps, Linv, logdet_sigma, nu, G: int, blocks: int):
    """Σ_r log t_ν(ε_r; 0, Σ) over cities, with ``blocks`` rows of ``eps`` (N × G, block-major)
    per city sharing one scale: dimension d = blocks·G (module docstring)."""
    z = pt.dot(eps, Linv.T)                                             # Σ^{-1/2} ε_r
    quad = pt.sum(z ** 2, axis=1)
    if blocks > 1:
        quad = quad.reshape((blocks, -1)).sum(axis=0)
    dim = blocks * G
    per_city = (pt.gammaln(0.5 * (nu + dim)) - pt.gammaln(0.5 * nu)
                - 0.5 * dim * pt.log(nu * np.pi) - 0.5 * blocks * logdet_sigma)
    return quad.shape[0] * per_city - 0.5 * (nu + dim) * pt.sum(pt.log1p(quad / nu))


def layout_data(layout: SystemLayout, basis: SpectralBasis) -> dict[str, Any]:
    """The numbers that differ between systems of the same shape (data, not graph structure).

    The affine maps of θ (``L0``, ``L1``, ``c0``, ``Lc``, ``coef_offset`` = a, ``coef_map`` = T),
    the flat positions of the present coefficients, the exogenous prior sds, the scales, n and
    the spectrum's weights and scale. Held as pm.Data, they let one compiled model sample every
    system with the same :func:`structure_key` (specification grids, recovery replications).
    """
    return {"L0": layout.L0, "L1": layout.L1, "c0": layout.c0, "Lc": layout.Lc,
            "coef_offset": layout.a, "coef_map": layout.T,
            "coef_index": np.array([g * len(layout.terms) + t for g, t in layout.present],
                                   dtype=np.int64),
            "y_scale_outer": np.outer(layout.y_scale, layout.y_scale),
            "log_scale_term": np.float64(layout.log_scale_term),
            "n_obs": np.float64(layout.n), "eigen_weights": np.asarray(basis.weights, float),
            "eigen_scale": np.float64(basis.scale)}


def structure_key(layout: SystemLayout, basis: SpectralBasis, hp: Mapping[str, Any]) -> tuple:
    """What fixes the compiled graph: shapes, spectrum kind, error equations, priors, rho bounds.

    Two models with equal keys differ only in their pm.Data values and coordinate labels.
    """
    bounds = ((round(basis.lambda_min, 12), round(basis.lambda_max, 12))
              if layout.error_equations else None)
    return (layout.G, len(layout.structural), len(layout.exogenous), layout.crossprod.shape[0],
            len(layout.terms), layout.error_equations, basis.powers_imag is not None,
            bounds, tuple(sorted((k, float(v)) for k, v in hp.items()
                                 if k not in DATA_PRIORS)))


def _settings(priors: Mapping[str, Any] | None, errors: str) -> dict[str, float]:
    """The prior settings: :data:`DEFAULT_PRIORS` (and :data:`STUDENT_T_PRIORS` with Student-t
    errors) updated by ``priors``; an unknown name or error law is an InputError."""
    if errors not in ERRORS:
        raise InputError(f"errors must be one of {', '.join(ERRORS)}, not {errors!r}")
    known = {**DEFAULT_PRIORS, **(STUDENT_T_PRIORS if errors == "student-t" else {})}
    unknown = set(priors or {}) - set(known)
    if unknown:
        raise InputError(f"unknown prior setting(s): {', '.join(sorted(unknown))}; "
                         f"known with errors={errors}: {', '.join(known)}")
    return {**known, **(priors or {})}


def build_system_model(system, spectrum, priors: Mapping[str, Any] | None = None, *,
                       standardise: bool = True, errors: str = "normal",
                       t_blocks: int = 1) -> pm.Model:
    """PyMC model of the spatial simultaneous system (module docstring gives model and priors).

    ``system``: a ``models.spec.system.SystemData``; ``spectrum``: the spectrum of ``system.W``
    as a :class:`data_prep.spectrum.chooser.Spectrum` (exact eigenvalues, real or complex in
    conjugate pairs, or quadrature nodes with their weights), or an array of its exact
    eigenvalues; None without W. Free variables
    ``structural_std``, ``beta_std`` (standardised scale), the error scales and correlation
    (``sd_std`` for G = 1; ``sd_std`` and ``corr_u`` with r = 2u − 1 for G = 2; the LKJ Cholesky
    ``chol_std`` for G ≥ 3) and ``rho_error``; deterministics on the original scale: ``coef``
    (equation, term; NaN where a term is absent from an equation), ``Sigma`` (equation,
    equation2) and ``rho`` (equation; NaN without a spatial error). After sampling
    (:func:`models.bayes.sampling.sample`) the InferenceData is in the layout of
    :mod:`models.bayes.idata`: the posterior holds ``coef`` over its present coefficients only,
    ``Sigma`` and ``rho`` over the equations with a spatial error, the free variables above are
    in the group ``unconstrained_posterior``. The likelihood is the
    potential ``loglik`` (the exact log-density of the original y, normalising constant
    included), so ``model.compile_logp()`` is the exact log posterior density.
    ``standardise=False`` puts the parameters, and so the priors, on the original scale of the
    data instead of the standardised one (fixed priors, for simulation-based calibration).
    ``errors="student-t"``: multivariate Student-t errors per city (module docstring), with the
    free variable ``nu`` (the degrees of freedom); ``t_blocks`` consecutive blocks of
    ``n / t_blocks`` rows are the same cities (panel mode: one scale per city for all its rows).
    """
    hp = _settings(priors, errors)
    layout = system_layout(system, standardise=standardise)
    G = layout.G
    spec = as_spectrum(spectrum)
    eigenvalues = spec.nodes if spec is not None else np.zeros(layout.n)
    basis = spectral_basis(eigenvalues, G, weights=spec.weights if spec is not None else None)
    if basis.n and abs(basis.n - layout.n) > 1e-6 * layout.n:
        raise InputError(f"the spectrum has {basis.n:g} eigenvalues but the system has "
                         f"{layout.n} cities")
    if (spec is None or spec.weights is None) and system.W is not None:
        # an exact spectrum must be W's own: Σλ = tr W and Σλ² = tr W² (sparse, O(nnz))
        check_spectrum(np.asarray(eigenvalues), system.W)
    labels = layout.labels
    coords = {"equation": list(layout.dependents), "equation2": list(layout.dependents),
              "term": list(layout.terms), "structural": labels["structural"],
              "exogenous": labels["exogenous"],
              "error_equation": [layout.dependents[g] for g in layout.error_equations]}
    bsd = np.where(layout.is_intercept(), hp["intercept_sigma"], hp["beta_sigma"])
    with pm.Model(coords=coords) as model:
        student_t = errors == "student-t"
        # Static shapes where the structure key fixes them (all but the spectrum's and the
        # n-row design's): PyTensor then needs no broadcast check of c0 + Lc θ, whose operands
        # it orders differently in every process, which made the compiled graph's disk-cache
        # key differ each time. The Gaussian model keeps the compact sufficient statistic;
        # Student-t needs the residuals themselves.
        crossprod = (None if student_t else
                     pm.Data("crossprod", layout.crossprod, shape=layout.crossprod.shape))
        design = pm.Data("design", layout.design) if student_t else None
        powers = pm.Data("eigen_powers", basis.powers)
        powers_imag = (pm.Data("eigen_powers_imag", basis.powers_imag)
                       if basis.powers_imag is not None else None)
        data = {name: pm.Data(name, value, **({} if name == "eigen_weights"
                                              else {"shape": np.shape(value)}))
                for name, value in layout_data(layout, basis).items()}
        theta_s = (pm.Normal("structural_std", 0.0, hp["structural_sigma"], dims="structural")
                   if layout.structural else pt.zeros(0))
        beta_sd = pm.Data("beta_prior_sd", bsd)
        theta_b = pm.Normal("beta_std", 0.0, beta_sd, dims="exogenous")
        if G == 1:
            sd = pm.HalfNormal("sd_std", hp["sd_sigma"])
            chol = sd.reshape((1, 1))
        elif G == 2:
            # closed-form LKJ(η) for 2 × 2: the correlation r = 2u − 1 with u ~ Beta(η, η)
            # has density ∝ (1 − r²)^(η − 1); a much smaller graph than LKJCholeskyCov.
            sd = pm.HalfNormal("sd_std", hp["sd_sigma"], dims="equation")
            r = 2.0 * pm.Beta("corr_u", hp["lkj_eta"], hp["lkj_eta"]) - 1.0
            zero = pt.zeros(())
            chol = pt.stack([pt.stack([sd[0], zero]),
                             pt.stack([r * sd[1], sd[1] * pt.sqrt(1.0 - r ** 2)])])
        else:
            chol, _, _ = pm.LKJCholeskyCov("chol_std", n=G, eta=hp["lkj_eta"],
                                           sd_dist=pm.HalfNormal.dist(hp["sd_sigma"], shape=G),
                                           compute_corr=True)
        rho = None
        if layout.error_equations:
            lo = 1.0 / basis.lambda_min if basis.lambda_min < 0 else -1.0
            hi = 1.0 / basis.lambda_max if basis.lambda_max > 0 else 1.0
            rho = pm.Uniform("rho_error", lo, hi, dims="error_equation")
        nu = None
        if student_t:
            if layout.n % t_blocks:
                raise InputError(f"{layout.n} rows do not split into {t_blocks} blocks of cities")
            nu = pm.Gamma("nu", alpha=hp["nu_shape"], beta=hp["nu_rate"])
        pm.Potential("loglik", system_loglik(layout, basis, theta_s, theta_b, chol, rho,
                                             crossprod=crossprod, powers=powers,
                                             powers_imag=powers_imag, data=data, nu=nu,
                                             design=design, t_blocks=t_blocks))
        # original-scale summaries
        theta = pt.concatenate([theta_s, theta_b]) if layout.structural else theta_b
        values = data["coef_offset"] + pt.dot(data["coef_map"], theta)
        nterms = len(layout.terms)
        coef = pt.set_subtensor(pt.full((G * nterms,), np.nan)[data["coef_index"]], values)
        pm.Deterministic("coef", coef.reshape((G, nterms)), dims=("equation", "term"))
        sigma_std = pt.dot(chol, chol.T)
        pm.Deterministic("Sigma", sigma_std * data["y_scale_outer"],
                         dims=("equation", "equation2"))
        if rho is not None:
            rho_full = pt.set_subtensor(pt.full(G, np.nan)[list(layout.error_equations)], rho)
            pm.Deterministic("rho", rho_full, dims="equation")
    model.layout = layout  # type: ignore[attr-defined]  # kept for effects/reporting helpers
    key = structure_key(layout, basis, hp)
    model.structure_key = (key if errors == "normal"  # type: ignore[attr-defined]
                           else key + (("errors", errors, int(t_blocks)),))
    model.errors = errors  # type: ignore[attr-defined]
    # prior sds of the free coefficients, for the prior-to-posterior contraction report
    model.prior_sd = {"structural_std": hp["structural_sigma"],  # type: ignore[attr-defined]
                      "beta_std": bsd}
    return model
