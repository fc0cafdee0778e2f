"""PSST (Prompt Scaling via Sequential Trimming) and Top-K screening (mission.md Secs. 2-3).

PSST (paper Algorithm 1, allocation Eq. 6), with budget ``T`` in completions:

* ``R = max(1, ceil(log2 |A|))`` rounds, ``|A| = P * n_max``; round allowance ``n_r = floor(T/R)``.
* Each round, every prompt with an active arm in some context pulls only its largest active
  scale ``Nmax_p``, ``floor(n_r / M)`` times with ``M = sum_p Nmax_p`` (equal pulls per prompt,
  cost-aware). Every pull is credited to every context and to every sub-scale ``k <= Nmax_p``
  through ``floor(Nmax_p / k)`` disjoint blocks (:meth:`sim.Sampler.accumulate`, one call per
  (round, prompt)).
* Per context, the active arms are ranked by empirical mean and the best ``ceil(|A_c| / 2)`` are
  kept (the authors' code; the paper's "remove the bottom ceil(|A_c|/2)" keeps ``floor`` instead,
  one arm fewer when ``|A_c|`` is odd, and could reach zero survivors). Ties: the rule of
  :mod:`sim.learners.base`. The policy deploys, per context, the best survivor.
* Data: stockpiled across rounds by default (as the authors' code); ``fresh=True`` resets the
  statistics at the start of each round (as the paper's analysis, Theorem 1).

Budget rule (the authors' ``max(1, .)`` overspends when ``n_r < M``): a round whose allowance
cannot pay one pull of every maximal arm makes no pull and no trim, and its allowance is carried
to the next round; a round that pulls discards its rounding leftover ``n_r - M floor(n_r/M)``
(paper's rule). Hence ``spent <= R floor(T/R) <= T`` always, and the run is possible iff the
total allowance pays one sweep of the first round: ``T >= R * ceil(M_1 / R)``
(:meth:`PSST.min_budget`). Rounds left without pulls at the end leave several survivors; the
best of them by empirical mean is deployed (extra trims on unchanged data would not change it).

Top-K screening: ``T0 = floor(rho T)`` single completions (``N = 1``), ``floor(T0/P)`` per prompt
and one more for ``T0 mod P`` prompts drawn at random (a round robin with a random start); per
context keep the ``K`` prompts with the best ``Q_hat(c, p, 1)``; reset the statistics; run PSST
on ``{(p, N): p in top-K_c}`` with ``T - T0`` and ``max(1, ceil(log2(K n_max)))`` rounds.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .._validate import check_int, check_real
from ..env import Environment
from ..sampler import Sampler, Stats
from .base import (
    Learner,
    best_active,
    n_rounds,
    rank_arms,
    smallest_budget,
    top_half,
)


def maximal_scales(active: np.ndarray) -> np.ndarray:
    """``Nmax_p``: largest scale of prompt ``p`` active in any context (0 if none), shape (P,)."""
    any_active = active.any(axis=0)  # (P, n_max)
    n_max = any_active.shape[1]
    last = n_max - np.argmax(any_active[:, ::-1], axis=1)
    return np.where(any_active.any(axis=1), last, 0)


def sweep_cost(active: np.ndarray) -> int:
    """``M = sum_p Nmax_p``: the cost of pulling every maximal arm once (Eq. 6)."""
    return int(maximal_scales(active).sum())


def core_min_budget(first_sweep: int, rounds: int) -> int:
    """Smallest ``T`` with ``R floor(T/R) >= M_1``: the total allowance pays one first sweep."""
    return rounds * math.ceil(first_sweep / rounds)


def run_rounds(sampler: Sampler, stats: Stats, ledger, active: np.ndarray, budget: int,
               rounds: int, *, fresh: bool, keys: np.ndarray, rng, trace: bool = False):
    """The PSST loop on per-context active sets ``active`` (CX, P, n_max), modified in place.

    Returns ``(choice, info)``: the best survivor per context, and per round the number of
    survivors per context, the pulls per maximal arm, the sweep cost ``M`` and (``trace``) the
    active masks before each round.
    """
    per_round = budget // rounds
    allowance = 0
    info = {"rounds": rounds, "survivors": [active.sum(axis=(1, 2))], "pulls_per_arm": [],
            "sweep_cost": []}
    if trace:
        info["active"] = [active.copy()]
    pulled = False
    for _ in range(rounds):
        allowance += per_round
        nmax = maximal_scales(active)
        m = int(nmax.sum())
        k = allowance // m
        info["sweep_cost"].append(m)
        info["pulls_per_arm"].append(int(k))
        if k > 0:
            allowance = 0
            if fresh:
                stats.reset()
            for p in np.flatnonzero(nmax):
                ledger.accumulate(sampler, stats, int(p), int(nmax[p]), int(k), rng=rng)
            means = stats.means()
            for c in range(active.shape[0]):
                active[c] = top_half(active[c], means[c], keys)
            pulled = True
        info["survivors"].append(active.sum(axis=(1, 2)))
        if trace:
            info["active"].append(active.copy())
    if not pulled:  # unreachable when budget >= core_min_budget
        raise RuntimeError("PSST made no pull; the budget is below its minimum")
    means = stats.means()
    choice = np.array([best_active(active[c], means[c], keys) for c in range(active.shape[0])])
    return choice, info


def _check_bool(value, name):
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


class PSST(Learner):
    """PSST (paper Algorithm 1). Parameters: ``fresh`` (bool, default False: stockpile)."""

    def __init__(self, name="psst", *, fresh=False, trace=False):
        super().__init__(name, fresh=_check_bool(fresh, "fresh"), trace=_check_bool(trace, "trace"))

    def _rounds(self, env: Environment) -> int:
        return n_rounds(env.n_prompts * env.n_max)

    def min_budget(self, env: Environment) -> int:
        return core_min_budget(env.n_prompts * env.n_max, self._rounds(env))

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        stats = Stats(env.n_contexts, env.n_prompts, env.n_max)
        active = np.ones((env.n_contexts, env.n_prompts, env.n_max), dtype=bool)
        return run_rounds(sampler, stats, ledger, active, budget, self._rounds(env),
                          fresh=self.params["fresh"], keys=keys, rng=rng,
                          trace=self.params["trace"])


def screening_budget(rho: float, budget: int) -> int:
    """``T0 = floor(rho T)``, with ``rho`` read as the decimal it prints as (0.29 * 100 = 29)."""
    return math.floor(Fraction(repr(float(rho))) * budget)


class TopK(PSST):
    """PSST with Top-K screening (mission.md Sec. 3). Parameters ``k`` (>= 1; capped at P),
    ``rho`` in (0, 1) (default 0.2) and ``fresh``."""

    def __init__(self, name="psst-topk", *, k=4, rho=0.2, fresh=False, trace=False):
        k = check_int(k, "k", low=1)
        rho = check_real(rho, "rho", low=0.0, high=1.0, closed="none")
        Learner.__init__(self, name, k=k, rho=rho, fresh=_check_bool(fresh, "fresh"),
                         trace=_check_bool(trace, "trace"))

    def _k(self, env) -> int:
        return min(self.params["k"], env.n_prompts)

    def _rounds(self, env) -> int:
        return n_rounds(self._k(env) * env.n_max)

    def min_budget(self, env: Environment) -> int:
        k = self._k(env)
        rounds = self._rounds(env)
        # worst first sweep of phase 2: the union of the contexts' top-K prompts at n_max
        m1 = min(env.n_prompts, k * env.n_contexts) * env.n_max
        need2 = core_min_budget(m1, rounds)
        rho = self.params["rho"]

        def ok(t):
            t0 = screening_budget(rho, t)
            return t0 >= env.n_prompts and t - t0 >= need2

        return smallest_budget(ok)

    def _fit(self, env, budget, ledger, rng, keys):
        sampler = Sampler(env, "train")
        stats = Stats(env.n_contexts, env.n_prompts, env.n_max)
        n_p, k = env.n_prompts, self._k(env)
        t0 = screening_budget(self.params["rho"], budget)
        base, extra = divmod(t0, n_p)
        per_prompt = np.full(n_p, base, dtype=np.int64)
        per_prompt[rng.permutation(n_p)[:extra]] += 1
        for p in range(n_p):
            ledger.accumulate(sampler, stats, p, 1, int(per_prompt[p]), rng=rng)
        q1 = stats.means()[:, :, 0]
        active = np.zeros((env.n_contexts, n_p, env.n_max), dtype=bool)
        for c in range(env.n_contexts):
            active[c, rank_arms(q1[c], keys[:, 0])[:k], :] = True
        top = [np.flatnonzero(active[c].any(axis=1)) for c in range(env.n_contexts)]
        stats.reset()
        choice, info = run_rounds(sampler, stats, ledger, active, budget - t0, self._rounds(env),
                                  fresh=self.params["fresh"], keys=keys, rng=rng,
                                  trace=self.params["trace"])
        info["screening"] = {"budget": t0, "top_k": top}
        return choice, info
