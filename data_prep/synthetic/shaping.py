"""Employment shaped so that the study's indices take given values (the demo's inverse problem).

Given, for every city r and year t, targets for the largest location quotient PSS_rt, the Shannon
entropy PSD_rt and the Martin sensitivity index ER_rt (docs/method.md §1; :mod:`data_prep.indices`),
find employment E_rit = T_rt s_rit whose indices, computed by the ordinary pipeline, are these
targets. Nothing is overwritten after computation: the indices of the returned cube are the
targets up to the convergence tolerance.

Shares (one city-year; national shares S_i, signature industry k, base shares b_i):

    s_k = PSS · S_k,      s_i = min(PSS · S_i, λ b_i^β)  (i ≠ k),      Σ_i s_i = 1,

a concentration weight on the signature industry (its location quotient is exactly PSS, and the
caps keep every other quotient at or below it) and a temperature β ≥ 0 over the others (β = 0 is
the water-filling that maximises the entropy given PSS; β → ∞ concentrates on the largest base
shares). The entropy falls monotonically in β, so β solving H(s) = PSD is found by a bracketed
Illinois (regula falsi) iteration, vectorised over all city-years.

Totals (one year): with national industry growth g_i = N_i,t+1 / N_it − 1 and the city's mix
growth c_rt = Σ_i s_rit g_i, the index ER_rt = (ΔA − ΔC)/|ΔC| holds when

    T_r,t+1 = T_rt (1 + c_rt + ER_rt |c_rt|).

N_t+1 = Σ_r T_r,t+1 s_r,t+1 is then linear in g, a K × K system whose level is free (the
operator has unit column sums); the national growth rate of the year fixes it. The system is
solvable only when the adding-up identity of the index holds, Σ_r ER_rt |ΔC_rt| = 0 in every
year (Σ_r ΔA = Σ_r ΔC), so :func:`balance_er` moves the yearly ER by the least-squares smallest
amounts that satisfy it while keeping every city's period mean, and shifts all targets by one
common δ (returned; the caller's truth absorbs it) for the part that yearly moves cannot carry.

National shares depend on all cities (a fixed point): the loop alternates shares → totals →
national shares until nothing changes; the signature industries' self-reference S_k ← A_k S_k +
B_k is solved in closed form S_k = B_k / (1 − A_k) at each pass, which makes the loop converge in
a few dozen passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_prep.errors import InputError

BETA_MAX = 40.0


class InfeasibleTargets(InputError):
    """A (PSS, PSD) target pair outside the share family at the current national shares."""


def _entropy(s: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(s > 0, s * np.log(np.where(s > 0, s, 1.0)), 0.0).sum(axis=-1)


def _water_fill(d: np.ndarray, beta: np.ndarray, caps: np.ndarray, mass: np.ndarray,
                excluded: np.ndarray) -> np.ndarray:
    """Rows of s_i = min(cap_i, λ e^{β d_i}) with Σ_i s_i = mass (excluded columns 0).

    Σ_i min(cap_i, λ a_i) is increasing and piecewise linear in λ with breakpoints cap_i / a_i:
    sort them, find the segment where it crosses ``mass``, solve the segment's linear equation.
    """
    a = np.where(excluded, 0.0, np.exp(beta[:, None] * d))
    caps = np.where(excluded, 0.0, caps)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(a > 0, caps / np.where(a > 0, a, 1.0), np.inf)
    order = np.argsort(ratio, axis=1)
    r = np.take_along_axis(ratio, order, 1)
    c = np.take_along_axis(caps, order, 1)
    a_sorted = np.take_along_axis(a, order, 1)
    capped_before = np.cumsum(c, axis=1) - c
    free_from = np.cumsum(a_sorted[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(invalid="ignore"):
        at_break = capped_before + np.where(np.isfinite(r), r * free_from, np.inf)
    j = np.argmax(at_break >= mass[:, None], axis=1)
    rows = np.arange(len(mass))
    lam = (mass - capped_before[rows, j]) / free_from[rows, j]
    return np.minimum(caps, lam[:, None] * a)


def _rest_shares(d, beta, caps, mass, excluded):
    """The uncapped softmax where no cap binds (most rows), the water-filling elsewhere."""
    a = np.where(excluded, 0.0, np.exp(beta[:, None] * d))
    s = (mass / a.sum(axis=1))[:, None] * a
    over = (s > caps).any(axis=1)
    if over.any():
        s[over] = _water_fill(d[over], beta[over], caps[over], mass[over], excluded[over])
    return s


def _family(pss, national, log_base, signature):
    """The pieces of the share family for rows: (lead share, rest mass, caps, d, excluded)."""
    R, K = national.shape
    rows = np.arange(R)
    if np.any(pss <= 1.0) or np.any(pss * national[rows, signature] >= 1.0):
        raise InputError("shaping: every PSS target must exceed 1 and leave room for the other "
                         "industries (PSS · S_k < 1)")
    lead = pss * national[rows, signature]
    caps = pss[:, None] * national
    excluded = np.zeros((R, K), dtype=bool)
    excluded[rows, signature] = True
    lb = np.where(excluded, -np.inf, log_base)
    d = np.where(excluded, 0.0, lb - lb.max(axis=1, keepdims=True))
    return lead, 1.0 - lead, caps, d, excluded


def entropy_range(pss: np.ndarray, national: np.ndarray, log_base: np.ndarray,
                  signature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) Shannon entropy the family reaches for each row: β = BETA_MAX, β = 0."""
    lead, mass, caps, d, excluded = _family(pss, national, log_base, signature)
    rest = [_entropy(_rest_shares(d, np.full(len(pss), b), caps, mass, excluded))
            for b in (BETA_MAX, 0.0)]
    return rest[0] - lead * np.log(lead), rest[1] - lead * np.log(lead)


def signature_shares(pss: np.ndarray, psd: np.ndarray, national: np.ndarray,
                     log_base: np.ndarray, signature: np.ndarray, tol: float = 1e-13,
                     max_iter: int = 200, start: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shares (rows) with largest location quotient ``pss`` and Shannon entropy ``psd``.

    ``national`` (rows × K) national shares, ``log_base`` (rows × K) log base shares, ``signature``
    (rows,) the industry whose quotient is ``pss``; ``start`` a guess of β (a bracket of ±5 %
    around it is tried first). Returns (shares, β, infeasible) where infeasible marks rows whose
    entropy target lies outside [H(β_max), H(0)] for this family (their shares are the nearest
    end).
    """
    R, K = national.shape
    rows = np.arange(R)
    lead, mass, caps, d, excluded = _family(pss, national, log_base, signature)
    lead_entropy = -lead * np.log(lead)

    def gap(beta, idx=slice(None)):
        s = _rest_shares(d[idx], beta, caps[idx], mass[idx], excluded[idx])
        return _entropy(s) + lead_entropy[idx] - psd[idx], s

    lo, hi = np.zeros(R), np.full(R, BETA_MAX)
    f_lo, s_lo = gap(lo)
    f_hi, s_hi = gap(hi)
    infeasible = (f_lo < 0) | (f_hi > 0)
    s = np.where((f_lo < 0)[:, None], s_lo, s_hi)
    if start is not None:  # a narrow bracket around the previous β where it brackets the root
        a, b = np.maximum(0.95 * start - 1e-9, 0.0), np.minimum(1.05 * start + 1e-9, BETA_MAX)
        fa, _ = gap(a)
        fb, _ = gap(b)
        narrow = (fa >= 0) & (fb <= 0) & ~infeasible
        lo, hi = np.where(narrow, a, lo), np.where(narrow, b, hi)
        f_lo, f_hi = np.where(narrow, fa, f_lo), np.where(narrow, fb, f_hi)
    x = np.where(infeasible, np.where(f_lo < 0, 0.0, BETA_MAX), 0.5 * (lo + hi))
    side = np.zeros(R, dtype=int)
    todo = ~infeasible
    for _ in range(max_iter):
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        a, b, fa, fb = lo[idx], hi[idx], f_lo[idx], f_hi[idx]
        xi = np.clip(np.where(fb != fa, (a * fb - b * fa) / np.where(fb != fa, fb - fa, 1.0),
                              0.5 * (a + b)), a, b)
        fx, sx = gap(xi, idx)
        s[idx], x[idx] = sx, xi
        above = fx > 0  # entropy still too high: the root lies at larger β
        lo[idx] = np.where(above, xi, a)
        hi[idx] = np.where(above, b, xi)
        # Illinois step: halve the stale end's value when the same end is kept twice
        f_lo[idx] = np.where(above, fx, np.where(side[idx] == -1, fa / 2, fa))
        f_hi[idx] = np.where(above, np.where(side[idx] == 1, fb / 2, fb), fx)
        side[idx] = np.where(above, 1, -1)
        done = (np.abs(fx) <= tol) | (b - a <= 1e-15 * np.maximum(1.0, b))
        todo[idx[done]] = False
    s[rows, signature] = lead
    return s, x, infeasible


def balance_er(er_target: np.ndarray, deviation: np.ndarray, weights: np.ndarray
               ) -> tuple[np.ndarray, float]:
    """Yearly ER = target + δ + deviation + Δ with Σ_t Δ_rt = 0 and Σ_r w_rt ER_rt = 0.

    Minimises ‖Δ‖² with the common shift δ free: δ carries the part that zero-mean yearly moves
    cannot, Δ only the year-to-year imbalance. ``weights`` (n, T−1) are |ΔC_rt|, normalised per
    year to w̃. With Δ = μ 1' + w̃ diag(ν) (the Lagrange form; μ from the zero row sums), ν and δ
    solve the bordered (T−1)+1 system [[D − w̃'w̃/(T−1), 1], [1', 0]] (ν, δ) = (b, 0),
    D = diag(Σ_r w̃²_rt), b_t = −Σ_r w̃_rt (target_r + deviation_rt). Returns (ER_rt, δ).
    """
    n, T1 = deviation.shape
    w = weights / weights.sum(axis=0, keepdims=True)
    b = -(w * (er_target[:, None] + deviation)).sum(axis=0)
    system = np.zeros((T1 + 1, T1 + 1))
    system[:T1, :T1] = np.diag((w ** 2).sum(axis=0)) - w.T @ w / T1
    system[:T1, T1] = system[T1, :T1] = 1.0
    solution = np.linalg.solve(system, np.concatenate([b, [0.0]]))
    nu, delta = solution[:T1], solution[T1]
    mu = -(w @ nu) / T1
    return er_target[:, None] + delta + deviation + mu[:, None] + w * nu[None, :], float(delta)


@dataclass
class Shaped:
    """Shaped employment (n, T, K), the yearly ER it carries, the common ER shift and a report."""

    employment: np.ndarray
    er: np.ndarray
    delta: float
    iterations: int
    change: float  # the last pass's largest relative change (convergence)


def shape_employment(totals0: np.ndarray, log_base: np.ndarray, signature: np.ndarray,
                     pss: np.ndarray, psd: np.ndarray, er_target: np.ndarray,
                     er_deviation: np.ndarray, level_growth: np.ndarray,
                     growth0: np.ndarray, tol: float = 1e-12, max_iter: int = 200) -> Shaped:
    """Employment (n, T, K) whose PSS, PSD (n, T) are ``pss``, ``psd`` and whose ER (n, T−1) is
    ``er_target`` + δ + ``er_deviation`` + a balancing Δ (see :func:`balance_er`).

    ``totals0`` city totals of the first year; ``log_base`` (n, T, K) log base shares (the mix the
    temperature works on); ``signature`` (n,) each city's signature industry; ``level_growth``
    (T−1,) national employment growth rates; ``growth0`` (T−1, K) a first guess of national
    industry growth. InputError when a PSS/PSD pair is outside the family or the loop does not
    converge.
    """
    n, T, K = log_base.shape
    rows = np.repeat(np.arange(n), T)
    sig = np.repeat(signature, T)
    national = np.exp(log_base) * totals0[:, None, None]
    national = national.sum(axis=0) / national.sum(axis=(0, 2))[:, None]  # (T, K)
    g = growth0.copy()
    totals = totals0[:, None] * np.concatenate([[1.0], np.cumprod(1 + level_growth)])[None, :]
    change, beta = np.inf, None
    for it in range(1, max_iter + 1):
        s, beta, infeasible = signature_shares(
            pss.ravel(), psd.ravel(), np.repeat(national[None], n, 0).reshape(n * T, K),
            log_base.reshape(n * T, K), sig, start=beta)
        if infeasible.any():
            bad = np.flatnonzero(infeasible)
            raise InfeasibleTargets(
                f"shaping: {bad.size} city-years have a (PSS, PSD) target outside the share "
                f"family (pass {it}), e.g. city {rows[bad[0]]}, year {bad[0] % T}: "
                f"PSS {pss.ravel()[bad[0]]:.3f}, PSD {psd.ravel()[bad[0]]:.3f}")
        s = s.reshape(n, T, K)
        mix_growth = np.einsum("rtk,tk->rt", s[:, :-1], g)
        er, delta = balance_er(er_target, er_deviation, totals[:, :-1] * np.abs(mix_growth))
        sign = np.sign(mix_growth)
        new_totals = np.empty_like(totals)
        new_totals[:, 0] = totals0
        new_g = np.empty_like(g)
        for t in range(T - 1):
            now, nxt = s[:, t], s[:, t + 1]
            level = nxt.T @ new_totals[:, t]
            held = now.T @ new_totals[:, t]
            u = new_totals[:, t] * (1.0 + er[:, t] * sign[:, t])
            B = nxt.T @ (u[:, None] * now)
            system = np.vstack([np.eye(K) - B / held[None, :], np.ones((1, K))])
            rhs = np.concatenate([level - B.sum(axis=1), [(1 + level_growth[t]) * held.sum()]])
            following = np.linalg.lstsq(system, rhs, rcond=None)[0]
            new_g[t] = following / held - 1.0
            c = now @ new_g[t]
            new_totals[:, t + 1] = new_totals[:, t] * (1.0 + c + er[:, t] * np.abs(c))
        if (new_totals <= 0).any():
            raise InputError("shaping: a city's employment would fall to zero; the ER targets "
                             "are too extreme for the national growth")
        # national shares: S_k = B_k / (1 − A_k) for the signature industries' self-reference
        E = new_totals[:, :, None] * s
        grand = new_totals.sum(axis=0)
        new_national = np.empty_like(national)
        for k in range(K):
            own = signature == k
            A = (new_totals[own] * pss[own]).sum(axis=0) / grand
            if (A >= 1.0).any():  # S_k = A S_k + B has no positive solution
                raise InputError(f"shaping: the cities specialised in industry {k} would hold "
                                 f"more than its national employment (Σ weight · PSS = "
                                 f"{A.max():.2f} ≥ 1); spread the signature industries")
            B_k = E[~own, :, k].sum(axis=0) / grand
            new_national[:, k] = B_k / (1.0 - A)
        new_national /= new_national.sum(axis=1, keepdims=True)
        change = max(np.max(np.abs(new_national / national - 1.0)),
                     np.max(np.abs(new_totals / totals - 1.0)), np.max(np.abs(new_g - g)))
        national, totals, g = new_national, new_totals, new_g
        if change < tol:
            break
    else:
        raise InputError(f"shaping: no convergence in {max_iter} passes (last change "
                         f"{change:.2e})")
    # the final pass: shares on the converged national shares, totals as computed
    return Shaped(totals[:, :, None] * s, er, delta, it, float(change))
