"""The oracle: the exact best arm per context on the test split, at zero cost."""

from __future__ import annotations

from .base import Learner


class Oracle(Learner):
    """Deploys ``env.optimal_arms("test")`` (ties to the lowest (p, N)); spends nothing."""

    uses_rng = False

    def __init__(self, name="oracle"):
        super().__init__(name)

    def min_budget(self, env) -> int:
        return 0

    def _fit(self, env, budget, ledger, rng, keys):
        return env.optimal_arms("test"), {}
