"""Slow, obviously-correct references and hypothesis strategies shared by the core tests.

Everything here is plain Python (loops, ``collections.Counter``, ``fractions``): these functions
are the oracles the fast code in :mod:`sim` is compared against, so they favour clarity over speed.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
from hypothesis import strategies as st

# ----------------------------------------------------------------------------- strategies


@st.composite
def categorical_laws(draw, min_answers: int = 2, max_answers: int = 5, allow_zeros: bool = True):
    """A categorical law over C answers (entries in [0, 1], some possibly exactly 0, sum 1)."""
    c = draw(st.integers(min_answers, max_answers))
    entry = st.floats(0.01, 1.0)
    if allow_zeros:
        entry = st.one_of(st.just(0.0), entry)
    w = np.array(draw(st.lists(entry, min_size=c, max_size=c)))
    if w.sum() == 0.0:
        w[draw(st.integers(0, c - 1))] = 1.0
    return w / w.sum()


@st.composite
def dirichlet_laws(draw, min_answers: int = 2, max_answers: int = 4):
    """A Dirichlet(alpha, ..., alpha) law with hypothesis-chosen seed, C and alpha."""
    c = draw(st.integers(min_answers, max_answers))
    alpha = draw(st.floats(0.2, 5.0))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).dirichlet(np.full(c, alpha))


@st.composite
def reward_laws(draw, max_outcomes: int = 6):
    """A discrete reward law: values in [-10, 10] and probabilities (some possibly 0)."""
    m = draw(st.integers(1, max_outcomes))
    values = np.array(draw(st.lists(st.floats(-10.0, 10.0), min_size=m, max_size=m)))
    probs = draw(categorical_laws(min_answers=m, max_answers=m)) if m > 1 else np.ones(1)
    return values, probs


# ----------------------------------------------------------------------------- vote oracles


def vote_credit(counts, correct: int, tie: int) -> float:
    """Credit of one vote (paper Eq. 2): 1/t if the correct answer is among t tied leaders
    (``tie=0``), or 1 only if it leads alone (``tie=1``, pessimistic)."""
    top = max(counts)
    leaders = [a for a, c in enumerate(counts) if c == top]
    if correct not in leaders:
        return 0.0
    if tie == 0:
        return 1.0 / len(leaders)
    return 1.0 if len(leaders) == 1 else 0.0


def compositions(n: int, parts: int):
    """Every vector of ``parts`` non-negative ints summing to ``n`` (stars and bars)."""
    for bars in itertools.combinations(range(n + parts - 1), parts - 1):
        edges = (-1, *bars, n + parts - 1)
        yield tuple(edges[i + 1] - edges[i] - 1 for i in range(parts))


def brute_force_mv(probs, correct: int, n: int, tie: int = 0):
    """P(correct) of plurality voting by enumerating all count vectors (multinomial pmf).

    ``tie=0`` credits ``1/t`` among ``t`` tied leaders, ``tie=1`` credits only a lone leader.
    With ``Fraction`` probabilities the arithmetic, and so the result, is exact.
    """
    total = 0
    for counts in compositions(n, len(probs)):
        top = max(counts)
        leaders = [a for a, c in enumerate(counts) if c == top]
        if correct not in leaders or (tie == 1 and len(leaders) > 1):
            continue
        pmf = math.factorial(n)
        for p, c in zip(probs, counts, strict=True):
            pmf = pmf * p**c / math.factorial(c)
        total += pmf / len(leaders)
    return total


# ----------------------------------------------------------------------------- kernel references


def draw_index(cdf_row, u: float) -> int:
    """Inverse-CDF draw: the first category whose cumulative probability exceeds ``u``."""
    for i, f in enumerate(cdf_row[:-1]):
        if u < f:
            return i
    return len(cdf_row) - 1


def pick_query(queries, u: float) -> int:
    """Query ``queries[floor(u * len)]`` (clamped to the last one)."""
    return int(queries[min(int(u * len(queries)), len(queries) - 1)])


def blocks(seq, k: int):
    """The ``floor(len/k)`` disjoint consecutive blocks of size ``k`` of ``seq``."""
    return [seq[b * k:(b + 1) * k] for b in range(len(seq) // k)]


def ref_mv_scale_credits(cdf, correct, queries, p, uq, ud, tie):
    """Reference of :func:`sim.kernels.mv_scale_credits`: ``acc[k-1]`` summed credits."""
    n = ud.shape[1]
    n_ans = cdf.shape[2]
    acc = np.zeros(n)
    for j in range(len(uq)):
        x = pick_query(queries, uq[j])
        answers = [draw_index(cdf[p, x], u) for u in ud[j]]
        for k in range(1, n + 1):
            for block in blocks(answers, k):
                tally = Counter(block)
                acc[k - 1] += vote_credit([tally[a] for a in range(n_ans)], correct[x], tie)
    return acc


def ref_mv_pull_credits(cdf, correct, queries, p, uq, ud, tie):
    """Reference of :func:`sim.kernels.mv_pull_credits`: one vote over all N answers."""
    out = np.zeros(len(uq))
    for j in range(len(uq)):
        x = pick_query(queries, uq[j])
        tally = Counter(draw_index(cdf[p, x], u) for u in ud[j])
        out[j] = vote_credit([tally[a] for a in range(cdf.shape[2])], correct[x], tie)
    return out


def ref_bon_scale_maxes(cdf, svals, queries, p, uq, ud):
    """Reference of :func:`sim.kernels.bon_scale_maxes`: ``acc[c, k-1]`` summed block maxima."""
    n = ud.shape[1]
    acc = np.zeros((svals.shape[0], n))
    for j in range(len(uq)):
        x = pick_query(queries, uq[j])
        outcomes = [draw_index(cdf[p, x], u) for u in ud[j]]
        for c in range(svals.shape[0]):
            for k in range(1, n + 1):
                for block in blocks(outcomes, k):
                    acc[c, k - 1] += max(svals[c, p, x, o] for o in block)
    return acc


def ref_bon_pull_maxes(cdf, svals, queries, p, uq, ud):
    """Reference of :func:`sim.kernels.bon_pull_maxes`: ``out[j, c]``."""
    out = np.zeros((len(uq), svals.shape[0]))
    for j in range(len(uq)):
        x = pick_query(queries, uq[j])
        outcomes = [draw_index(cdf[p, x], u) for u in ud[j]]
        for c in range(svals.shape[0]):
            out[j, c] = max(svals[c, p, x, o] for o in outcomes)
    return out


def ref_mv_count_credits(counts, correct, tie):
    """Reference of :func:`sim.kernels.mv_count_credits`."""
    t, q, _ = counts.shape
    return np.array([[vote_credit(list(counts[i, j]), correct[j], tie) for j in range(q)]
                     for i in range(t)])


def ref_bon_max_levels(cdf_sorted, vals_sorted, u, n):
    """Reference of :func:`sim.kernels.bon_max_levels`: ``F^-1(U^(1/n))`` per entry."""
    out = np.zeros(u.shape)
    for t in range(u.shape[0]):
        for q in range(u.shape[1]):
            out[t, q] = vals_sorted[q, draw_index(cdf_sorted[q], u[t, q] ** (1.0 / n))]
    return out


# ----------------------------------------------------------------------------- latent laws


def probit_latent_curve(mu: float, tau: float, ks, nodes: int = 200) -> np.ndarray:
    """Binary-vote curve ``F(K) = E[Acc(Phi(mu + tau Z), K)]``, Z ~ N(0, 1), by quadrature.

    Gauss-Legendre on [-12, z0] and [z0, 12] with z0 = -mu/tau, where q crosses 1/2: Acc(q, K) is
    a smoothed step at q = 1/2 for large K, so splitting there keeps both pieces smooth.
    """
    from scipy import stats

    import sim

    z0 = -mu / tau
    x, w = np.polynomial.legendre.leggauss(nodes)
    zs, ws = [], []
    for lo, hi in ((-12.0, z0), (z0, 12.0)):
        zs.append((hi - lo) / 2 * x + (hi + lo) / 2)
        ws.append((hi - lo) / 2 * w)
    z, w = np.concatenate(zs), np.concatenate(ws) * stats.norm.pdf(np.concatenate(zs))
    q = stats.norm.cdf(mu + tau * z)
    return w @ sim.mv_accuracy(np.stack([q, 1 - q], axis=1), 0, ks)
