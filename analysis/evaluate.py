"""Judging policies exactly, and running learners over replicates.

:func:`evaluate` scores a policy with the exact Q table of the test split (paper Eq. 4,
``ACR(pi) = sum_c P(c) Q(c, pi(c))``): no Monte Carlo noise. :func:`run_cell` runs one learner on
one replicate (its seeds derive from the sweep seed and the cell key, :mod:`analysis.seeds`), and
:func:`run_replicates` maps it over a grid of learners × budgets × replicates, serially, in a
process pool or on any executor, with identical results whatever runs it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

import sim
from sim.datasets import SYNTH_ENVS
from sim.env import TIE_TOL
from sim.learners import make

from .executors import LocalExecutor
from .seeds import env_seed, learner_seed

#: Metrics of one run returned by :func:`run_cell` and aggregated by :func:`run_replicates`.
METRICS = ("acr", "oracle_acr", "relative", "error", "spent")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Exact quality of a policy on a split.

    Attributes
    ----------
    acr : float
        Average contextual return ``sum_c P(c) Q(c, pi(c))`` (paper Eq. 4).
    oracle_acr : float
        ACR of the optimal policy ``sum_c P(c) max_a Q(c, a)``.
    relative : float
        ``acr / oracle_acr`` (NaN if ``oracle_acr == 0``).
    error : bool
        True if the policy is suboptimal in some context: regret above
        :data:`sim.env.TIE_TOL` (1e-12). Choosing an arm tied with the best is not an
        error, also when the tie holds only up to rounding (binary majority vote at N = 2m - 1
        and 2m without cost: equal in exact arithmetic, a few 1e-16 apart in floating point).
    regret : ndarray, shape (CX,)
        Simple regret per context ``max_a Q(c, a) - Q(c, pi(c))``.
    """

    acr: float
    oracle_acr: float
    relative: float
    error: bool
    regret: np.ndarray


def evaluate(env: sim.Environment, policy, split: str = "test") -> Evaluation:
    """Exact ACR, relative ACR, error and per-context regret of ``policy`` on ``split``.

    Parameters
    ----------
    env : Environment
    policy : Policy or array_like of shape (CX, 2)
        A :class:`sim.learners.Policy` or its ``choice`` table of ``(prompt, N)``.
    split : {"test", "train", "all"}
    """
    choice = np.asarray(getattr(policy, "choice", policy))
    n_ctx = env.n_contexts
    if choice.shape != (n_ctx, 2) or not np.issubdtype(choice.dtype, np.integer):
        raise ValueError(f"policy: choice must be {n_ctx} integer (prompt, N) rows; "
                         f"got shape {choice.shape}")
    p, n = choice[:, 0], choice[:, 1]
    if np.any((p < 0) | (p >= env.n_prompts)) or np.any((n < 1) | (n > env.n_max)):
        raise ValueError(f"policy: prompts must be in [0, {env.n_prompts - 1}] and N in "
                         f"[1, {env.n_max}]; got {choice.tolist()}")
    q = env.q_table(split)
    value = q[np.arange(n_ctx), p, n - 1]
    best = q.reshape(n_ctx, -1).max(axis=1)
    regret = best - value
    probs = env.contexts.probs
    acr = float(probs @ value)
    oracle = float(probs @ best)
    relative = acr / oracle if oracle != 0 else math.nan
    return Evaluation(acr=acr, oracle_acr=oracle, relative=relative,
                      error=bool(np.any(regret > TIE_TOL)), regret=regret)


# --------------------------------------------------------------------------- replicates

_BASE: dict = {}  # real / file environments by name: loaded once per process
_REPLICAS: OrderedDict = OrderedDict()  # (name, seed, replicate) -> Environment, small LRU
#: Replicate environments kept per process. Cells run replicate-major (run_replicates, sweeps)
#: and every executor hands a worker its chunks in order, so a worker needs the current
#: replicate and at most the previous one; each synth-categorical replicate holds ~140 MB of
#: exact curves, so a longer cache only grows the workers (8 entries: ~1.2 GB each).
_LRU_SIZE = 2


def replicate_env(env_name: str, seed: int, replicate: int) -> sim.Environment:
    """The environment of replicate ``replicate``: ``load_env(env_name, seed=env_seed(...))``.

    Cached per process. Real and file environments are loaded once and resplit per replicate
    with the same stream :func:`sim.load_env` uses, sharing the exact per-query curves (so a
    replicate's Q table costs a mean over the test queries); synthetic environments are generated
    per replicate.
    """
    key = (str(env_name), int(seed), int(replicate))
    if key in _REPLICAS:
        _REPLICAS.move_to_end(key)
        return _REPLICAS[key]
    ss = env_seed(seed, env_name, replicate)
    if env_name in SYNTH_ENVS:
        env = sim.load_env(env_name, seed=ss)
    else:
        if env_name not in _BASE:
            _BASE[env_name] = sim.load_env(env_name)
        env = _BASE[env_name].resplit(rng=ss.spawn(2)[1])  # = load_env(env_name, seed=ss)
    _REPLICAS[key] = env
    if len(_REPLICAS) > _LRU_SIZE:
        _REPLICAS.popitem(last=False)
    return env


def run_cell(env_name: str, learner_name: str, params: dict | None, budget: int,
             replicate: int, seed: int) -> dict:
    """One learner run on one replicate, scored exactly; plain-JSON metrics.

    Seeds: the environment from ``env_seed(seed, env_name, replicate)``, the learner from
    ``learner_seed(seed, env_name, replicate, learner.key, budget)`` where ``learner.key`` is the
    canonical name + sorted parameters. A budget below the learner's minimum is not an error
    here: the cell comes back with ``feasible = False`` and ``None`` metrics.

    Returns
    -------
    dict
        ``env, learner (key), name, params, budget, replicate, seed, feasible, min_budget,``
        ``acr, oracle_acr, relative, error, spent, choice`` (list of ``[prompt, N]``).
    """
    params = dict(params or {})
    learner = make(learner_name, **params)
    env = replicate_env(env_name, seed, replicate)
    need = learner.min_budget(env)
    out = {"env": env_name, "learner": learner.key, "name": learner_name, "params": params,
           "budget": int(budget), "replicate": int(replicate), "seed": int(seed),
           "feasible": bool(budget >= need), "min_budget": int(need)}
    if budget < need:
        out.update({m: None for m in METRICS}, choice=None)
        return out
    rng = learner_seed(seed, env_name, replicate, learner.key, budget)
    policy = learner.fit(env, int(budget), rng=rng)
    ev = evaluate(env, policy)
    out.update(acr=ev.acr, oracle_acr=ev.oracle_acr,
               relative=None if math.isnan(ev.relative) else ev.relative, error=ev.error,
               spent=policy.spent, choice=policy.choice.tolist())
    return out


def _learner_specs(learners) -> list[tuple[str, dict]]:
    specs = []
    for item in learners:
        if isinstance(item, str):
            specs.append((item, {}))
        else:
            name, params = item
            specs.append((str(name), dict(params or {})))
    if not specs:
        raise ValueError("learners: give at least one learner name or (name, params) pair")
    return specs


def _mean_se(values):
    vals = np.array([float(v) for v in values if v is not None])
    if vals.size == 0:
        return None, None
    se = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else None
    return float(vals.mean()), se


def run_replicates(env_name: str, learners, budgets, runs: int, *, seed: int = 0,
                   workers: int = 1, executor=None, progress=None) -> dict:
    """Run every learner at every budget on ``runs`` replicates; mean and standard error.

    Parameters
    ----------
    env_name : str
        Built-in environment name or path to an ``.npz`` environment file.
    learners : sequence of str or (name, params)
    budgets : sequence of int
    runs : int
        Replicates (each its own split, or generated environment for synthetic ones).
    seed : int
        Sweep seed; every cell's seeds derive from it and the cell key (:mod:`analysis.seeds`).
    workers : int
        Local worker processes (:class:`analysis.executors.LocalExecutor`, started from a fork
        server; 1 runs in this process) when no ``executor`` is given. As with any non-fork
        start method, a script calling this must guard its entry point with
        ``if __name__ == "__main__":``.
    executor : object with ``.map(fn, *iterables)``, optional
        Runs the cells instead (e.g. a Dask or thread executor).
    progress : callable ``(done, total)``, optional

    Returns
    -------
    dict
        ``{"env", "seed", "runs", "budgets", "learners": {key: {"name", "params", "n",``
        ``"mean": {metric: [per budget]}, "se": {metric: [...]},``
        ``"values": {metric: [[per replicate] per budget]}}}}`` with metrics
        :data:`METRICS`; ``n`` counts the feasible replicates per budget, ``None`` marks an
        infeasible budget (below the learner's minimum) or an undefined SE.
        Identical for any number of workers or any executor.
    """
    specs = _learner_specs(learners)
    budgets = [int(b) for b in budgets]
    if not budgets or min(budgets) < 0:
        raise ValueError(f"budgets must be a non-empty list of ints >= 0; got {budgets}")
    runs = int(runs)
    if runs < 1:
        raise ValueError(f"runs must be an int >= 1; got {runs}")
    if int(workers) < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers}")
    keys = [make(name, **params).key for name, params in specs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"learners: duplicate learner specifications {keys}")
    cells = [(env_name, name, params, b, r, int(seed))
             for r in range(runs) for name, params in specs for b in budgets]
    columns = [list(col) for col in zip(*cells, strict=True)]
    total = len(cells)
    own = executor is None
    if own:
        executor = LocalExecutor(int(workers))
    try:
        results = []
        for i, res in enumerate(executor.map(run_cell, *columns)):
            results.append(res)
            if progress is not None:
                progress(i + 1, total)
    finally:
        if own:
            executor.close()
    out = {"env": env_name, "seed": int(seed), "runs": runs, "budgets": budgets,
           "learners": {}}
    n_b, n_l = len(budgets), len(specs)
    for li, ((name, params), key) in enumerate(zip(specs, keys, strict=True)):
        values = {m: [[results[(r * n_l + li) * n_b + bi][m] for r in range(runs)]
                      for bi in range(n_b)] for m in METRICS}
        stats = {m: [_mean_se(v) for v in values[m]] for m in METRICS}
        out["learners"][key] = {
            "name": name, "params": params,
            "n": [sum(v is not None for v in col) for col in values["acr"]],
            "mean": {m: [s[0] for s in stats[m]] for m in METRICS},
            "se": {m: [s[1] for s in stats[m]] for m in METRICS},
            "values": values,
        }
    return out
