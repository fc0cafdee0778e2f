"""Elimination baselines: inference-agnostic TRIPLE-SH, disjoint optimisation, plain Sequential
Halving and Successive Rejects.

* ``triple-n1`` / ``triple-nrandom`` (Shi et al. 2024, contextual TRIPLE-SH, mission.md Sec. 6):
  sequential halving over the single-shot arms ``(p, 1)`` with data shared across contexts
  (the PSST loop restricted to ``N = 1``: ``max(1, ceil(log2 P))`` rounds, ``floor(n_r / |U_r|)``
  pulls per prompt still active in some context). Deploys the chosen prompt at ``N = 1``, or at
  an ``N`` drawn uniformly from ``1..n_max`` per context (the paper draws a random N per query;
  ACR is linear in Q, so a per-run draw has the same expectation over runs).
* ``disjoint``: stage 1 chooses the prompt per context at ``N = 1`` with the cost-aware utility
  (the TRIPLE loop on ``floor(stage1 T)`` completions, ``stage1 = 0.5`` by default); stage 2
  chooses ``N`` for that prompt with the PSST loop on ``{(p_c, N)}`` (sharing across contexts and
  scales, ``max(1, ceil(log2 n_max))`` rounds) with the rest of the budget.
* ``sh``: plain Sequential Halving (Karnin, Koren & Somekh 2013) over all ``(p, N)`` arms,
  independently per context with ``B_c = floor(T/|C|)``, no sharing across contexts or scales
  (each pull aggregates its N completions once and serves one context). Costs generalise
  ``t_r = floor(B / (|S_r| R))`` to ``t_r = floor(B_c / (R sum_{a in S_r} N_a))`` pulls per
  surviving arm (equal for unit costs); trims on round-``r`` samples only; spend <= ``B_c``.
* ``sr``: Successive Rejects (Audibert, Bubeck & Munos 2010) per context, no sharing:
  ``n_k = ceil((B' - K) / (logbar(K) (K + 1 - k)))``, phase ``k`` pulls every survivor
  ``n_k - n_{k-1}`` times and rejects the lowest mean over all its samples. ``B'`` is the pull
  budget: with unit costs ``B' = B_c`` (the paper's rule exactly); with costs it is the largest
  ``B' <= B_c / min N`` whose worst-case spend ``sum_k (n_k - n_{k-1}) U_k`` fits ``B_c``, where
  ``U_k`` is the total cost of the ``K + 1 - k`` dearest arms.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._validate import check_real
from ..sampler import Sampler, Stats
from ._pulls import pull_sum
from .base import (
    Learner,
    argmax_ties,
    kernel_arrays,
    n_rounds,
    smallest_budget,
    top_half,
)
from .psst import core_min_budget, run_rounds


class Triple(Learner):
    """Contextual TRIPLE-SH at ``N = 1``; deploys ``N = 1`` or a uniformly random ``N``."""

    def __init__(self, name):
        super().__init__(name)

    def min_budget(self, env) -> int:
        return core_min_budget(env.n_prompts, n_rounds(env.n_prompts))

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        stats = Stats(env.n_contexts, env.n_prompts, env.n_max)
        active = np.zeros((env.n_contexts, env.n_prompts, env.n_max), dtype=bool)
        active[:, :, 0] = True
        choice, info = run_rounds(sampler, stats, ledger, active, budget, n_rounds(env.n_prompts),
                                  fresh=False, keys=keys, rng=rng)
        if self.name == "triple-nrandom":
            choice[:, 1] = rng.integers(1, env.n_max + 1, size=env.n_contexts)
        return choice, info


class Disjoint(Learner):
    """Two-stage disjoint optimisation: prompt at ``N = 1`` first, then ``N`` for that prompt."""

    def __init__(self, name="disjoint", *, stage1=0.5):
        super().__init__(name, stage1=check_real(stage1, "stage1", low=0.0, high=1.0,
                                                 closed="none"))

    def _stage1(self, budget) -> int:
        return math.floor(self.params["stage1"] * budget)

    def min_budget(self, env) -> int:
        need1 = core_min_budget(env.n_prompts, n_rounds(env.n_prompts))
        need2 = core_min_budget(min(env.n_prompts, env.n_contexts) * env.n_max,
                                n_rounds(env.n_max))
        return smallest_budget(lambda t: self._stage1(t) >= need1 and t - self._stage1(t) >= need2)

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        stats = Stats(env.n_contexts, env.n_prompts, env.n_max)
        active = np.zeros((env.n_contexts, env.n_prompts, env.n_max), dtype=bool)
        active[:, :, 0] = True
        prompts, info1 = run_rounds(sampler, stats, ledger, active, self._stage1(budget),
                                    n_rounds(env.n_prompts), fresh=False, keys=keys, rng=rng)
        active[:] = False
        for c in range(env.n_contexts):
            active[c, prompts[c, 0], :] = True
        stats.reset()
        choice, info2 = run_rounds(sampler, stats, ledger, active, budget - ledger.spent,
                                   n_rounds(env.n_max), fresh=False, keys=keys, rng=rng)
        return choice, {"stage1": info1, "stage2": info2}


def _arm_costs(env) -> np.ndarray:
    """Cost ``N`` of every arm, flattened (P * n_max,)."""
    return np.tile(np.arange(1, env.n_max + 1), env.n_prompts)


class SequentialHalving(Learner):
    """Plain Sequential Halving per context, no sharing (see the module docstring)."""

    def __init__(self, name="sh"):
        super().__init__(name)

    def min_budget(self, env) -> int:
        total = int(_arm_costs(env).sum())
        return env.n_contexts * n_rounds(env.n_prompts * env.n_max) * total

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        arrays = kernel_arrays(sampler)
        costs = _arm_costs(env)
        n_arms = costs.size
        rounds = n_rounds(n_arms)
        b_c = budget // env.n_contexts
        choice = []
        allocation = []
        for c in range(env.n_contexts):
            alive = np.ones(n_arms, dtype=bool)
            alloc_c = []
            for _ in range(rounds):
                if alive.sum() == 1:
                    break
                t = b_c // (rounds * int(costs[alive].sum()))
                arms = np.flatnonzero(alive)
                planned = np.zeros(n_arms, dtype=np.int64)
                planned[arms] = t
                ledger.charge_counts(planned.reshape(env.n_prompts, env.n_max))
                means = np.full(n_arms, np.nan)
                for a in arms:
                    p, k = divmod(int(a), env.n_max)
                    means[a] = pull_sum(*arrays, p, k + 1, t, c, rng) / t
                alloc_c.append((int(arms.size), int(t), int(t * costs[alive].sum())))
                alive = top_half(alive, means, keys.ravel())
            a = int(np.flatnonzero(alive)[0])
            choice.append(divmod(a, env.n_max))
            allocation.append(alloc_c)
        choice = np.array(choice)
        choice[:, 1] += 1
        return choice, {"allocation": allocation}


def logbar(k: int) -> float:
    """``1/2 + sum_{i=2..K} 1/i`` (Audibert et al. 2010)."""
    return 0.5 + sum(1.0 / i for i in range(2, k + 1))


def sr_phases(n_arms: int, pull_budget: int) -> np.ndarray:
    """Successive Rejects ``n_k = ceil((B - K) / (logbar(K) (K + 1 - k)))``, ``k = 1..K-1``."""
    lb = logbar(n_arms)
    return np.array([math.ceil((pull_budget - n_arms) / (lb * (n_arms + 1 - k)))
                     for k in range(1, n_arms)], dtype=np.int64)


def sr_worst_spend(costs: np.ndarray, pull_budget: int) -> int:
    """Largest spend of SR over which arms survive: ``sum_k (n_k - n_{k-1}) U_k``."""
    k_arms = costs.size
    if k_arms < 2:
        return 0
    n = sr_phases(k_arms, pull_budget)
    dear = np.sort(costs)[::-1]
    u = np.cumsum(dear)[k_arms - np.arange(1, k_arms)]  # U_k: the K+1-k dearest arms
    return int((np.diff(np.concatenate(([0], n))) * u).sum())


def sr_pull_budget(costs: np.ndarray, budget: int) -> int | None:
    """The pull budget ``B'`` (see the module docstring); None if even ``B' = K + 1`` fails."""
    k_arms = costs.size
    cap = budget // int(costs.min())
    lo = k_arms + 1
    if lo > cap or sr_worst_spend(costs, lo) > budget:
        return None
    hi = cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sr_worst_spend(costs, mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True)
def _successive_rejects(is_mv, cdf, correct, svals, queries, w, cw, cost, tie, ctx, n_max,
                        phases, keys, gen, pulls):
    n_arms = keys.shape[0]
    alive = np.ones(n_arms, dtype=np.bool_)
    sums = np.zeros(n_arms)
    n_pulls = np.zeros(n_arms, dtype=np.int64)
    neg = np.empty(n_arms)
    prev = 0
    for ph in range(phases.shape[0]):
        t = phases[ph] - prev
        prev = phases[ph]
        for a in range(n_arms):
            if alive[a] and t > 0:
                p, k = divmod(a, n_max)
                sums[a] += pull_sum(is_mv, cdf, correct, svals, queries, w, cw, cost, tie, p,
                                    k + 1, t, ctx, gen)
                n_pulls[a] += t
                pulls[p, k] += t
        # reject the worst: the best of (-mean) with reversed priorities is rank_arms' last
        for a in range(n_arms):
            neg[a] = -sums[a] / n_pulls[a] if alive[a] else -np.inf
        worst = argmax_ties(neg, -keys)
        alive[worst] = False
    for a in range(n_arms):
        if alive[a]:
            return a
    return 0


class SuccessiveRejects(Learner):
    """Successive Rejects per context, no sharing (see the module docstring)."""

    def __init__(self, name="sr"):
        super().__init__(name)

    def min_budget(self, env) -> int:
        costs = _arm_costs(env)
        if costs.size < 2:
            return 0
        per_ctx = max(int(costs.sum()), (costs.size + 1) * int(costs.min()))
        return env.n_contexts * per_ctx

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        arrays = kernel_arrays(sampler)
        costs = _arm_costs(env)
        b_c = budget // env.n_contexts
        if costs.size < 2:
            return np.tile([0, 1], (env.n_contexts, 1)), {}
        b_pull = sr_pull_budget(costs, b_c)
        phases = sr_phases(costs.size, b_pull)
        choice = []
        for c in range(env.n_contexts):
            pulls = np.zeros((env.n_prompts, env.n_max), dtype=np.int64)
            a = _successive_rejects(*arrays, c, env.n_max, phases, keys.ravel(), rng, pulls)
            ledger.charge_counts(pulls)
            p, k = divmod(int(a), env.n_max)
            choice.append((p, k + 1))
        return choice, {"pull_budget": b_pull, "phases": phases}
