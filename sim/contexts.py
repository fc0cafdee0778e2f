"""Contexts: user weights over the K objectives plus a weight on cost (paper Sec. "IAPO").

A context ``c = (w_1..w_K, w_cost)`` turns a block of ``k`` completions of prompt ``p`` into the
scalar utility ``sum_k w_k O_k - w_cost * k * cost[p]`` (Eqs. 1-2 with ``O_{K+1} = -cost``).
Here ``cost_weight`` is stored as the non-negative magnitude ``-w_{K+1}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import PROB_SUM_TOL

#: Cost weights of the budget regimes of the released MATH / CommonsenseQA environments.
MV_BUDGET_COST_WEIGHTS = {"low": 0.0, "mid": 0.2, "high": 1.0}


@dataclass(frozen=True, eq=False)
class Contexts:
    """A finite set of contexts with a probability of occurrence.

    Attributes
    ----------
    weights : ndarray, shape (CX, K)
        Weight of each objective in each context.
    cost_weight : ndarray, shape (CX,)
        Non-negative penalty per unit of cost (``-w_{K+1}``).
    probs : ndarray, shape (CX,)
        Context distribution (sums to 1).
    names : tuple of str
    """

    weights: np.ndarray
    cost_weight: np.ndarray
    probs: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self):
        w = np.atleast_2d(np.asarray(self.weights, dtype=np.float64))
        cw = np.asarray(self.cost_weight, dtype=np.float64).reshape(-1)
        pr = np.asarray(self.probs, dtype=np.float64).reshape(-1)
        n = w.shape[0]
        if cw.shape != (n,) or pr.shape != (n,) or len(self.names) != n:
            raise ValueError(
                f"contexts: weights has {n} rows but cost_weight, probs and names have "
                f"{cw.shape[0]}, {pr.shape[0]}, {len(self.names)} entries"
            )
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(cw))):
            raise ValueError("contexts: weights and cost_weight must be finite")
        if np.any(cw < 0):
            raise ValueError("contexts: cost_weight must be >= 0 (it is the penalty -w_{K+1})")
        if np.any(pr < 0) or abs(pr.sum() - 1.0) > PROB_SUM_TOL:
            raise ValueError(f"contexts: probs must be >= 0 and sum to 1 (tol {PROB_SUM_TOL:g})")
        for arr in (w, cw, pr):
            arr.setflags(write=False)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "cost_weight", cw)
        object.__setattr__(self, "probs", pr / pr.sum())
        object.__setattr__(self, "names", tuple(str(s) for s in self.names))

    def __len__(self) -> int:
        return self.weights.shape[0]

    @property
    def n_objectives(self) -> int:
        return self.weights.shape[1]


def mv_budget_contexts(cost_weights=None) -> Contexts:
    """The three budget regimes of the majority-vote environments (|C| = 3, uniform).

    Objective weight 1 on correctness; cost weights 0.0, 0.2, 1.0 for low / mid / high as in the
    released MATH and CommonsenseQA environments (mission.md Sec. 1).
    """
    cw = MV_BUDGET_COST_WEIGHTS if cost_weights is None else dict(cost_weights)
    names = tuple(cw)
    n = len(names)
    return Contexts(np.ones((n, 1)), np.array([cw[k] for k in names]), np.full(n, 1.0 / n), names)


def bon_contexts(
    first_weights=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), cost_weights=None
) -> Contexts:
    """Bi-objective best-of-N contexts: ``(w, 1 - w)`` for each weight × each budget regime.

    The default gives the paper's 27 contexts (weights 0.1..0.9 × low / mid / high), uniform.
    """
    cw = MV_BUDGET_COST_WEIGHTS if cost_weights is None else dict(cost_weights)
    rows, costs, names = [], [], []
    for regime, c in cw.items():
        for w in first_weights:
            rows.append((w, 1.0 - w))
            costs.append(c)
            names.append(f"w={w:.1f}/{regime}")
    n = len(rows)
    return Contexts(np.array(rows), np.array(costs), np.full(n, 1.0 / n), tuple(names))
