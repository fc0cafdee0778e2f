"""Small environments for the learner and evaluation tests (built directly, so they are fast)."""

from __future__ import annotations

import numpy as np

import sim
from sim import Contexts, Environment


def _split(n_queries, gen):
    perm = gen.permutation(n_queries)
    n_train = max(1, min(n_queries - 1, round(0.8 * n_queries)))
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def contexts(cost_weights, n_objectives=1, first_weights=None):
    """Contexts with the given cost weights (one objective, weight 1, unless told)."""
    n = len(cost_weights)
    if n_objectives == 1:
        w = np.ones((n, 1))
    else:
        fw = np.resize(np.asarray(first_weights, dtype=float), n)
        w = np.stack([fw, 1.0 - fw], axis=1)
    return Contexts(w, np.asarray(cost_weights, dtype=float), np.full(n, 1.0 / n),
                    tuple(f"c{i}" for i in range(n)))


def small_mv(seed=0, n_prompts=4, n_queries=24, n_max=4, n_answers=3, n_contexts=3):
    """Majority vote: Beta per-query correctness, 3 answers, |C| budget regimes."""
    gen = np.random.default_rng(seed)
    probs = np.stack([
        sim.mv_laws(sim.beta_latent_q(gen.uniform(0.3, 0.8), 4.0, n_queries, rng=gen),
                    n_answers, wrong_shape=gen.uniform(0, 1))
        for _ in range(n_prompts)])
    train, test = _split(n_queries, gen)
    cw = np.linspace(0.0, 1.0, n_contexts) if n_contexts > 1 else [0.2]
    return Environment(name="small-mv", kind="mv", probs=probs,
                       correct=np.zeros(n_queries, np.int64),
                       cost=gen.uniform(0.01, 0.05, n_prompts), contexts=contexts(cw),
                       n_max=n_max, train=train, test=test)


def small_bon(seed=0, n_prompts=3, n_queries=12, n_max=4, n_outcomes=4, n_contexts=4):
    """Bi-objective best-of-N with integer scores, ``n_contexts`` weight/budget contexts."""
    gen = np.random.default_rng(seed)
    vals, prs = [], []
    for _ in range(n_prompts):
        v, p = sim.bon_laws(gen.uniform(0.5, 3.0, 2), gen.uniform(0.2, 1.5, 2), n_queries,
                            n_outcomes=n_outcomes, o_max=4.0, rng=gen)
        vals.append(v)
        prs.append(p)
    train, test = _split(n_queries, gen)
    cw = np.resize([0.0, 0.5, 1.0], n_contexts)
    ctx = contexts(cw, n_objectives=2, first_weights=np.linspace(0.2, 0.8, n_contexts))
    return Environment(name="small-bon", kind="bon", probs=np.stack(prs), values=np.stack(vals),
                       cost=gen.uniform(0.02, 0.2, n_prompts), contexts=ctx, n_max=n_max,
                       train=train, test=test)


def deterministic(kind="mv", seed=0, n_prompts=5, n_max=3, n_queries=6):
    """Rewards without noise: every completion of prompt ``p`` scores the same on every query.

    MV: prompt ``p`` is always right or always wrong; BoN: one outcome per prompt. Costs and
    objective values are distinct and every context has a positive cost weight, so every arm
    has a distinct utility in every context (no ties): a learner's output then depends on the
    data only, never on the rng, and must follow a relabelling of the prompts exactly.
    """
    gen = np.random.default_rng(seed)
    cost = gen.uniform(0.01, 0.1, n_prompts)
    train, test = _split(n_queries, gen)
    ctx = contexts([0.3, 1.0, 2.5]) if kind == "mv" else contexts(
        [0.3, 1.0, 2.5], n_objectives=2, first_weights=[0.25, 0.5, 0.75])
    if kind == "mv":
        good = np.arange(n_prompts) % 2 == 0
        probs = np.zeros((n_prompts, n_queries, 2))
        probs[good, :, 0] = 1.0
        probs[~good, :, 1] = 1.0
        return Environment(name="det-mv", kind="mv", probs=probs,
                           correct=np.zeros(n_queries, np.int64), cost=cost, contexts=ctx,
                           n_max=n_max, train=train, test=test)
    values = np.broadcast_to(gen.uniform(0, 1, (n_prompts, 1, 1, 2)),
                             (n_prompts, n_queries, 1, 2)).copy()
    return Environment(name="det-bon", kind="bon", probs=np.ones((n_prompts, n_queries, 1)),
                       values=values, cost=cost, contexts=ctx, n_max=n_max, train=train,
                       test=test)


def permuted(env: Environment, perm) -> Environment:
    """``env`` with prompt ``i`` of the result being prompt ``perm[i]`` of ``env``."""
    perm = np.asarray(perm)
    kw = dict(name=env.name, kind=env.kind, probs=env.probs[perm], cost=env.cost[perm],
              contexts=env.contexts, n_max=env.n_max, train=env.train, test=env.test,
              tie=env.tie)
    if env.kind == "mv":
        kw["correct"] = env.correct
    else:
        kw["values"] = env.values[perm]
    return Environment(**kw)


def unit_cost(n_arms, means, seed=0, n_queries=40):
    """``n_arms`` Bernoulli arms of unit cost: ``n_max = 1``, one context, MV with 2 answers.

    Prompt ``p`` is right with probability ``means[p]`` on every query, so it is a classic
    K-armed Bernoulli bandit (for the SH / SR allocation references).
    """
    gen = np.random.default_rng(seed)
    q = np.asarray(means, dtype=float)
    probs = np.stack([np.tile([m, 1 - m], (n_queries, 1)) for m in q])
    train, test = _split(n_queries, gen)
    return Environment(name="unit", kind="mv", probs=probs, correct=np.zeros(n_queries, np.int64),
                       cost=np.zeros(n_arms), contexts=contexts([0.0]), n_max=1, train=train,
                       test=test)


def clear_gap():
    """Best-of-N with a clear gap in every context (identical laws on every query).

    One objective; ``n_max = 2``. Prompt 0: scores {0, 1} w.p. 1/2 (E max of 1, 2 = 0.5, 0.75),
    cost 0.3; prompt 1: {0, 1} w.p. (0.7, 0.3) (0.3, 0.51), cost 0.05; prompt 2: always 0.2,
    cost 0.01. Cost weights 0, 0.3, 1: best arms (0, 2), (0, 2), (1, 2) with gaps to the
    runner-up 0.24, 0.09 and 0.21 (Q = E max - cw N cost).
    """
    n_q = 10
    values = np.zeros((3, n_q, 2, 1))
    probs = np.zeros((3, n_q, 2))
    values[0, :, :, 0] = [0.0, 1.0]
    probs[0] = [0.5, 0.5]
    values[1, :, :, 0] = [0.0, 1.0]
    probs[1] = [0.7, 0.3]
    values[2, :, :, 0] = [0.2, 0.2]
    probs[2] = [0.5, 0.5]
    return Environment(name="clear-gap", kind="bon", probs=probs, values=values,
                       cost=np.array([0.3, 0.05, 0.01]), contexts=contexts([0.0, 0.3, 1.0]),
                       n_max=2, train=np.arange(8), test=np.arange(8, 10))
