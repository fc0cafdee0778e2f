"""Structure-agnostic baselines of the paper (mission.md Sec. 6): uniform, epsilon-greedy,
softmax and UCB.

All of them share every pull across contexts and sub-scales (block reuse, as PSST) but ignore the
cost structure when allocating.

* ``uniform``: one batch; each ``(p, n_max)`` arm is pulled ``floor(T / (P n_max))`` times (the
  authors' code: only maximal arms, shared to all sub-scales and contexts). Minimum budget
  ``P n_max``. Deploys the empirical best arm per context.
* ``egreedy``, ``softmax``, ``ucb``: sequential. Each step draws a context ``c`` from the context
  distribution, chooses an arm for ``c`` and pulls it once; the run stops at the first step whose
  chosen arm costs more than the remaining budget. Estimates ``Q_hat(c, a)`` are empirical means
  of the block utilities; arms without data count as ``Q_hat = 0`` for epsilon-greedy and softmax
  (zero-initialised estimates) and have an infinite UCB index.

  - epsilon-greedy: a uniformly random arm with probability ``epsilon`` (default 0.15),
    otherwise ``argmax Q_hat(c, .)``.
  - softmax: arm ``a`` with probability ``exp(Q_hat(c, a)/tau) / sum_b exp(Q_hat(c, b)/tau)``,
    ``tau = temperature`` (default 0.05, the authors' code).
  - UCB: ``argmax Q_hat(c, a) + c_ucb sqrt(log t / n_a)``, ``n_a`` the blocks of arm ``a``,
    ``t`` the blocks credited so far (the per-context virtual-pull count; all contexts share
    data, so it is the same in every context); ``c_ucb = 0.1`` (the paper's tuned value).

  Deployment: per context, the best arm with data. Minimum budget ``n_max`` (any first pull is
  affordable, so every context has data). The whole loop is one Numba kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._validate import check_real
from ..sampler import Sampler, Stats
from ._pulls import credit_pull
from .base import Learner, argmax_ties, best_active, kernel_arrays

EGREEDY, SOFTMAX, UCB = 0, 1, 2


class Uniform(Learner):
    """Uniform allocation over the maximal arms ``(p, n_max)`` in one batch."""

    def __init__(self, name="uniform"):
        super().__init__(name)

    def min_budget(self, env) -> int:
        return env.n_prompts * env.n_max

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        stats = Stats(env.n_contexts, env.n_prompts, env.n_max)
        k = budget // (env.n_prompts * env.n_max)
        for p in range(env.n_prompts):
            ledger.accumulate(sampler, stats, p, env.n_max, k, rng=rng)
        means = stats.means()
        everything = np.ones((env.n_prompts, env.n_max), dtype=bool)
        return [best_active(everything, means[c], keys) for c in range(env.n_contexts)], {}


@njit(cache=True)
def _sequential(rule, param, is_mv, cdf, correct, svals, queries, w, cw, cost, tie, ctx_cdf,
                keys, budget, gen, sums, counts, pulls):
    """Run a sequential bandit until the chosen arm is unaffordable; returns the spend.

    Per-arm quantities are kept up to date incrementally (a pull of ``(p, n)`` changes only the
    arms ``(p, k <= n)``), so a step costs O(|A|) additions and comparisons, not O(|A|) divisions
    or exponentials. Softmax weights are ``exp((Q_hat - ref_c) / tau)`` with ``ref_c`` the largest
    estimate seen so far in context ``c`` (all weights are rescaled when it rises), which is the
    softmax law exactly up to rounding.
    """
    n_ctx, n_p, n_max = sums.shape
    n_arms = n_p * n_max
    est = np.zeros((n_ctx, n_arms))       # Q_hat, 0 without data
    inv_sqrt_n = np.full(n_arms, np.inf)  # UCB: 1/sqrt(blocks), inf without data
    weight = np.ones((n_ctx, n_arms))     # softmax: exp((est - ref) / tau)
    ref = np.zeros(n_ctx)
    score = np.empty(n_arms)
    spent = 0
    blocks = 0
    while True:
        u = gen.random()
        c = 0
        while c < n_ctx - 1 and u >= ctx_cdf[c]:
            c += 1
        if rule == EGREEDY:
            if gen.random() < param:
                a = min(int(gen.random() * n_arms), n_arms - 1)
            else:
                a = argmax_ties(est[c], keys)
        elif rule == SOFTMAX:
            total = 0.0
            for i in range(n_arms):
                total += weight[c, i]
            target = gen.random() * total
            a = n_arms - 1
            acc = 0.0
            for i in range(n_arms):
                acc += weight[c, i]
                if target < acc:
                    a = i
                    break
        else:
            bonus = param * np.sqrt(np.log(max(blocks, 1)))
            for i in range(n_arms):
                score[i] = est[c, i] + bonus * inv_sqrt_n[i] if inv_sqrt_n[i] < np.inf else np.inf
            a = argmax_ties(score, keys)
        p, k = divmod(a, n_max)
        n = k + 1
        if spent + n > budget:
            break
        credit_pull(is_mv, cdf, correct, svals, queries, w, cw, cost, tie, p, n, gen, sums,
                    counts)
        pulls[p, k] += 1
        spent += n
        for j in range(n):
            blocks += n // (j + 1)
            i = p * n_max + j
            inv_sqrt_n[i] = 1.0 / np.sqrt(counts[p, j])
            for cc in range(n_ctx):
                est[cc, i] = sums[cc, p, j] / counts[p, j]
        if rule == SOFTMAX:
            for cc in range(n_ctx):
                top = ref[cc]
                for j in range(n):
                    top = max(top, est[cc, p * n_max + j])
                if top > ref[cc]:
                    ref[cc] = top
                    for i in range(n_arms):
                        weight[cc, i] = np.exp((est[cc, i] - top) / param)
                else:
                    for j in range(n):
                        i = p * n_max + j
                        weight[cc, i] = np.exp((est[cc, i] - top) / param)
    return spent


class Sequential(Learner):
    """Epsilon-greedy, softmax or UCB (see the module docstring)."""

    _RULES = {"egreedy": (EGREEDY, "epsilon", 0.15, (0.0, 1.0, "both")),
              "softmax": (SOFTMAX, "temperature", 0.05, (0.0, np.inf, "none")),
              "ucb": (UCB, "c", 0.1, (0.0, np.inf, "left"))}

    def __init__(self, name, **params):
        rule, pname, default, (lo, hi, closed) = self._RULES[name]
        unknown = set(params) - {pname}
        if unknown:
            raise ValueError(f"{name}: unknown parameter(s) {sorted(unknown)}; valid: [{pname!r}]")
        value = check_real(params.get(pname, default), pname, low=lo, high=hi, closed=closed)
        super().__init__(name, **{pname: value})
        self._rule, self._pname = rule, pname

    def min_budget(self, env) -> int:
        return env.n_max

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        stats = Stats(env.n_contexts, env.n_prompts, env.n_max)
        pulls = np.zeros((env.n_prompts, env.n_max), dtype=np.int64)
        ctx_cdf = np.cumsum(env.contexts.probs)
        _sequential(self._rule, float(self.params[self._pname]), *kernel_arrays(sampler),
                    ctx_cdf, keys.ravel(), ledger.remaining, rng, stats.sums, stats.counts,
                    pulls)
        ledger.charge_counts(pulls)
        means = stats.means()
        seen = stats.counts > 0
        return [best_active(seen, means[c], keys) for c in range(env.n_contexts)], {}
