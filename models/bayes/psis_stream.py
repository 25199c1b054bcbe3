"""PSIS-LOO from log-likelihood draws streamed in chunks: exact, memory O(n·M), no n × S array.

Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao & Gabry 2024, "Pareto
smoothed importance sampling", JMLR 25(72); Vehtari, Gelman & Gabry 2017, Statistics and
Computing 27) as ArviZ implements it (``arviz.psislw`` / ``arviz.loo``). For city i with S draws
of ℓ_s = log p(y_i | y_−i, θ_s) and log ratios r_s = −ℓ_s, x_s = r_s − max r:

* the tail is the x_s above x_cut = max(M+1-th largest x, log(tiny)), M = ⌈min(S/5, 3√(S/r_eff))⌉;
  a generalised Pareto fit (Zhang & Stephens 2009, with ArviZ's weak prior) to the tail's
  exp(x) − exp(x_cut) gives the shape k̂ (the reported ``pareto_k``) and replaces the tail by
  the fitted quantiles x̃_t (truncated at 0); with ≤ 4 tail draws k̂ = ∞ and nothing is smoothed;
* elpd_i = log Σ_s exp(x̃_s + ℓ_s) − log Σ_s exp(x̃_s), and x̃_s + ℓ_s = −max r off the tail, so

      elpd_i = −max r + log(N_body + Σ_tail e^{x̃_t − x_t}) − log(Σ_body e^{x_s} + Σ_tail e^{x̃_t}),

* lppd_i = log Σ_s e^{ℓ_s} − log S and p_loo,i = lppd_i − elpd_i.

So PSIS needs per city only the M+1 largest log ratios, the running log-sum-exp of r and of ℓ
and the count: :class:`StreamedLoo` keeps exactly these while chunks of draws arrive (a partial
sort of the kept values and a buffer of new draws each time the buffer fills), so memory is
(M + 1 + buffer) × n numbers whatever S.
The body sum is the total minus the raw tail sum (absolute error ≈ 1e-16 of the total, far below
the elpd's Monte Carlo error). The generalised Pareto fit is vectorised over cities with a full
tail (the generic case); cities with ties at the cut or a cut at log(tiny) get the same fit
alone, on a tail of their own length (the tests compare with ``arviz.loo`` on every path).
Hand-written because ArviZ's PSIS needs all S × n values in memory at once.
"""

from __future__ import annotations

import numpy as np

CUTOFF_MIN = float(np.log(np.finfo(float).tiny))
_EPS = float(np.finfo(float).eps)
# Cap on the entries of the (cities × grid × tail) array of one vectorised Pareto fit.
_FIT_ENTRIES = 1_000_000
# Entries of one block of cities in the merge and the smoothing (≈ 8 MB of float64).
_BLOCK_ENTRIES = 1_000_000
# Cap on the draws × cities of log densities buffered before a merge (default buffer).
_BUFFER_ENTRIES = 20_000_000


def tail_length(n_samples: int, reff: float) -> int:
    """M = ⌈min(S/5, 3 √(S / r_eff))⌉, the tail size ArviZ's ``psislw`` fits."""
    return int(np.ceil(min(n_samples / 5.0, 3 * (n_samples / reff) ** 0.5)))


def _gpdfit_rows(ary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ's ``_gpdfit`` (Zhang & Stephens 2009 empirical Bayes with a weak prior on k) applied
    to every row of ``ary`` (rows sorted ascending, all of one length); returns (k, sigma)."""
    prior_bs, prior_k = 3, 10
    rows, n = ary.shape
    m_est = 30 + int(n ** 0.5)
    grid = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    b_ary = grid[None, :] / (prior_bs * ary[:, int(n / 4 + 0.5) - 1])[:, None]
    b_ary = b_ary + (1 / ary[:, -1])[:, None]
    k_ary = np.log1p(-b_ary[:, :, None] * ary[:, None, :]).mean(axis=2)
    len_scale = n * (np.log(-(b_ary / k_ary)) - k_ary - 1)
    weights = 1 / np.exp(len_scale[:, None, :] - len_scale[:, :, None]).sum(axis=2)
    weights = np.where(weights >= 10 * _EPS, weights, 0.0)  # ArviZ drops negligible weights
    weights /= weights.sum(axis=1, keepdims=True)
    b_post = (b_ary * weights).sum(axis=1)
    k_post = np.log1p(-b_post[:, None] * ary).mean(axis=1)
    sigma = -k_post / b_post
    return (n * k_post + prior_k * 0.5) / (n + prior_k), sigma


def _gpinv_rows(probs: np.ndarray, kappa: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Generalised Pareto quantiles at ``probs`` (all in (0, 1)) for each row's (k, σ); NaN
    where σ ≤ 0, as ArviZ's ``_gpinv``."""
    small = np.abs(kappa) < _EPS
    safe = np.where(small, 1.0, kappa)[:, None]
    q = np.where(small[:, None], -np.log1p(-probs)[None, :],
                 np.expm1(-safe * np.log1p(-probs)[None, :]) / safe)
    q = q * sigma[:, None]
    q[sigma <= 0] = np.nan
    return q


def _fit_tails(x_tail: np.ndarray, xcut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """k̂ and the smoothed values of tails of one length: ``x_tail`` (rows, m) ascending above
    their cuts ``xcut`` (rows,). The fitted quantiles are truncated at 0, as ArviZ truncates at
    the largest raw weight; rows whose fit is not finite get NaN values (the caller keeps x)."""
    cut = np.exp(xcut)[:, None]
    k, sigma = _gpdfit_rows(np.exp(x_tail) - cut)
    m = x_tail.shape[1]
    fitted = np.log(_gpinv_rows(np.arange(0.5, m) / m, k, sigma) + cut)
    return k, np.where(fitted > 0, 0.0, fitted)


def smooth_tails(x_sorted: np.ndarray, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pareto-smooth the tails of the kept log ratios.

    ``x_sorted``: (n, M+1) the M+1 largest x = r − max r of each city, ascending (last = 0).
    Returns (tail mask (n, M+1), smoothed values x̃ (n, M+1; equal to x off the tail or when
    the fit is not finite), k̂ (n,))."""
    n = x_sorted.shape[0]
    xcut = np.maximum(x_sorted[:, 0], CUTOFF_MIN)
    tail = x_sorted > xcut[:, None]
    tail_len = tail.sum(axis=1)
    smoothed = x_sorted.copy()
    k = np.full(n, np.inf)
    regular = np.flatnonzero(tail_len == M) if M > 4 else np.array([], dtype=int)
    step = max(1, _FIT_ENTRIES // max(1, (30 + int(M ** 0.5)) * M))
    for start in range(0, regular.size, step):
        rows = regular[start:start + step]
        k[rows], fitted = _fit_tails(x_sorted[rows, 1:], xcut[rows])
        ok = np.isfinite(k[rows])
        smoothed[rows[ok], 1:] = fitted[ok]
    for i in np.flatnonzero((tail_len != M) & (tail_len > 4)):
        # ties at the cut or a cut at log(tiny): a tail of its own length, fitted alone
        t = np.flatnonzero(tail[i])
        ki, fitted = _fit_tails(x_sorted[i, t][None, :], xcut[i:i + 1])
        k[i] = ki[0]
        if np.isfinite(ki[0]):
            smoothed[i, t] = fitted[0]
    return tail, smoothed, k


class StreamedLoo:
    """Accumulate chunks of pointwise log-likelihood draws; :meth:`result` gives exact PSIS-LOO.

    ``StreamedLoo(n, n_samples, reff)``, then ``add(block)`` with (s, n) blocks of draws (any
    order, S draws in all), then ``result()``. Equal to ``arviz.loo(..., reff=reff)`` on the
    full (S, n) array up to rounding (see the module docstring).

    Memory: one (n, keep + buffer) array, allocated once and reused (keep = M + 1 kept log
    ratios per city, buffer ≥ keep pending draws; by default 4 · keep, capped so the buffer
    holds at most 2·10⁷ numbers), so merging costs O(n·S) in all; the merge
    and the final smoothing run over blocks of cities so that no other large temporary is made
    (fresh large arrays cost page faults that dominated the run time on the benchmark machine).
    """

    def __init__(self, n: int, n_samples: int, reff: float, buffer: int | None = None):
        self.n, self.S, self.reff = int(n), int(n_samples), float(reff)
        self.M = tail_length(self.S, self.reff)
        self.keep = min(self.M + 1, self.S)
        if buffer is None:
            # four tails' worth of pending draws, at most _BUFFER_ENTRIES numbers in all
            buffer = min(4 * self.keep, _BUFFER_ENTRIES // max(1, self.n))
        self.buffer = max(self.keep, int(buffer), 1)
        self._buf = np.full((self.n, self.keep + self.buffer), -np.inf)
        self._fill = 0
        self.r_max = np.full(self.n, -np.inf)
        self.r_sum = np.zeros(self.n)
        self.l_max = np.full(self.n, -np.inf)
        self.l_sum = np.zeros(self.n)
        self.seen = 0
        self._rows = max(1, _BLOCK_ENTRIES // (self.keep + self.buffer))

    @staticmethod
    def _accumulate(m, total, values):
        """Running log-sum-exp over axis 0 of ``values`` (s, n): total · e^m = Σ e^values."""
        new = np.maximum(m, values.max(axis=0))
        with np.errstate(invalid="ignore"):
            scale = np.where(np.isneginf(m), 0.0, np.exp(m - new))
        e = values - new
        np.exp(e, out=e)
        return new, total * scale + e.sum(axis=0)

    def add(self, block: np.ndarray) -> None:
        """Take (s, n) log-likelihood draws (s draws of every city)."""
        ll = np.asarray(block, dtype=float)
        if ll.ndim != 2 or ll.shape[1] != self.n:
            raise ValueError(f"block must be (draws, {self.n}), got {ll.shape}")
        if self.seen + ll.shape[0] > self.S:
            raise ValueError(f"more than the announced {self.S} draws")
        self.l_max, self.l_sum = self._accumulate(self.l_max, self.l_sum, ll)
        self.r_max, self.r_sum = self._accumulate(self.r_max, self.r_sum, -ll)
        done = 0
        while done < ll.shape[0]:
            take = min(ll.shape[0] - done, self.buffer - self._fill)
            cols = slice(self.keep + self._fill, self.keep + self._fill + take)
            np.negative(ll[done:done + take].T, out=self._buf[:, cols])
            self._fill += take
            done += take
            if self._fill == self.buffer:
                self._merge()
        self.seen += ll.shape[0]

    def _merge(self) -> None:
        """Keep the ``keep`` largest log ratios of every city in the first columns."""
        width = self.keep + self._fill
        for start in range(0, self.n, self._rows):
            rows = slice(start, start + self._rows)
            part = np.partition(self._buf[rows, :width], width - self.keep, axis=1)
            self._buf[rows, :self.keep] = part[:, width - self.keep:]
        self._fill = 0

    def result(self) -> dict:
        """Per-city ``elpd_i``, ``p_loo_i``, ``pareto_k`` (arrays) and the totals ``elpd_loo``,
        ``se`` = √(n·var_i elpd_i), ``p_loo``, with ``n_samples``, ``reff``, ``good_k`` and
        ``warning`` (some k̂ above good_k = min(1 − 1/log10 S, 0.7)), as ``arviz.loo``."""
        if self.seen != self.S:
            raise ValueError(f"{self.seen} of the announced {self.S} draws were added")
        if self._fill:
            self._merge()
        elpd, k = np.empty(self.n), np.empty(self.n)
        for start in range(0, self.n, self._rows):
            rows = slice(start, start + self._rows)
            elpd[rows], k[rows] = self._elpd(rows)
        lppd = self.l_max + np.log(self.l_sum) - np.log(self.S)
        good_k = min(1 - 1 / np.log10(self.S), 0.7)
        return {"elpd_i": elpd, "p_loo_i": lppd - elpd, "pareto_k": k,
                "elpd_loo": float(elpd.sum()), "se": float((self.n * np.var(elpd)) ** 0.5),
                "p_loo": float(lppd.sum() - elpd.sum()), "n_samples": self.S,
                "reff": self.reff, "good_k": float(good_k),
                "warning": bool(np.any(k > good_k))}

    def _elpd(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """elpd_i and k̂ of a block of cities from their kept log ratios and running sums."""
        top = np.sort(self._buf[rows, :self.keep], axis=1)
        r_max = top[:, -1]
        x = top - r_max[:, None]
        tail, smoothed, k = smooth_tails(x, self.M)
        raw_tail = np.where(tail, np.exp(x), 0.0).sum(axis=1)
        body = np.maximum(self.r_sum[rows] * np.exp(self.r_max[rows] - r_max) - raw_tail, 0.0)
        n_body = self.S - tail.sum(axis=1)
        with np.errstate(over="ignore"):
            ratio = np.where(tail, np.exp(smoothed - x), 0.0).sum(axis=1)
        elpd = (-r_max + np.log(n_body + ratio)
                - np.log(body + np.where(tail, np.exp(smoothed), 0.0).sum(axis=1)))
        return elpd, k
