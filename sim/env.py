"""The :class:`Environment`: prompts × queries × contexts, a train/test split, exact Q tables."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ._validate import PROB_SUM_TOL, TIE_RULES, as_rng, check_choice, check_real
from .contexts import Contexts
from .exact import _bon_curves, mv_accuracy

KINDS = ("mv", "bon")
#: Q values closer than this are ties: rounding noise of exactly tied arms (Q values are sums of
#: probabilities; e.g. binary majority vote has Q(p, 2m) = Q(p, 2m - 1) exactly).
TIE_TOL = 1e-12
SPLITS = ("train", "test", "all")


@dataclass(frozen=True, eq=False)
class Environment:
    """An offline IAPO environment (the response law of every prompt on every query).

    Attributes
    ----------
    name : str
    kind : {"mv", "bon"}
        Majority vote (categorical answers, one correct) or best-of-N (outcome vectors).
    probs : ndarray, shape (P, X, C) or (P, X, M)
        MV: answer law of prompt ``p`` on query ``x``. BoN: probability of each outcome vector.
    correct : ndarray of int, shape (X,) or None
        MV: index of the correct answer of each query.
    values : ndarray, shape (P, X, M, K) or None
        BoN: the K objective values of each outcome.
    cost : ndarray, shape (P,)
        Cost of one completion of each prompt (proportional to its mean token count).
    contexts : Contexts
    n_max : int
        Largest number of samples N considered.
    train, test : ndarray of int
        Query indices of the split; learners sample ``train``, evaluation uses ``test``.
    tie : {"random", "pessimistic"}
        MV tie rule (paper: credit ``1/t`` among ``t`` tied leaders).
    """

    name: str
    kind: str
    probs: np.ndarray
    cost: np.ndarray
    contexts: Contexts
    n_max: int
    train: np.ndarray
    test: np.ndarray
    correct: np.ndarray | None = None
    values: np.ndarray | None = None
    tie: str = "random"
    prompt_names: tuple[str, ...] = ()
    description: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        check_choice(self.kind, "kind", KINDS)
        check_choice(self.tie, "tie", TIE_RULES)
        probs = np.asarray(self.probs, dtype=np.float64)
        if probs.ndim != 3 or min(probs.shape) < 1:
            raise ValueError(
                f"probs must have shape (P, X, C) with P, X, C >= 1; got {probs.shape}"
            )
        n_p, n_x, n_a = probs.shape
        if not np.all(np.isfinite(probs)) or np.any(probs < 0):
            raise ValueError("probs must be finite and non-negative")
        sums = probs.sum(axis=-1)
        if np.any(np.abs(sums - 1.0) > PROB_SUM_TOL):
            raise ValueError(f"probs must sum to 1 over the last axis (tolerance {PROB_SUM_TOL:g})")
        probs = probs / sums[..., None]
        cost = np.asarray(self.cost, dtype=np.float64).reshape(-1)
        if cost.shape != (n_p,) or not np.all(np.isfinite(cost)) or np.any(cost < 0):
            raise ValueError(f"cost must be {n_p} finite non-negative numbers (one per prompt)")
        if not isinstance(self.contexts, Contexts):
            raise ValueError("contexts must be a sim.Contexts")
        if isinstance(self.n_max, bool) or not isinstance(self.n_max, int | np.integer):
            raise ValueError(f"n_max must be an int >= 1; got {self.n_max!r}")
        if self.n_max < 1:
            raise ValueError(f"n_max must be an int >= 1; got {self.n_max}")
        if self.kind == "mv":
            if self.contexts.n_objectives != 1:
                raise ValueError("an MV environment has one objective: contexts.weights is (CX, 1)")
            correct = np.asarray(self.correct)
            if correct.shape != (n_x,) or not np.issubdtype(correct.dtype, np.integer):
                raise ValueError(f"correct must be {n_x} integer answer indices")
            if np.any(correct < 0) or np.any(correct >= n_a):
                raise ValueError(f"correct must be in [0, {n_a - 1}]")
            object.__setattr__(self, "correct", correct.astype(np.int64))
        else:
            values = np.asarray(self.values, dtype=np.float64)
            if values.ndim != 4 or values.shape[:3] != probs.shape:
                raise ValueError(
                    f"values must have shape {probs.shape + ('K',)}; got {values.shape}"
                )
            if not np.all(np.isfinite(values)):
                raise ValueError("values must be finite")
            if values.shape[3] != self.contexts.n_objectives:
                raise ValueError(
                    f"contexts weigh {self.contexts.n_objectives} objectives but values have "
                    f"{values.shape[3]}"
                )
            object.__setattr__(self, "values", values)
        for name in ("train", "test"):
            idx = np.asarray(getattr(self, name)).reshape(-1)
            if (idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or np.any(idx < 0)
                    or np.any(idx >= n_x)):
                raise ValueError(
                    f"{name} must be non-empty integer query indices in [0, {n_x - 1}]"
                )
            object.__setattr__(self, name, idx.astype(np.int64))
        names = tuple(self.prompt_names) or tuple(f"p{i}" for i in range(n_p))
        if len(names) != n_p:
            raise ValueError(f"prompt_names must have {n_p} entries")
        object.__setattr__(self, "prompt_names", names)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "cost", cost)
        object.__setattr__(self, "n_max", int(self.n_max))

    # ------------------------------------------------------------------ shape
    @property
    def n_prompts(self) -> int:
        return self.probs.shape[0]

    @property
    def n_queries(self) -> int:
        return self.probs.shape[1]

    @property
    def n_contexts(self) -> int:
        return len(self.contexts)

    def split_indices(self, split: str) -> np.ndarray:
        """Query indices of ``split`` ("train", "test" or "all")."""
        check_choice(split, "split", SPLITS)
        if split == "all":
            return np.arange(self.n_queries)
        return self.train if split == "train" else self.test

    def resplit(self, *, rng=None, train_fraction: float = 0.8) -> Environment:
        """A copy with a fresh random train/test split (the paper reshuffles 80/20 every run).

        The exact per-query curves are shared with ``self`` (they do not depend on the split).
        """
        frac = check_real(train_fraction, "train_fraction", low=0.0, high=1.0, closed="none")
        n_x = self.n_queries
        if n_x < 2:
            raise ValueError("resplit needs at least 2 queries")
        n_train = min(max(1, round(frac * n_x)), n_x - 1)
        perm = as_rng(rng).permutation(n_x)
        return dataclasses.replace(
            self, train=np.sort(perm[:n_train]), test=np.sort(perm[n_train:])
        )

    # ------------------------------------------------------------------ exact math
    def query_curves(self) -> np.ndarray:
        """Exact expected objective per query and N, cached.

        MV: ``acc[p, x, N-1]`` = P(correct) of plurality voting (shape (P, X, n_max)).
        BoN: ``emax[c, p, x, N-1]`` = E[max of N weighted rewards] (shape (CX, P, X, n_max)).
        """
        if "curves" not in self._cache:
            if self.kind == "mv":
                ns = np.arange(1, self.n_max + 1)
                corr = np.broadcast_to(self.correct, self.probs.shape[:2])
                curves = mv_accuracy(self.probs, corr, ns, tie=self.tie)
            else:
                curves = _bon_curves(self.scalarized_values(), self.probs, self.n_max)
            curves.setflags(write=False)
            self._cache["curves"] = curves
        return self._cache["curves"]

    def scalarized_values(self) -> np.ndarray:
        """BoN: ``sum_k w[c, k] * values[p, x, m, k]`` for every context, shape (CX, P, X, M)."""
        if self.kind != "bon":
            raise ValueError("scalarized_values is defined for best-of-N environments (kind='bon')")
        if "svals" not in self._cache:
            sv = np.einsum("ck,pxmk->cpxm", self.contexts.weights, self.values)
            sv.setflags(write=False)
            self._cache["svals"] = sv
        return self._cache["svals"]

    def cost_table(self) -> np.ndarray:
        """``cost_weight[c] * N * cost[p]``, shape (CX, P, n_max)."""
        ns = np.arange(1, self.n_max + 1)
        return self.contexts.cost_weight[:, None, None] * self.cost[None, :, None] * ns

    def q_table(self, split: str = "test") -> np.ndarray:
        """Exact Q(c, p, N) on a split, shape (CX, P, n_max) (paper Eq. 3).

        MV: ``w[c] * mean_x Acc(p, x, N) - cost_weight[c] * N * cost[p]``.
        BoN: ``mean_x E[max_i w_c . O(y_i)] - cost_weight[c] * N * cost[p]``.
        """
        idx = self.split_indices(split)
        curves = self.query_curves()
        if self.kind == "mv":
            mean = curves[:, idx, :].mean(axis=1)
            task = self.contexts.weights[:, 0, None, None] * mean[None]
        else:
            task = curves[:, :, idx, :].mean(axis=2)
        return task - self.cost_table()

    def optimal_arms(self, split: str = "test") -> np.ndarray:
        """The best (prompt, N) per context, shape (CX, 2); ties go to the lowest (p, N)."""
        q = self.q_table(split)
        flat = q.reshape(self.n_contexts, -1).argmax(axis=1)
        p, n_idx = np.unravel_index(flat, q.shape[1:])
        return np.stack([p, n_idx + 1], axis=1)
