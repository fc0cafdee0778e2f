"""What every learner shares: the :class:`Policy`, the budget :class:`Ledger`, the tie rule.

Budget unit (mission.md Sec. 1): completions. A pull of arm ``(p, N)`` costs ``N``. Every pull a
learner makes is charged to one :class:`Ledger`, which refuses any charge that would take the
spend above the budget, so ``spent <= budget`` holds by construction for every learner.

Tie rule (one rule, implemented here and nowhere else): at the start of a fit each arm ``(p, N)``
draws a distinct random priority (a uniformly random permutation of the ``P * n_max`` arms, from
the fit's ``rng``). Arms are ranked by empirical value, best first, and equal values are ordered
by priority, lowest first. Exact ties are therefore broken uniformly at random, and consistently
within a run (the same tied pair is ordered the same way in every round). Majority-vote credits
take few distinct values (0, 1/t, 1), so exact ties are common at small budgets; a first-index
rule would favour low-index prompts (style.md A.4, rows 8-11).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .._validate import as_rng, check_int
from ..env import Environment
from ..sampler import Sampler


class BudgetError(RuntimeError):
    """A learner tried to spend more than its budget (a bug in the learner, never user error)."""


@dataclass(frozen=True, eq=False)
class Policy:
    """The output of ``learner.fit``: one arm per context and what finding it cost.

    Attributes
    ----------
    choice : ndarray of int64, shape (CX, 2)
        ``(prompt index, N)`` deployed in each context (``1 <= N <= n_max``).
    spent : int
        Completions spent (a pull of scale ``N`` costs ``N``); always ``<= budget``.
    pulls : ndarray of int64, shape (P, n_max)
        Raw pulls of each arm: ``pulls[p, N - 1]``; ``spent == sum_N N * pulls[:, N - 1]``.
    budget : int
        The budget ``T`` the learner was given.
    learner : str
        Canonical key of the learner (name and parameters).
    info : dict
        Learner-specific diagnostics (e.g. PSST's survivors per round); not part of the result.
    """

    choice: np.ndarray
    spent: int
    pulls: np.ndarray
    budget: int
    learner: str
    info: dict = field(default_factory=dict, repr=False)


class Ledger:
    """The one place where pulls are charged: ``spent <= budget`` is enforced here.

    Parameters
    ----------
    budget : int
        Completions available.
    n_prompts, n_max : int
        Shape of the arm grid.
    """

    def __init__(self, budget: int, n_prompts: int, n_max: int):
        self.budget = int(budget)
        self.spent = 0
        self.pulls = np.zeros((n_prompts, n_max), dtype=np.int64)
        self._scales = np.arange(1, n_max + 1, dtype=np.int64)

    @property
    def remaining(self) -> int:
        """Completions still available: ``budget - spent``."""
        return self.budget - self.spent

    def charge(self, p: int, n: int, n_pulls: int = 1) -> None:
        """Record ``n_pulls`` pulls of ``(p, n)``; raise :class:`BudgetError` if unaffordable."""
        if n_pulls < 0 or not 1 <= n <= self.pulls.shape[1]:
            raise BudgetError(f"invalid charge: arm ({p}, {n}), {n_pulls} pulls")
        cost = int(n) * int(n_pulls)
        if cost > self.remaining:
            raise BudgetError(f"{n_pulls} pulls of ({p}, {n}) cost {cost} > remaining "
                              f"{self.remaining} of budget {self.budget}")
        self.spent += cost
        self.pulls[p, n - 1] += n_pulls

    def charge_counts(self, counts: np.ndarray) -> None:
        """Record a whole table of raw pulls ``counts[p, N - 1]`` (all or nothing)."""
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != self.pulls.shape or np.any(counts < 0):
            raise BudgetError(f"invalid pull table of shape {counts.shape}")
        cost = int((counts * self._scales).sum())
        if cost > self.remaining:
            raise BudgetError(f"pull table costs {cost} > remaining {self.remaining} of budget "
                              f"{self.budget}")
        self.spent += cost
        self.pulls += counts

    def accumulate(self, sampler: Sampler, stats, p: int, n: int, n_pulls: int, *, rng) -> None:
        """Charge, then pull ``(p, n)`` ``n_pulls`` times with block reuse into ``stats``."""
        self.charge(p, n, n_pulls)
        sampler.accumulate(stats, p, n, n_pulls, rng=rng)


# --------------------------------------------------------------------------- the tie rule


def tie_keys(n_prompts: int, n_max: int, rng) -> np.ndarray:
    """Random distinct priorities of the arms, shape (P, n_max), float64 (lower wins a tie)."""
    return as_rng(rng).permutation(n_prompts * n_max).astype(np.float64).reshape(n_prompts, n_max)


def rank_arms(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Indices of ``values`` best first: decreasing value, ties by increasing ``keys``.

    NaN values (arms without data) rank last.
    """
    v = np.where(np.isnan(values), -np.inf, values)
    return np.lexsort((keys, -v))


@njit(cache=True)
def argmax_ties(values, keys):
    """Index of the best of ``values`` under the tie rule (``== rank_arms(values, keys)[0]``).

    NaN counts as ``-inf``. Notes: jit-compiled by Numba; callable from other kernels.
    """
    best = 0
    bv = values[0]
    if bv != bv:
        bv = -np.inf
    bk = keys[0]
    for i in range(1, values.shape[0]):
        v = values[i]
        if v != v:
            v = -np.inf
        if v > bv or (v == bv and keys[i] < bk):
            best = i
            bv = v
            bk = keys[i]
    return best


def top_half(active: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Keep the best ``ceil(|active| / 2)`` arms of a boolean mask (the authors' trim rule)."""
    idx = np.flatnonzero(active.ravel())
    keep = idx[rank_arms(values.ravel()[idx], keys.ravel()[idx])[: (idx.size + 1) // 2]]
    out = np.zeros(active.size, dtype=bool)
    out[keep] = True
    return out.reshape(active.shape)


def best_active(active: np.ndarray, values: np.ndarray, keys: np.ndarray) -> tuple[int, int]:
    """The best arm ``(p, N)`` of a (P, n_max) mask under the tie rule."""
    idx = np.flatnonzero(active.ravel())
    flat = idx[rank_arms(values.ravel()[idx], keys.ravel()[idx])[0]]
    p, n_idx = divmod(int(flat), active.shape[1])
    return p, n_idx + 1


# --------------------------------------------------------------------------- learners


def n_rounds(n_arms: int) -> int:
    """Halving rounds ``max(1, ceil(log2 n_arms))`` (mission.md Sec. 2; at least one round)."""
    return max(1, math.ceil(math.log2(n_arms))) if n_arms > 1 else 1


def smallest_budget(feasible, start: int = 0) -> int:
    """Smallest integer ``T >= start`` with ``feasible(T)``, for a monotone predicate."""
    hi = max(1, start)
    while not feasible(hi):
        hi *= 2
    lo = start - 1  # infeasible or below start
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid >= start and feasible(mid):
            hi = mid
        else:
            lo = mid
    return hi


class Learner:
    """Base class: validates the budget, owns the ledger and tie keys, returns a :class:`Policy`.

    Subclasses set ``name`` and ``params`` (already validated by :func:`sim.learners.make`) and
    implement ``min_budget(env)`` and ``_fit(env, budget, ledger, rng, keys) -> (choice, info)``.
    """

    #: Parameters that do not change results and are left out of :attr:`key`.
    _NOT_IN_KEY = ("trace",)
    uses_rng = True

    def __init__(self, name: str, **params):
        self.name = name
        self.params = params

    @property
    def key(self) -> str:
        """Canonical string of the name and the sorted parameters, e.g. ``ucb(c=0.1)``."""
        items = [f"{k}={self.params[k]!r}" for k in sorted(self.params)
                 if k not in self._NOT_IN_KEY]
        return f"{self.name}({','.join(items)})" if items else self.name

    def __repr__(self) -> str:
        return f"<learner {self.key}>"

    def min_budget(self, env: Environment) -> int:  # pragma: no cover - abstract
        """Smallest budget ``T`` (completions) with which this learner can run on ``env``;
        :meth:`fit` raises a ValueError stating it for any smaller budget."""
        raise NotImplementedError

    def fit(self, env: Environment, budget: int, *, rng=None) -> Policy:
        """Learn a policy on ``env``'s train split with at most ``budget`` completions.

        Parameters
        ----------
        env : Environment
        budget : int
            Training budget ``T`` in completions (a pull of ``(p, N)`` costs ``N``).
        rng : anything :func:`numpy.random.default_rng` accepts
            The only source of randomness of the run.

        Raises
        ------
        ValueError
            If ``budget`` is below :meth:`min_budget` (the message states the minimum).
        """
        if not isinstance(env, Environment):
            raise ValueError(f"env must be a sim.Environment; got {type(env).__name__}")
        t = check_int(budget, "budget", low=0)
        need = self.min_budget(env)
        if t < need:
            raise ValueError(
                f"budget: {self.key} needs at least {need} completions on environment "
                f"{env.name!r} ({env.n_prompts} prompts, n_max {env.n_max}, {env.n_contexts} "
                f"contexts); got {t}"
            )
        gen = as_rng(rng)
        keys = tie_keys(env.n_prompts, env.n_max, gen) if self.uses_rng else None
        ledger = Ledger(t, env.n_prompts, env.n_max)
        choice, info = self._fit(env, t, ledger, gen, keys)
        choice = np.asarray(choice, dtype=np.int64).reshape(env.n_contexts, 2)
        if ledger.spent > t:  # unreachable: the ledger refuses such charges
            raise BudgetError(f"{self.key} spent {ledger.spent} > {t}")
        return Policy(choice=choice, spent=int(ledger.spent), pulls=ledger.pulls.copy(),
                      budget=t, learner=self.key, info=info)

    def _fit(self, env, budget, ledger, rng, keys):  # pragma: no cover - abstract
        raise NotImplementedError


def kernel_arrays(sampler: Sampler):
    """The arrays the learner kernels read, with typed placeholders for the unused kind.

    Returns ``(is_mv, cdf, correct, svals, queries, weights, cost_weight, cost, tie)``.
    """
    env = sampler.env
    is_mv = env.kind == "mv"
    correct = env.correct if is_mv else np.zeros(1, dtype=np.int64)
    svals = np.zeros((1, 1, 1, 1)) if is_mv else sampler.svals
    weights = sampler.weights if is_mv else np.zeros(env.n_contexts)
    return (is_mv, sampler.cdf, correct, svals, sampler.queries, np.ascontiguousarray(weights),
            np.ascontiguousarray(sampler.cost_weight, dtype=np.float64),
            np.ascontiguousarray(env.cost), sampler.tie)
