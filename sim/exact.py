"""Exact aggregator math: plurality (majority) vote and best-of-N.

Majority vote (paper Eq. 2): N i.i.d. answers from a categorical law ``pi`` over C answers, the
answer with the largest count wins; when the correct answer is one of ``t`` tied leaders the
credit is ``1/t`` (``tie="random"``, the paper's rule) or 0 (``tie="pessimistic"``).

Best-of-N (paper Eq. 1): the expected maximum of N i.i.d. draws of a discrete reward law is
``sum_y y * (F(y)^N - F(y^-)^N)`` (Beirami et al. 2024; theory.md Sec. 1.3), and for continuous laws
``E[M_N] = int_0^inf (1 - F^N) - int_-inf^0 F^N`` (theory.md Sec. 6).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy import integrate, stats

from ._validate import check_n, check_probs, check_tie

__all__ = [
    "mv_accuracy",
    "mv_accuracy_binary",
    "bon_expected_max",
    "bon_expected_max_continuous",
]


@njit(cache=True)
def _binom_table(r: float, n_max: int) -> np.ndarray:
    """``B[s, k] = P(Binomial(s, r) = k)`` for ``0 <= k <= s <= n_max``.

    Built by Pascal's rule ``B[s, k] = (1 - r) B[s-1, k] + r B[s-1, k-1]``: every entry is a sum
    of non-negative terms, so the relative rounding error is at most about ``s`` machine epsilons
    (no cancellation, no ``lgamma``/``exp`` of large arguments) and tiny entries underflow to 0.
    """
    out = np.zeros((n_max + 1, n_max + 1))
    out[0, 0] = 1.0
    r1 = 1.0 - r
    for s in range(1, n_max + 1):
        prev = out[s - 1]
        row = out[s]
        row[0] = r1 * prev[0]
        for k in range(1, s + 1):
            row[k] = r1 * prev[k] + r * prev[k - 1]
    return out


@njit(cache=True)
def _plurality_row(q: float, wrong: np.ndarray, n_max: int, tie: int, out: np.ndarray) -> None:
    """Exact P(correct answer wins) for N = 1..n_max for one answer law (theory.md Sec. 1.2).

    ``q`` is the probability of the correct answer, ``wrong`` the (non-zero) probabilities of the
    wrong answers. Conditioning on the count ``c`` of the correct answer, the remaining ``N - c``
    votes are allocated to the wrong answers by stick-breaking binomials; the DP state is
    (votes allocated so far ``s``, number ``t`` of wrong answers whose count equals ``c``), and
    counts above ``c`` are forbidden. One DP per ``c`` yields every N at once.
    Writes ``out[N - 1]``.
    """
    out[:] = 0.0
    if q <= 0.0:
        return
    m = wrong.shape[0]
    if m == 0:
        out[:] = 1.0
        return
    bq = _binom_table(q, n_max)  # bq[N, c] = P(count of correct = c | N)
    tables = np.empty((m, n_max + 1, n_max + 1))
    cum = 0.0
    for j in range(m):
        cum += wrong[j]
        tables[j] = _binom_table(wrong[j] / cum, n_max)
    credit = np.zeros(m + 1)
    for t in range(m + 1):
        if tie == 0:
            credit[t] = 1.0 / (1.0 + t)
        elif t == 0:
            credit[t] = 1.0
    g = np.zeros((n_max + 1, m + 1))
    g_new = np.zeros((n_max + 1, m + 1))
    for c in range(1, n_max + 1):
        r_max = n_max - c
        g[: r_max + 1, :] = 0.0
        # first wrong answer takes every vote allocated so far
        for s in range(min(c, r_max) + 1):
            g[s, 1 if s == c else 0] = 1.0
        for j in range(1, m):
            tab = tables[j]
            g_new[: r_max + 1, :] = 0.0
            for s in range(r_max + 1):
                for k in range(min(c, s) + 1):
                    b = tab[s, k]
                    if b == 0.0:
                        continue
                    hit = 1 if k == c else 0
                    for t in range(m + 1 - hit):
                        v = g[s - k, t]
                        if v != 0.0:
                            g_new[s, t + hit] += b * v
            g[: r_max + 1, :] = g_new[: r_max + 1, :]
        for n in range(c, n_max + 1):
            w = 0.0
            for t in range(m + 1):
                w += g[n - c, t] * credit[t]
            out[n - 1] += bq[n, c] * w


@njit(cache=True, parallel=True)
def _plurality_rows(q: np.ndarray, wrong: np.ndarray, n_wrong: np.ndarray, n_max: int, tie: int):
    """Kernel: exact plurality accuracy for many canonical rows; ``out[row, N - 1]``."""
    rows = q.shape[0]
    out = np.zeros((rows, n_max))
    for i in prange(rows):
        _plurality_row(q[i], wrong[i, : n_wrong[i]], n_max, tie, out[i])
    return out


@njit(cache=True)
def _plurality_rows_serial(q, wrong, n_wrong, n_max, tie):
    """Serial twin of :func:`_plurality_rows` for small jobs (rows are independent, so both give
    identical results); it avoids the cost of starting a parallel region, which on a busy machine
    can exceed the work itself."""
    out = np.zeros((q.shape[0], n_max))
    for i in range(q.shape[0]):
        _plurality_row(q[i], wrong[i, : n_wrong[i]], n_max, tie, out[i])
    return out


#: Estimated DP operations (rows × (m+1)^2 × N^3) above which the rows are spread over threads.
PARALLEL_WORK = 2e7


def _canonical_rows(probs: np.ndarray, correct: np.ndarray):
    """Reduce answer laws to (q, wrong probabilities sorted descending), deduplicated.

    Relabelling the wrong answers does not change the vote, so rows equal up to a permutation of
    wrong answers share one DP. Returns ``q, wrong, n_wrong, inverse``.
    """
    n_rows, n_ans = probs.shape
    q = probs[np.arange(n_rows), correct]
    mask = np.ones_like(probs, dtype=bool)
    mask[np.arange(n_rows), correct] = False
    wrong = -np.sort(-probs[mask].reshape(n_rows, n_ans - 1), axis=1)
    key = np.concatenate([q[:, None], wrong], axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    uq = np.ascontiguousarray(uniq[:, 0])
    uw = np.ascontiguousarray(uniq[:, 1:])
    n_wrong = (uw > 0).sum(axis=1).astype(np.int64)
    return uq, uw, n_wrong, inverse.ravel()


def _check_correct(correct, probs_shape) -> np.ndarray:
    """Validate correct-answer indices against answer laws of shape ``probs_shape`` (..., C);
    returns them broadcast to ``probs_shape[:-1]``."""
    n_ans = probs_shape[-1]
    corr = np.asarray(correct)
    if not np.issubdtype(corr.dtype, np.integer):
        raise ValueError(f"correct must be integer answer indices in [0, {n_ans - 1}]")
    if np.any(corr < 0) or np.any(corr >= n_ans):
        raise ValueError(f"correct must be in [0, {n_ans - 1}] (C = {n_ans} answers)")
    try:
        return np.broadcast_to(corr, probs_shape[:-1])
    except ValueError:
        raise ValueError(
            f"correct must broadcast to probs.shape[:-1] = {probs_shape[:-1]}; got shape "
            f"{corr.shape}"
        ) from None


def mv_accuracy(probs, correct, n, tie: str = "random") -> np.ndarray:
    """Exact probability that plurality voting over ``n`` answers is correct.

    Parameters
    ----------
    probs : array_like, shape (..., C)
        Answer law of each query: ``probs[..., a]`` is the probability that one completion
        answers ``a``. Entries non-negative, each vector summing to 1 within ``1e-8``.
    correct : int or array_like of int
        Index of the correct answer, broadcastable to ``probs.shape[:-1]``.
    n : int or sequence of int
        Number of votes N >= 1.
    tie : {"random", "pessimistic"}
        ``"random"``: the correct answer among ``t`` tied leaders earns ``1/t`` (the paper's rule,
        Eq. 2, equal in expectation to a uniform tie-break or to first-occurrence ``Counter``
        voting). ``"pessimistic"``: a tie earns 0.

    Returns
    -------
    ndarray
        Shape ``probs.shape[:-1]`` for a scalar ``n``, else ``probs.shape[:-1] + (len(n),)``.

    Notes
    -----
    Exact DP of theory.md Sec. 1.2 (condition on the correct answer's count, stick-breaking
    binomials over the wrong answers). One call computes every N up to ``max(n)``; the cost per
    distinct law is ``O(m^2 N^3)`` with ``m`` the number of wrong answers with positive mass.
    All intermediate quantities are probabilities (sums of non-negative terms, binomial tables by
    Pascal's rule), so the result is stable to N = 1000 and beyond: the binary case agrees with
    the incomplete-beta closed form to a few 1e-15 there.

    Examples
    --------
    >>> from sim import mv_accuracy
    >>> mv_accuracy([0.4, 0.3, 0.3], 0, [1, 2, 3, 4]).round(4)
    array([0.4   , 0.4   , 0.424 , 0.4384])
    """
    p = check_probs(probs, "probs")
    n_ans = p.shape[-1]
    corr = _check_correct(correct, p.shape)
    ns, scalar = check_n(n)
    tie_code = check_tie(tie)
    n_top = int(ns.max())
    flat = p.reshape(-1, n_ans)
    uq, uw, n_wrong, inverse = _canonical_rows(flat, corr.reshape(-1).astype(np.int64))
    work = uq.size * (uw.shape[1] + 1) ** 2 * float(n_top) ** 3
    kernel = _plurality_rows if work >= PARALLEL_WORK else _plurality_rows_serial
    # every term of the DP is non-negative; only rounding (a few ulp) can push a sum past 1
    table = np.minimum(kernel(uq, uw, n_wrong, n_top, tie_code), 1.0)
    res = table[inverse][:, ns - 1].reshape(p.shape[:-1] + (ns.size,))
    return res[..., 0] if scalar else res


def mv_accuracy_binary(q, n) -> np.ndarray:
    """Closed-form binary majority vote with fair-coin ties (theory.md Sec. 1.1).

    ``Acc(q, 2m+1) = I_q(m+1, m+1)`` (regularised incomplete beta) and ``Acc(q, 2m) =
    Acc(q, 2m-1)``. Broadcasts ``q`` against ``n``.
    """
    from scipy.special import betainc

    qq = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(qq)) or np.any((qq < 0) | (qq > 1)):
        raise ValueError("q must be in [0, 1]")
    ns, scalar = check_n(n)
    odd = ns - (ns % 2 == 0)  # even N -> N - 1
    a = (odd + 1) / 2.0
    res = betainc(a, a, qq[..., None])
    return res[..., 0] if scalar else res


def _check_outcomes(values, probs):
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1 or v.shape[-1] < 1:
        raise ValueError(f"values must have a non-empty last axis; got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite (no NaN or inf)")
    p = check_probs(probs, "probs")
    if p.shape != v.shape:
        raise ValueError(f"probs must have the shape of values {v.shape}; got {p.shape}")
    return v, p


def bon_expected_max(values, probs, n) -> np.ndarray:
    """Exact expected maximum of ``n`` i.i.d. draws of a discrete reward law.

    Parameters
    ----------
    values : array_like, shape (..., M)
        Reward of each outcome (already scalarised: ``sum_k w_k O_k``).
    probs : array_like, shape (..., M)
        Probability of each outcome; each vector sums to 1 within ``1e-8``.
    n : int or sequence of int
        Number of draws N >= 1.

    Returns
    -------
    ndarray
        Shape ``values.shape[:-1]`` for a scalar ``n``, else with a trailing axis ``len(n)``.

    Notes
    -----
    ``E[max] = sum_i y_(i) (F_i^N - F_{i-1}^N)`` over outcomes sorted by reward, with ``F_i`` the
    cumulative probability (Beirami et al. 2024, ``pi_bon(y) = F(y)^N - F(y^-)^N``); tied rewards
    telescope, so ties need no special handling. Non-decreasing and concave in N.
    """
    v, p = _check_outcomes(values, probs)
    ns, scalar = check_n(n)
    order = np.argsort(v, axis=-1, kind="stable")
    vs = np.take_along_axis(v, order, axis=-1)
    cdf = np.cumsum(np.take_along_axis(p, order, axis=-1), axis=-1)
    cdf = np.minimum(cdf / cdf[..., -1:], 1.0)
    prev = np.concatenate([np.zeros_like(cdf[..., :1]), cdf[..., :-1]], axis=-1)
    powers = cdf[..., None] ** ns - prev[..., None] ** ns  # (..., M, len(n))
    res = np.einsum("...m,...mk->...k", vs, powers)
    return res[..., 0] if scalar else res


@njit(cache=True)
def _bon_curve_rows(svals: np.ndarray, probs: np.ndarray, out: np.ndarray) -> None:
    """Exact E[max of N] of each row of ``svals`` (X, M) with laws ``probs`` (X, M) for
    N = 1..n_max into ``out`` (X, n_max).

    Per row the outcomes are sorted once and, by Abel summation of ``sum_i y_i (F_i^N -
    F_{i-1}^N)`` (the formula of :func:`bon_expected_max`, its oracle in the tests),
    ``E[M_N] = y_M - sum_{i<M} (y_{i+1} - y_i) F_i^N``: gaps between tied rewards and levels with
    ``F_i = 0`` drop out, and ``F_i^N`` is carried from one N to the next by a product, so all N
    cost ``O(M n_max)`` after the sort.
    """
    n_x, m = svals.shape
    n_max = out.shape[1]
    order = np.empty(m, np.int64)
    v = np.empty(m)
    f = np.empty(m)
    for x in range(n_x):
        vals = svals[x]
        pr = probs[x]
        if m <= 32:  # stable insertion sort: no allocation per row
            for i in range(m):
                j = i
                while j > 0 and vals[order[j - 1]] > vals[i]:
                    order[j] = order[j - 1]
                    j -= 1
                order[j] = i
        else:
            order[:] = np.argsort(vals, kind="mergesort")
        cum = 0.0
        for i in range(m):
            v[i] = vals[order[i]]
            cum += pr[order[i]]
            f[i] = cum
        o = out[x]
        o[:] = v[m - 1]
        for i in range(m - 1):
            gap = v[i + 1] - v[i]
            fi = min(f[i] / cum, 1.0)
            if gap == 0.0 or fi == 0.0:
                continue
            pw = fi
            for n in range(n_max):
                o[n] -= gap * pw
                pw *= fi


@njit(cache=True, parallel=True)
def _bon_curves_parallel(svals, probs, n_max):
    n_ctx, n_p, n_x, _ = svals.shape
    out = np.empty((n_ctx, n_p, n_x, n_max))
    for cp in prange(n_ctx * n_p):
        c, p = cp // n_p, cp % n_p
        _bon_curve_rows(svals[c, p], probs[p], out[c, p])
    return out


@njit(cache=True)
def _bon_curves_serial(svals, probs, n_max):
    n_ctx, n_p, n_x, _ = svals.shape
    out = np.empty((n_ctx, n_p, n_x, n_max))
    for c in range(n_ctx):
        for p in range(n_p):
            _bon_curve_rows(svals[c, p], probs[p], out[c, p])
    return out


def _bon_curves(svals: np.ndarray, probs: np.ndarray, n_max: int) -> np.ndarray:
    """Exact E[max of N] for every context, prompt, query and N = 1..n_max.

    ``svals`` is (CX, P, X, M) (scalarised rewards), ``probs`` (P, X, M) (validated laws); returns
    ``out[c, p, x, N-1]``. Large jobs spread the (context, prompt) blocks over threads; rows are
    independent, so the result does not depend on the number of threads.
    """
    work = svals.size * float(n_max)
    kernel = _bon_curves_parallel if work >= PARALLEL_WORK else _bon_curves_serial
    return kernel(svals, probs, n_max)


def bon_expected_max_continuous(dist, n) -> np.ndarray:
    """Expected maximum of ``n`` i.i.d. draws of a continuous reward law, by quadrature.

    Parameters
    ----------
    dist : scipy.stats frozen continuous distribution
        For example ``scipy.stats.norm()``, ``scipy.stats.beta(2, 5)``, ``scipy.stats.gumbel_r()``.
    n : int or sequence of int

    Notes
    -----
    ``E[M_N] = int_0^inf (1 - F(x)^N) dx - int_-inf^0 F(x)^N dx`` (theory.md Sec. 6), with
    ``F^N = exp(N log F)`` and ``1 - F^N = -expm1(N log F)`` for accuracy in the tails.
    Reference values: N(0,1) gives 0.5642, 1.0294, 1.5388, 3.2414 at N = 2, 4, 10, 1000.
    """
    if not hasattr(dist, "logcdf") or not hasattr(dist, "support"):
        raise ValueError("dist must be a frozen scipy.stats continuous distribution")
    ns, scalar = check_n(n)
    lo, hi = dist.support()
    res = np.empty(ns.size)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        # logcdf may overflow to -inf far in the left tail (e.g. Gumbel's -exp(-x)): F^N = 0 there
        for i, k in enumerate(ns):
            res[i] = _continuous_max(dist, int(k), lo, hi)
    return res[0] if scalar else res


def _continuous_max(dist, k: int, lo: float, hi: float) -> float:
    """``E[M_k]`` for one ``k`` (see :func:`bon_expected_max_continuous`)."""

    def upper(x):
        return -np.expm1(k * dist.logcdf(x))

    def lower(x):
        return np.exp(k * dist.logcdf(x))

    total = 0.0
    if hi > 0:
        a = max(lo, 0.0)
        # split at the median of the maximum to help quad with peaked integrands
        mid = float(dist.ppf(0.5 ** (1.0 / k)))
        pts = [a, mid, hi] if a < mid < hi else [a, hi]
        total += sum(
            integrate.quad(upper, pts[j], pts[j + 1], limit=200, epsabs=1e-12)[0]
            for j in range(len(pts) - 1)
        )
    if lo < 0:
        b = min(hi, 0.0)
        total -= integrate.quad(lower, lo, b, limit=200, epsabs=1e-12)[0]
    if lo > 0:
        total += lo
    return total


#: Continuous reward families available by name for theory and figures.
CONTINUOUS_FAMILIES = {
    "gaussian": lambda loc=0.0, scale=1.0: stats.norm(loc, scale),
    "beta": lambda a=2.0, b=5.0: stats.beta(a, b),
    "gumbel": lambda loc=0.0, scale=1.0: stats.gumbel_r(loc, scale),
}
