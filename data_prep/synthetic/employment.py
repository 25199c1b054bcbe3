"""The demo's employment: structural targets → yearly index paths → shaped employment.

1. Targets. The city period means (ER*, PSS*, PSD*) are one draw of the structural system of
   :mod:`data_prep.synthetic.truth`, solved by :func:`data_prep.synthetic.simulate.simulate_system` on the demo
   map's W with the period means of the demo covariates as X. A draw whose PSS/PSD targets fall
   outside the share family (yearly PSS ≤ 1.1, or PSD within 0.01 of the family's entropy
   range at the base national shares, or outside it at the shaped ones)
   is replaced by the next draw of the errors (reported as "draw" in the truth record).
2. Yearly paths. PSS_rt = PSS*_r (1 + e_rt) and PSD_rt = PSD*_r + f_rt with e, f an AR(1) plus
   a city trend and, for PSD, a national diversification trend, each centred over the years so
   the period means are the targets exactly. ER_rt = ER*_r + δ + d_rt: d is heavy-tailed
   (Student t, 5 df) and scaled by 1/|c_rt| (the city's mix growth; the index explodes where the
   counterfactual change is small, as in the paper's ±20 extremes), larger in the national shock
   years with a spatially correlated shock absorption, centred over the years, and balanced so
   that Σ_r ER_rt |ΔC_rt| = 0 in every year (an identity of the index); δ is the common shift
   the balance needs, absorbed by the ER intercept of the truth (:func:`demo_system.shift_er`).
3. Employment. :func:`data_prep.synthetic.shaping.shape_employment` (signature industry = the city's
   largest base location quotient among the industries with national share below 6 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_prep.synthetic import truth as demo_system
from data_prep.errors import InputError
from data_prep.synthetic.shaping import InfeasibleTargets, entropy_range, shape_employment
from data_prep.synthetic.simulate import simulate_system

PSS_FLOOR = 1.1            # smallest admissible yearly PSS (the family needs PSS > 1)
ENTROPY_MARGIN = 0.01      # admissible PSD: this far inside the family's entropy range
SIGNATURE_MAX_SHARE = 0.06  # signature industries: national share below this
ER_SWING = 0.045           # sd of the yearly employment growth deviation behind ER's scatter
SHOCK_SWING = 0.8          # extra deviation in shock years per sd of shock absorption
MAX_REDRAWS = 50


def draw_targets(W, X: pd.DataFrame, seed: int, draw: int = 0):
    """(raw-scale SystemTruth, cross-section DataFrame with ER, PSS, PSD and X) of one draw.

    The index scales s_g make the cross-sectional sds about the design's SPREAD (a first draw at
    unit scale measures them); the system is linear, so this only sets units.
    """
    x_mean = {c: float(X[c].mean()) for c in demo_system.CONTROLS}
    x_sd = {c: float(X[c].std()) for c in demo_system.CONTROLS}
    unit = demo_system.raw_truth({d: 1.0 for d in demo_system.DEPENDENTS}, x_mean, x_sd,
                                 location={d: 0.0 for d in demo_system.DEPENDENTS})
    probe = simulate_system(W, unit, seed=seed, exogenous=X).data
    scale = {d: demo_system.SPREAD[d] / float(probe[d].std()) for d in demo_system.DEPENDENTS}
    truth = demo_system.raw_truth(scale, x_mean, x_sd)
    return truth, simulate_system(W, truth, seed=seed + draw, exogenous=X).data


def _admissible(pss, psd, national, log_base, signature) -> bool:
    """Every yearly (PSS, PSD) pair inside the share family (base national shares), with a
    margin of ENTROPY_MARGIN in entropy."""
    n, T, K = log_base.shape
    if pss.min() <= PSS_FLOOR:
        return False
    low, high = entropy_range(pss.ravel(), np.repeat(national[None], n, 0).reshape(n * T, K),
                              log_base.reshape(n * T, K), np.repeat(signature, T))
    psd = psd.ravel()
    return bool(np.all((psd > low + ENTROPY_MARGIN) & (psd < high - ENTROPY_MARGIN)))


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=1, keepdims=True)


def _ar1(rng, n: int, T: int, phi: float, sd: float) -> np.ndarray:
    out = np.empty((n, T))
    out[:, 0] = sd * rng.standard_normal(n)
    for t in range(1, T):
        out[:, t] = phi * out[:, t - 1] + sd * np.sqrt(1 - phi ** 2) * rng.standard_normal(n)
    return out


def yearly_paths(rng, targets: pd.DataFrame, T: int) -> tuple[np.ndarray, np.ndarray]:
    """PSS_rt and PSD_rt scattered around the city targets with exactly zero mean deviation."""
    n = len(targets)
    trend = np.arange(T) - (T - 1) / 2
    e = _ar1(rng, n, T, 0.6, 0.06) + 0.008 * rng.standard_normal(n)[:, None] * trend
    f = (_ar1(rng, n, T, 0.6, 0.025) + 0.004 * trend[None, :]
         + 0.003 * rng.standard_normal(n)[:, None] * trend)
    pss = targets["PSS"].to_numpy()[:, None] * (1.0 + _centred(e))
    psd = targets["PSD"].to_numpy()[:, None] + _centred(f)
    return pss, psd


def er_deviation(rng, mix_growth: np.ndarray, shock: np.ndarray,
                 absorption: np.ndarray) -> np.ndarray:
    """Zero-mean yearly ER deviations d_rt (n, T−1): a growth deviation over |c_rt|."""
    n, T1 = mix_growth.shape
    swing = ER_SWING * rng.standard_t(5, size=(n, T1)) / np.sqrt(5 / 3)
    swing += ER_SWING * SHOCK_SWING * shock[None, :] * absorption[:, None]
    return _centred(swing / np.abs(mix_growth))


def signature_industries(log_mix: np.ndarray, base_share: np.ndarray) -> np.ndarray:
    """Each city's largest base location quotient among the small national industries."""
    lq = log_mix - np.log(base_share)[None, :]
    lq[:, base_share >= SIGNATURE_MAX_SHARE] = -np.inf
    return np.argmax(lq, axis=1)


def demo_employment(rng, W, X: pd.DataFrame, totals0: np.ndarray, log_base: np.ndarray,
                    base_share: np.ndarray, growth0: np.ndarray, shock: np.ndarray,
                    absorption: np.ndarray):
    """(employment (n, T, K), final truth, targets frame, shaping record).

    The record's ``simulator_seed`` reproduces the targets: ``simulate_system(W, truth,
    seed=simulator_seed, exogenous=X)`` (the ER shift changes intercepts only, not the errors).

    ``log_base`` (n, T, K) base log shares, ``growth0`` (T−1, K) national industry growth rates
    (first guess; the shaped cube has its own), ``shock`` (T−1,) 1 in the national shock
    transitions, ``absorption`` (n,) standardised shock absorption.
    """
    n, T, K = log_base.shape
    seed = int(rng.integers(2 ** 31 - MAX_REDRAWS))
    signature = signature_industries(log_base[:, 0], base_share)
    national = (np.exp(log_base) * totals0[:, None, None]).sum(axis=0)
    national /= national.sum(axis=1, keepdims=True)
    shares0 = np.exp(log_base[:, :-1])
    shares0 /= shares0.sum(axis=2, keepdims=True)
    mix_growth = np.einsum("rtk,tk->rt", shares0, growth0)
    level = (base_share[None, :] * growth0).sum(axis=1)
    for draw in range(MAX_REDRAWS):
        truth, targets = draw_targets(W, X, seed, draw)
        pss, psd = yearly_paths(rng, targets, T)
        deviation = er_deviation(rng, mix_growth, shock, absorption)
        if not _admissible(pss, psd, national, log_base, signature):
            continue
        try:
            shaped = shape_employment(totals0, log_base, signature, pss, psd,
                                      targets["ER"].to_numpy(), deviation, level, growth0)
            break
        except InfeasibleTargets:  # outside the family at the shaped national shares
            continue
    else:
        raise InputError(f"demo: no admissible draw of the index targets in {MAX_REDRAWS} tries")
    truth = demo_system.shift_er(truth, shaped.delta)
    targets = targets.assign(ER=targets["ER"] + shaped.delta)
    record = {"draw": draw, "simulator_seed": seed + draw, "er_shift": shaped.delta,
              "shaping_passes": shaped.iterations}
    return shaped.employment, truth, targets, record
