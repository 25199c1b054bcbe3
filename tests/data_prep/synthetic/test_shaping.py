"""The inverse problem of the demo: shares and totals whose indices are given targets.

Every check recomputes the indices from the produced employment with the written-out formulas
of docs/method.md §1 (independent of data_prep.indices) or with the pipeline's own functions.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from data_prep import indices
from data_prep.errors import InputError
from data_prep.synthetic.shaping import (InfeasibleTargets, balance_er, entropy_range, shape_employment,
                               signature_shares)

K = 8
BASE = np.array([0.30, 0.20, 0.15, 0.12, 0.09, 0.07, 0.04, 0.03])


def entropy(s):
    return -(s * np.log(s)).sum(axis=-1)


def test_signature_shares_hit_pss_and_psd_exactly():
    rng = np.random.default_rng(1)
    R = 400
    national = np.tile(BASE, (R, 1))
    log_base = np.log(BASE)[None] + 0.4 * rng.standard_normal((R, K))
    signature = rng.integers(4, K, R)
    pss = rng.uniform(1.6, 3.5, R)
    low, high = entropy_range(pss, national, log_base, signature)
    psd = low + rng.uniform(0.05, 0.95, R) * (high - low)
    shares, beta, infeasible = signature_shares(pss, psd, national, log_base, signature)
    assert not infeasible.any()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_allclose((shares / national).max(axis=1), pss, rtol=1e-13)
    np.testing.assert_allclose(entropy(shares), psd, atol=1e-12)
    assert (shares > 0).all() and (beta >= 0).all()


def test_entropy_range_ends_and_infeasible_rows_are_flagged():
    national = np.tile(BASE, (3, 1))
    log_base = np.tile(np.log(BASE), (3, 1))
    pss, signature = np.array([1.5, 2.0, 3.0]), np.array([7, 7, 7])
    low, high = entropy_range(pss, national, log_base, signature)
    # the top is the water-filling s_i = min(PSS·S_i, λ) (maximum entropy given the caps)
    for p, h in zip(pss, high):
        caps = p * BASE
        lam = np.linspace(0, 1, 200001)
        filled = np.minimum(caps[None, :-1], lam[:, None]).sum(axis=1) + caps[-1]
        best = lam[np.argmin(np.abs(filled - 1.0))]
        s = np.append(np.minimum(caps[:-1], best), caps[-1])
        assert h == pytest.approx(entropy(s), abs=1e-4)
    assert (low < high).all()
    _, _, infeasible = signature_shares(pss, high + 0.01, national, log_base, signature)
    assert infeasible.all()


def test_balance_keeps_city_means_and_the_adding_up_identity():
    rng = np.random.default_rng(2)
    n, T1 = 50, 6
    target = rng.normal(1.0, 1.0, n)
    deviation = rng.normal(0, 2, (n, T1))
    deviation -= deviation.mean(axis=1, keepdims=True)
    weights = rng.uniform(0.5, 2.0, (n, T1))
    er, delta = balance_er(target, deviation, weights)
    np.testing.assert_allclose(er.mean(axis=1), target + delta, atol=1e-12)
    np.testing.assert_allclose((er * weights).sum(axis=0), 0.0, atol=1e-10)
    # the balance moves the yearly values by far less than their own scatter
    assert np.abs(er - target[:, None] - delta - deviation).mean() < 0.5


def hand_indices(E):
    """ER (Martin), PSS (largest LQ) and PSD (Shannon) of an (n, T, K) cube, by hand."""
    nat = E.sum(axis=0)
    g = nat[1:] / nat[:-1] - 1
    dC = (E[:, :-1] * g[None]).sum(axis=2)
    dA = E[:, 1:].sum(axis=2) - E[:, :-1].sum(axis=2)
    s = E / E.sum(axis=2, keepdims=True)
    S = nat / nat.sum(axis=1, keepdims=True)
    return (dA - dC) / np.abs(dC), (s / S[None]).max(axis=2), entropy(s)


@pytest.fixture(scope="module")
def small_problem():
    """Targets taken from a random employment cube E0 (so they are attainable), then shaped."""
    rng = np.random.default_rng(3)
    n, T = 60, 5
    growth = np.array([0.02, 0.03, -0.05, 0.04])[:, None] + 0.01 * rng.standard_normal((T - 1, K))
    log_base = np.log(BASE)[None, None] + 0.4 * rng.standard_normal((n, 1, K))
    log_base = log_base + np.concatenate([np.zeros((1, K)), np.cumsum(growth, axis=0)])[None]
    log_base = log_base + 0.05 * rng.standard_normal((n, T, K))
    totals = np.exp(rng.normal(4, 0.8, n))[:, None] * np.exp(
        np.cumsum(np.c_[np.zeros(n), 0.02 + 0.03 * rng.standard_normal((n, T - 1))], axis=1))
    E0 = totals[:, :, None] * np.exp(log_base) / np.exp(log_base).sum(axis=2, keepdims=True)
    er0, pss, psd = hand_indices(E0)
    S0 = E0.sum(axis=0)[0] / E0.sum(axis=(0, 2))[0]
    signature = np.argmax(E0[:, 0] / E0[:, 0].sum(axis=1, keepdims=True) / S0, axis=1)
    target = er0.mean(axis=1)
    national = E0.sum(axis=(0, 2))
    level = national[1:] / national[:-1] - 1
    shaped = shape_employment(totals[:, 0], log_base, signature, pss, psd, target,
                              er0 - target[:, None], level, growth)
    return shaped, pss, psd, target, totals[:, 0], level, er0


def test_shaped_employment_has_exactly_the_target_indices(small_problem):
    shaped, pss, psd, target, totals0, level, er0 = small_problem
    E = shaped.employment
    er, p, h = hand_indices(E)
    np.testing.assert_allclose(p, pss, rtol=1e-10)
    np.testing.assert_allclose(h, psd, atol=1e-10)
    np.testing.assert_allclose(er, shaped.er, atol=1e-8)
    np.testing.assert_allclose(er.mean(axis=1), target + shaped.delta, atol=1e-8)
    np.testing.assert_allclose(E[:, 0].sum(axis=1), totals0, rtol=1e-12)
    national = E.sum(axis=(0, 2))
    np.testing.assert_allclose(national[1:] / national[:-1] - 1, level, atol=1e-10)
    # E0's ER obeys the adding-up identity with E0's weights; the shaped cube's weights differ a
    # little, so the balance moves the yearly values only slightly
    assert abs(shaped.delta) < 0.05
    assert np.abs(shaped.er - er0).mean() < 0.05 * er0.std()


def test_the_pipeline_computes_the_same_indices(small_problem):
    shaped, pss, psd, *_ = small_problem
    n, T, _ = shaped.employment.shape
    cube = xr.DataArray(shaped.employment, dims=indices.DIMS,
                        coords={"city": [f"c{i}" for i in range(n)], "year": np.arange(T),
                                "industry": [f"i{k}" for k in range(K)]})
    er = indices.sensitivity_index(cube)
    assert not er["ER_flag"].any()
    np.testing.assert_allclose(er["ER"].values[:, :-1], shaped.er, atol=1e-8)
    np.testing.assert_allclose(indices.relative_specialisation(cube).values, pss, rtol=1e-10)
    np.testing.assert_allclose(indices.shannon_diversity(cube).values, psd, atol=1e-10)


def test_impossible_targets_are_refused():
    n, T = 10, 3
    log_base = np.tile(np.log(BASE), (n, T, 1))
    growth = np.full((T - 1, K), 0.02)
    with pytest.raises(InfeasibleTargets, match="outside the share family"):
        shape_employment(np.ones(n), log_base, np.full(n, 7), np.full((n, T), 1.5),
                         np.full((n, T), 2.5), np.zeros(n), np.zeros((n, T - 1)),
                         np.full(T - 1, 0.02), growth)
    with pytest.raises(InputError, match="must exceed 1"):
        signature_shares(np.array([0.9]), np.array([1.0]), BASE[None], np.log(BASE)[None],
                         np.array([7]))
