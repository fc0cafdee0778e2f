"""Learners for IAPO: PSST, Top-K screening and the paper's baselines.

``make(name, **params)`` builds a learner; ``learner.fit(env, budget, rng=...)`` returns a
:class:`Policy` (one ``(prompt, N)`` arm per context, completions spent, raw pulls per arm).
Every learner charges its pulls to one :class:`Ledger`, so ``spent <= budget`` always; a budget
below ``learner.min_budget(env)`` raises a ValueError stating the minimum.

==================  ====================================================  ====================
name                what                                                  params (defaults)
==================  ====================================================  ====================
psst                PSST, paper Algorithm 1 (psst.py)                     fresh=False
psst-topk           PSST with Top-K screening                             k=4, rho=0.2, fresh
psst-k1, -k4, -k8   psst-topk with k = 1, 4, 8                            rho, fresh
uniform             one batch over the (p, n_max) arms (bandits.py)
egreedy             sequential epsilon-greedy                             epsilon=0.15
softmax             sequential softmax                                    temperature=0.05
ucb                 sequential UCB                                        c=0.1
triple-n1, -nrandom contextual TRIPLE-SH at N = 1 (halving.py)
disjoint            prompt at N = 1, then N                               stage1=0.5
sh                  plain Sequential Halving per context, no sharing
sr                  Successive Rejects per context, no sharing
oracle              the exact best arm per context (oracle.py)
==================  ====================================================  ====================

PSST and Top-K also accept ``trace=True`` (keeps the active sets of every round in
``policy.info``; does not change results).
"""

from __future__ import annotations

from .bandits import Sequential, Uniform
from .base import BudgetError, Learner, Ledger, Policy, argmax_ties, rank_arms, tie_keys
from .halving import Disjoint, SequentialHalving, SuccessiveRejects, Triple
from .oracle import Oracle
from .psst import PSST, TopK

__all__ = ["NAMES", "BudgetError", "Learner", "Ledger", "Policy", "argmax_ties", "make",
           "rank_arms", "tie_keys"]

# name -> (class, fixed parameters)
_REGISTRY = {
    "psst": (PSST, {}),
    "psst-topk": (TopK, {}),
    "psst-k1": (TopK, {"k": 1}),
    "psst-k4": (TopK, {"k": 4}),
    "psst-k8": (TopK, {"k": 8}),
    "uniform": (Uniform, {}),
    "egreedy": (Sequential, {}),
    "softmax": (Sequential, {}),
    "ucb": (Sequential, {}),
    "triple-n1": (Triple, {}),
    "triple-nrandom": (Triple, {}),
    "disjoint": (Disjoint, {}),
    "sh": (SequentialHalving, {}),
    "sr": (SuccessiveRejects, {}),
    "oracle": (Oracle, {}),
}

#: Every learner name, in the order of the paper's figures.
NAMES = tuple(_REGISTRY)


def make(name: str, **params) -> Learner:
    """Build the learner ``name`` with ``params``.

    Raises
    ------
    ValueError
        For an unknown name (listing :data:`NAMES`) or an unknown or out-of-range parameter.
    """
    if name not in _REGISTRY:
        raise ValueError(f"learner: unknown name {name!r}; valid names: {', '.join(NAMES)}")
    cls, fixed = _REGISTRY[name]
    clash = set(fixed) & set(params)
    if clash:
        raise ValueError(f"{name}: parameter(s) {sorted(clash)} are fixed by the name; use "
                         f"psst-topk to set them")
    try:
        learner = cls(name, **fixed, **params)
    except TypeError as exc:  # unexpected keyword
        import inspect

        valid = [p for p in inspect.signature(cls.__init__).parameters
                 if p not in ("self", "name", "params") and p not in fixed]
        unknown = sorted(set(params) - set(valid))
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; valid: {valid}") from exc
    return learner
