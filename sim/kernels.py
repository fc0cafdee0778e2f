"""Numba kernels: drawing completions and aggregating them (majority vote, best-of-N).

Randomness never enters a kernel: the Python layer draws uniforms (or multinomial counts) from a
:class:`numpy.random.Generator` and the kernels consume them, so a kernel is a pure function of its
arrays (QuantEcon's pattern). Kernels are serial; results cannot depend on the thread count.

Block reuse (mission.md Sec. 2): a pull of N completions yields ``floor(N/k)`` disjoint consecutive
blocks ``draws[j*k:(j+1)*k]`` for every sub-scale ``k <= N``; each block is aggregated on its own.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _draw(cdf_row, u):
    """Inverse-CDF draw of a categorical law from one uniform (linear search, C is small)."""
    last = cdf_row.shape[0] - 1
    for i in range(last):
        if u < cdf_row[i]:
            return i
    return last


@njit(cache=True)
def _vote_credit(counts, correct, tie):
    """Majority-vote credit of a count vector (paper Eq. 2): 1/t or, pessimistic, 1{t = 1}."""
    top = counts[0]
    for a in range(1, counts.shape[0]):
        if counts[a] > top:
            top = counts[a]
    if counts[correct] != top:
        return 0.0
    t = 0
    for a in range(counts.shape[0]):
        if counts[a] == top:
            t += 1
    if tie == 0:
        return 1.0 / t
    return 1.0 if t == 1 else 0.0


@njit(cache=True)
def _pick_query(queries, u):
    i = int(u * queries.shape[0])
    return queries[min(i, queries.shape[0] - 1)]


@njit(cache=True)
def _block_credit(answers, start, k, correct, buf, tie):
    buf[:] = 0
    for i in range(start, start + k):
        buf[answers[i]] += 1
    return _vote_credit(buf, correct, tie)


@njit(cache=True, inline="always")
def _tie_credit(t, tie):
    """Credit of the correct answer when it is one of ``t`` tied leaders."""
    if tie == 0:
        return 1.0 / t
    return 1.0 if t == 1 else 0.0


@njit(cache=True, inline="always")
def _add_vote(counts, a, top, t):
    """Count one more vote for answer ``a``; returns the new leading count and the number of
    answers at it (``top``, ``t`` before the vote)."""
    v = counts[a] + 1
    counts[a] = v
    if v > top:
        return v, 1
    if v == top:
        return top, t + 1
    return top, t


@njit(cache=True)
def mv_scale_credits(cdf, correct, queries, p, uq, ud, tie, acc):
    """Accumulate majority-vote credit of every sub-scale block of a batch of pulls.

    Parameters
    ----------
    cdf : (P, X, C) cumulative answer laws; correct : (X,); queries : query pool (train split)
    p : prompt; uq : (pulls,) uniforms for the query; ud : (pulls, N) uniforms for the answers
    tie : 0 random (1/t), 1 pessimistic
    acc : (>= N,) float; ``acc[k-1] += sum over pulls and blocks of size k of the credit``
        (per pull, the credits of the blocks ``b = 0, 1, ...`` are summed in that order first).

    Notes
    -----
    Counts grow one answer at a time, so the leading count and the number ``t`` of answers at it
    are tracked incrementally (no scan over the C answers per block). The first block of every
    size ``k`` is the prefix ``answers[:k]``: all N of them come from one pass over the pull, and
    only the blocks ``b >= 1`` (sizes ``k <= N/2``) are counted separately; counts are cleared by
    revisiting the block's answers. This makes the kernel about 3x faster than one count per block
    (theory.md Sec. 1.3: the vote needs only the counts).
    """
    n = ud.shape[1]
    answers = np.empty(n, np.int64)
    counts = np.zeros(cdf.shape[2], np.int64)
    prefix = np.empty(n)
    for j in range(uq.shape[0]):
        x = _pick_query(queries, uq[j])
        row = cdf[p, x]
        c0 = correct[x]
        # draws and the prefix blocks [0, k) for every k
        top = 0
        t = 0
        for i in range(n):
            a = _draw(row, ud[j, i])
            answers[i] = a
            top, t = _add_vote(counts, a, top, t)
            prefix[i] = _tie_credit(t, tie) if counts[c0] == top else 0.0
        for i in range(n):
            counts[answers[i]] = 0
        for k in range(1, n + 1):
            s = prefix[k - 1]
            for start in range(k, n - k + 1, k):
                top = 0
                t = 0
                for i in range(start, start + k):
                    top, t = _add_vote(counts, answers[i], top, t)
                if counts[c0] == top:
                    s += _tie_credit(t, tie)
                for i in range(start, start + k):
                    counts[answers[i]] = 0
            acc[k - 1] += s


@njit(cache=True)
def mv_pull_credits(cdf, correct, queries, p, uq, ud, tie, out):
    """Credit of one vote over all N answers of each pull: ``out[j]``."""
    n = ud.shape[1]
    answers = np.empty(n, np.int64)
    buf = np.zeros(cdf.shape[2], np.int64)
    for j in range(uq.shape[0]):
        x = _pick_query(queries, uq[j])
        row = cdf[p, x]
        for i in range(n):
            answers[i] = _draw(row, ud[j, i])
        out[j] = _block_credit(answers, 0, n, correct[x], buf, tie)


@njit(cache=True)
def bon_scale_maxes(cdf, svals, queries, p, uq, ud, acc):
    """Accumulate best-of-k rewards of every sub-scale block of a batch of pulls.

    ``svals`` is (CX, P, X, M): the scalarised reward of each outcome in each context (the max is
    taken on the weighted reward, Eq. 1). ``acc[c, k-1] += sum over pulls and blocks of size k of
    max_i svals[c, p, x, outcome_i]`` (per pull, blocks ``b = 0, 1, ...`` summed in order first).
    The first block of every size is a prefix, so its maximum is a running maximum.
    """
    n = ud.shape[1]
    n_ctx = svals.shape[0]
    outcomes = np.empty(n, np.int64)
    r = np.empty(n)
    prefix = np.empty(n)
    for j in range(uq.shape[0]):
        x = _pick_query(queries, uq[j])
        row = cdf[p, x]
        for i in range(n):
            outcomes[i] = _draw(row, ud[j, i])
        for c in range(n_ctx):
            vals = svals[c, p, x]
            best = -np.inf
            for i in range(n):
                v = vals[outcomes[i]]
                r[i] = v
                if v > best:
                    best = v
                prefix[i] = best
            for k in range(1, n + 1):
                s = prefix[k - 1]
                for start in range(k, n - k + 1, k):
                    best = r[start]
                    for i in range(start + 1, start + k):
                        if r[i] > best:
                            best = r[i]
                    s += best
                acc[c, k - 1] += s


@njit(cache=True)
def bon_pull_maxes(cdf, svals, queries, p, uq, ud, out):
    """Best-of-N weighted reward of each pull in each context: ``out[j, c]``."""
    n = ud.shape[1]
    for j in range(uq.shape[0]):
        x = _pick_query(queries, uq[j])
        row = cdf[p, x]
        for c in range(svals.shape[0]):
            vals = svals[c, p, x]
            best = -np.inf
            for i in range(n):
                v = vals[_draw(row, ud[j, i])]
                if v > best:
                    best = v
            out[j, c] = best


@njit(cache=True)
def mv_count_credits(counts, correct, tie, out):
    """Credit of each vote-count vector: ``counts`` (T, Q, C), ``correct`` (Q,), ``out`` (T, Q)."""
    for t in range(counts.shape[0]):
        for q in range(counts.shape[1]):
            out[t, q] = _vote_credit(counts[t, q], correct[q], tie)


@njit(cache=True)
def bon_max_levels(cdf_sorted, vals_sorted, u, n, out):
    """Best-of-n by the order-statistic trick: the max of n draws is ``F^-1(U^(1/n))``.

    ``cdf_sorted``/``vals_sorted`` are (Q, M) sorted by value; ``u`` is (T, Q); ``out`` (T, Q).
    """
    inv = 1.0 / n
    for t in range(u.shape[0]):
        for q in range(u.shape[1]):
            out[t, q] = vals_sorted[q, _draw(cdf_sorted[q], u[t, q] ** inv)]
