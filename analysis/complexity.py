"""Sample complexity: the paper's Theorem 1, classic Sequential Halving, and measured error rates.

* :func:`theorem1` — PSST's cost-gap complexities H1, H2 from the exact gaps of a Q table and
  its error bound ``3 |C| R exp(-T / (R min(2|P| H1, 8|C| H2)))`` (mission.md Sec. 4).
* :func:`classic_h1`, :func:`classic_h2`, :func:`sh_bound`, :func:`sr_bound` — the classic
  fixed-budget quantities (Karnin, Koren, Somekh 2013; Audibert, Bubeck, Munos 2010; style.md
  Part A.5), and :func:`plain_sh_bound`, Karnin's bound applied to Sequential Halving run
  without sharing across contexts or scales.
* :func:`clopper_pearson`, :func:`budget_to_reach` — exact binomial intervals on a measured
  error probability and the budget at which it first reaches ``delta`` (log-budget
  interpolation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from sim._validate import check_int, check_real
from sim.env import TIE_TOL

__all__ = [
    "Theorem1",
    "budget_to_reach",
    "classic_h1",
    "classic_h2",
    "clopper_pearson",
    "logbar",
    "plain_sh_bound",
    "sh_bound",
    "sh_budget",
    "sr_bound",
    "sr_budget",
    "theorem1",
]



# ---------------------------------------------------------------------------- classic BAI
def _gaps(means) -> np.ndarray:
    mu = np.sort(np.asarray(means, dtype=np.float64).reshape(-1))[::-1]
    if mu.size < 2 or not np.all(np.isfinite(mu)):
        raise ValueError("means must hold at least 2 finite arm means")
    return mu[0] - mu[1:]  # Delta_(2), ..., Delta_(K), non-decreasing


def classic_h1(means) -> float:
    """``H1 = sum_{i>=2} Delta_(i)^-2`` (Audibert et al. 2010 without their ``Delta_(1)`` term).

    ``inf`` when the best arm is not unique.
    """
    d = _gaps(means)
    with np.errstate(divide="ignore"):
        return float(np.sum(1.0 / d**2))


def classic_h2(means) -> float:
    """``H2 = max_{i>=2} i Delta_(i)^-2`` (Karnin et al. 2013; Audibert et al. 2010)."""
    d = _gaps(means)
    with np.errstate(divide="ignore"):
        return float(np.max(np.arange(2, d.size + 2) / d**2))


def logbar(k: int) -> float:
    """``logbar(K) = 1/2 + sum_{i=2..K} 1/i`` (Successive Rejects, Audibert et al. 2010)."""
    k = check_int(k, "k", low=1)
    return 0.5 + float(np.sum(1.0 / np.arange(2, k + 1)))


def _check_h2(h2) -> float:
    """A complexity ``H2 > 0`` (``inf`` allowed: tied best arms)."""
    return check_real(h2, "h2", low=0.0, high=np.inf, closed="none") if h2 != np.inf else h2


def sh_bound(h2: float, k: int, budget) -> np.ndarray:
    """Karnin et al. (2013) Thm 4.1: ``P(error) <= 3 log2 K exp(-T / (8 H2 log2 K))``."""
    h2 = _check_h2(h2)
    k = check_int(k, "k", low=2)
    lg = math.log2(k)
    return 3.0 * lg * np.exp(-np.asarray(budget, float) / (8.0 * h2 * lg))


def sh_budget(h2: float, k: int, delta: float) -> float:
    """Smallest T at which :func:`sh_bound` equals ``delta``."""
    h2 = _check_h2(h2)
    k = check_int(k, "k", low=2)
    delta = check_real(delta, "delta", low=0.0, high=1.0, closed="none")
    lg = math.log2(k)
    return 8.0 * h2 * lg * math.log(3.0 * lg / delta)


def sr_bound(h2: float, k: int, budget) -> np.ndarray:
    """Audibert et al. (2010) Thm 2: ``P(error) <= K(K-1)/2 exp(-(T-K) / (logbar(K) H2))``."""
    h2 = _check_h2(h2)
    k = check_int(k, "k", low=2)
    return k * (k - 1) / 2.0 * np.exp(-(np.asarray(budget, float) - k) / (logbar(k) * h2))


def sr_budget(h2: float, k: int, delta: float) -> float:
    """Smallest T at which :func:`sr_bound` equals ``delta``."""
    h2 = _check_h2(h2)
    k = check_int(k, "k", low=2)
    delta = check_real(delta, "delta", low=0.0, high=1.0, closed="none")
    return k + logbar(k) * h2 * math.log(k * (k - 1) / 2.0 / delta)


# ---------------------------------------------------------------------------- Theorem 1
@dataclass(frozen=True)
class Theorem1:
    """Cost-gap complexities of PSST (paper Theorem 1) for one exact Q table.

    Attributes
    ----------
    h1, h2 : float
        ``H1 = max_c max_{i != 1} Nbar / Delta_{c,i}^2`` and
        ``H2 = max_c max_{i != 1} i Nbar / Delta_{c,i}^2`` with
        ``Nbar = (N(a_{c,1}) + N_max) / 2``; ``inf`` when some context has tied best arms.
    h1_c, h2_c : ndarray, shape (CX,)
        Per-context values.
    classic_h2_c : ndarray, shape (CX,)
        Classic ``max_i i / Delta_{c,i}^2`` per context (unit costs, no ``Nbar``).
    n_prompts, n_contexts, n_max, rounds : int
        ``|P|``, ``|C|``, ``N_max`` and ``R = ceil(log2(|P| N_max))``.
    """

    h1: float
    h2: float
    h1_c: np.ndarray
    h2_c: np.ndarray
    classic_h2_c: np.ndarray
    n_prompts: int
    n_contexts: int
    n_max: int
    rounds: int

    @property
    def n_arms(self) -> int:
        return self.n_prompts * self.n_max

    @property
    def denominator(self) -> float:
        """``min(2 |P| H1, 8 |C| H2)``."""
        return min(2.0 * self.n_prompts * self.h1, 8.0 * self.n_contexts * self.h2)

    def bound(self, budget) -> np.ndarray:
        """Theorem 1 error bound ``3 |C| R exp(-T / (R min(2|P| H1, 8|C| H2)))`` (may exceed 1).

        The success probability is at least one minus this.
        """
        t = np.asarray(budget, dtype=np.float64)
        pre = 3.0 * self.n_contexts * self.rounds
        if not np.isfinite(self.denominator):
            return np.full(t.shape, np.inf)
        return pre * np.exp(-t / (self.rounds * self.denominator))

    def budget(self, delta: float) -> float:
        """Budget T at which :meth:`bound` equals ``delta``."""
        delta = check_real(delta, "delta", low=0.0, high=1.0, closed="none")
        pre = 3.0 * self.n_contexts * self.rounds
        return self.rounds * self.denominator * math.log(pre / delta)

    def plain_sh_bound(self, budget) -> np.ndarray:
        """See :func:`plain_sh_bound` (with this table's classic per-context H2)."""
        return plain_sh_bound(self.classic_h2_c, self.n_arms, self.n_max, budget)

    def plain_sh_budget(self, delta: float) -> float:
        """Budget at which :meth:`plain_sh_bound` equals ``delta``."""
        delta = check_real(delta, "delta", low=0.0, high=1.0, closed="none")
        cx, lg = self.n_contexts, math.log2(self.n_arms)
        h2 = float(np.max(self.classic_h2_c))
        return cx * self.n_max * 8.0 * h2 * lg * math.log(3.0 * cx * lg / delta)


def theorem1(q) -> Theorem1:
    """Theorem 1 complexities of an exact Q table ``q[c, p, N - 1]`` (paper Thm 1).

    Parameters
    ----------
    q : array_like, shape (CX, P, n_max)
        Exact ``Q(c, p, N)`` (e.g. :meth:`sim.Environment.q_table`).

    Notes
    -----
    In context c the arms are sorted by decreasing Q (``a_{c,1}`` the best; ties keep the lower
    flat index first), ``Delta_{c,i} = Q(c, a_{c,1}) - Q(c, a_{c,i})`` and
    ``Nbar = (N(a_{c,1}) + N_max)/2``. The theorem assumes objectives in [-1, 1]; it is applied
    here to the utilities as they are.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 3 or q.shape[1] * q.shape[2] < 2 or not np.all(np.isfinite(q)):
        raise ValueError(f"q must be a finite (CX, P, n_max) table with >= 2 arms; got {q.shape}")
    cx, n_p, n_max = q.shape
    flat = q.reshape(cx, -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    srt = np.take_along_axis(flat, order, axis=1)
    gaps = srt[:, :1] - srt[:, 1:]  # (CX, A - 1)
    gaps[gaps < TIE_TOL] = 0.0  # exact ties up to rounding (e.g. binary MV at N = 2m and 2m - 1)
    n_best = order[:, 0] % n_max + 1
    nbar = (n_best + n_max) / 2.0
    idx = np.arange(2, flat.shape[1] + 1)
    with np.errstate(divide="ignore"):
        inv = 1.0 / gaps**2
    h1_c = nbar * inv.max(axis=1)
    h2_c = nbar * (idx * inv).max(axis=1)
    classic = (idx * inv).max(axis=1)
    rounds = max(1, math.ceil(math.log2(n_p * n_max)))
    return Theorem1(float(h1_c.max()), float(h2_c.max()), h1_c, h2_c, classic, n_p, cx, n_max,
                    rounds)


def plain_sh_bound(classic_h2_c, n_arms: int, n_max: int, budget) -> np.ndarray:
    """Karnin's bound for Sequential Halving without sharing across contexts or scales.

    Each context runs its own SH over its ``n_arms`` (prompt, N) arms with ``T/|C|`` of the
    budget, and a sample of an arm costs up to ``N_max`` completions, so each context gets at
    least ``T/(|C| N_max)`` unit samples; a union bound over contexts gives
    ``|C| 3 log2|A| exp(-T / (|C| N_max 8 H2 log2|A|))`` with ``H2`` the largest classic
    per-context ``H2`` (mission.md Sec. 4: the factor ``O(|C| N_max)`` over PSST).
    """
    h2 = float(np.max(classic_h2_c))
    cx = np.size(classic_h2_c)
    eff = np.asarray(budget, float) / (cx * n_max)
    return cx * sh_bound(h2, n_arms, eff)


# ---------------------------------------------------------------------------- measurement
def clopper_pearson(k, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) two-sided ``1 - alpha`` interval for a binomial proportion ``k/n``.

    ``lower = Beta(alpha/2; k, n - k + 1)`` quantile (0 when k = 0), ``upper = Beta(1 - alpha/2;
    k + 1, n - k)`` quantile (1 when k = n).
    """
    k = np.asarray(k)
    n = np.asarray(n)
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ValueError("clopper_pearson needs 0 <= k <= n and n >= 1")
    alpha = check_real(alpha, "alpha", low=0.0, high=1.0, closed="none")
    with np.errstate(invalid="ignore"):
        lo = np.where(k == 0, 0.0, stats.beta.ppf(alpha / 2, k, n - k + 1))
        hi = np.where(k == n, 1.0, stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def budget_to_reach(budgets, errors, delta: float) -> float:
    """First budget at which a measured error curve reaches ``<= delta``.

    Linear interpolation of the error against ``log T`` between the last budget above ``delta``
    and the first at or below it; the first budget itself when the curve starts at or below;
    ``inf`` when it is never reached (report "> max budget").
    """
    t = np.asarray(budgets, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if t.ndim != 1 or t.shape != e.shape or t.size < 1 or np.any(t <= 0) or np.any(
            np.diff(t) <= 0):
        raise ValueError("budgets must be positive and increasing, one error per budget")
    delta = check_real(delta, "delta", low=0.0, high=1.0)
    hit = np.flatnonzero(e <= delta)
    if hit.size == 0:
        return float("inf")
    j = int(hit[0])
    if j == 0:
        return float(t[0])
    x0, x1 = math.log(t[j - 1]), math.log(t[j])
    frac = (e[j - 1] - delta) / (e[j - 1] - e[j])
    return float(math.exp(x0 + frac * (x1 - x0)))


# ---------------------------------------------------------------------------- a clear-gap instance
#: Answer laws of :func:`complexity_instance` (correct answer first). Prompt 0 is the best at
#: N = 1 but the correct answer is not its mode (its accuracy falls to 0 as N grows); prompt 1
#: is the joint optimum (correct answer the strict mode of four answers).
INSTANCE_LAWS = (
    (0.46, 0.54, 0.00, 0.00),
    (0.42, 0.20, 0.20, 0.18),
    (0.38, 0.22, 0.20, 0.20),
    (0.44, 0.40, 0.16, 0.00),
    (0.30, 0.50, 0.20, 0.00),
    (0.25, 0.25, 0.25, 0.25),
)


def complexity_instance(*, n_max: int = 8, n_queries: int = 40, cost: float = 0.01,
                        cost_weights=(0.2, 0.5, 1.0)):
    """A small majority-vote environment with clear gaps and a deceiving prompt.

    Six prompts with the same answer law on every query (:data:`INSTANCE_LAWS`), so the train
    and test splits have identical exact Q tables and the error of a learner is pure
    best-arm-identification error; ``n_max`` = 8 (48 arms per context), three budget contexts
    with cost weights ``cost_weights`` and ``cost`` per completion. The N = 1 winner (prompt 0)
    deceives: the disjoint and prompt-only choices are wrong in every context.
    """
    from sim import Contexts, Environment

    laws = np.array(INSTANCE_LAWS, dtype=np.float64)
    probs = np.repeat(laws[:, None, :], n_queries, axis=1)
    cw = np.asarray(cost_weights, dtype=np.float64)
    ctx = Contexts(np.ones((cw.size, 1)), cw, np.full(cw.size, 1.0 / cw.size),
                   tuple(f"cost weight {w:g}" for w in cw))
    n_train = round(0.8 * n_queries)
    return Environment(
        name="clear-gap", kind="mv", probs=probs, correct=np.zeros(n_queries, np.int64),
        cost=np.full(laws.shape[0], cost), contexts=ctx, n_max=n_max,
        train=np.arange(n_train), test=np.arange(n_train, n_queries),
        prompt_names=tuple(f"p{i}" for i in range(laws.shape[0])),
        description="clear-gap instance of the sample-complexity figure (homogeneous queries)",
    )
