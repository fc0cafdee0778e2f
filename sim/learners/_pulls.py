"""Numba helpers that pull arms inside learner loops (sequential bandits, SH, SR).

They reuse the aggregation kernels of :mod:`sim.kernels` one pull at a time, drawing the uniforms
from a :class:`numpy.random.Generator` passed in by the Python layer (Numba shares its
BitGenerator state; nothing touches Numba's global RNG). Arguments follow
:func:`sim.learners.base.kernel_arrays`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import kernels
from ..sampler import CHUNK_PULLS


@njit(cache=True)
def credit_pull(is_mv, cdf, correct, svals, queries, w, cw, cost, tie, p, n, gen, sums, counts):
    """One pull of ``(p, n)`` credited with block reuse to every sub-scale and every context.

    Same accounting and the same draws as :meth:`sim.Sampler.accumulate` with ``n_pulls = 1``:
    scale ``k`` gains ``n // k`` blocks, context ``c`` their utility
    ``w_c * objective - cw_c * k * cost_p``.
    """
    uq = np.empty(1)
    uq[0] = gen.random()
    ud = np.empty((1, n))
    for i in range(n):
        ud[0, i] = gen.random()
    n_ctx = cw.shape[0]
    if is_mv:
        acc = np.zeros(n)
        kernels.mv_scale_credits(cdf, correct, queries, p, uq, ud, tie, acc)
        for c in range(n_ctx):
            for k in range(1, n + 1):
                sums[c, p, k - 1] += w[c] * acc[k - 1] - cw[c] * k * cost[p] * (n // k)
    else:
        acc2 = np.zeros((n_ctx, n))
        kernels.bon_scale_maxes(cdf, svals, queries, p, uq, ud, acc2)
        for c in range(n_ctx):
            for k in range(1, n + 1):
                sums[c, p, k - 1] += acc2[c, k - 1] - cw[c] * k * cost[p] * (n // k)
    for k in range(1, n + 1):
        counts[p, k - 1] += n // k


@njit(cache=True)
def pull_sum(is_mv, cdf, correct, svals, queries, w, cw, cost, tie, p, n, n_pulls, ctx, gen):
    """Sum of the utilities in context ``ctx`` of ``n_pulls`` pulls of ``(p, n)``, no reuse.

    Each pull aggregates its ``n`` completions once. Uniforms are drawn in the order and chunks
    of :meth:`sim.Sampler.pull` (all query uniforms of a chunk, then its answer uniforms), so
    both give the same pulls from the same generator state.
    """
    total = 0.0
    done = 0
    while done < n_pulls:
        m = min(CHUNK_PULLS, n_pulls - done)
        uq = np.empty(m)
        ud = np.empty((m, n))
        for j in range(m):
            uq[j] = gen.random()
        for j in range(m):
            for i in range(n):
                ud[j, i] = gen.random()
        if is_mv:
            out = np.empty(m)
            kernels.mv_pull_credits(cdf, correct, queries, p, uq, ud, tie, out)
            total += w[ctx] * out.sum()
        else:
            out2 = np.empty((m, cw.shape[0]))
            kernels.bon_pull_maxes(cdf, svals, queries, p, uq, ud, out2)
            total += out2[:, ctx].sum()
        done += m
    return total - n_pulls * cw[ctx] * n * cost[p]
