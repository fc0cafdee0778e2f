"""Monte Carlo pulls of (prompt, N) arms: the validating layer over :mod:`sim.kernels`.

A *pull* of arm ``(p, N)`` draws a query uniformly from a split, draws N i.i.d. completions of
prompt ``p`` on it, and aggregates them (paper's train-then-deploy protocol). :class:`Sampler`
serves learners (block reuse into :class:`Stats`); :func:`mv_simulate` and :func:`bon_simulate`
are plain Monte Carlo estimates used to cross-check the exact math.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ._validate import as_rng, check_int, check_n, check_probs, check_tie
from .env import Environment
from .exact import _check_correct, _check_outcomes

#: Largest number of pulls drawn at once; bounds memory whatever the budget.
CHUNK_PULLS = 4096


def _cdf(probs: np.ndarray) -> np.ndarray:
    """Cumulative laws whose entries reach exactly 1.0 from the last positive category on."""
    cdf = np.cumsum(probs, axis=-1)
    cdf /= cdf[..., -1:]
    last_pos = probs.shape[-1] - 1 - np.argmax(probs[..., ::-1] > 0, axis=-1)
    cdf[np.arange(probs.shape[-1]) >= last_pos[..., None]] = 1.0
    return np.ascontiguousarray(cdf)


def _env_cdf(env: Environment) -> np.ndarray:
    """``_cdf(env.probs)``, computed once per set of laws: cached (read-only) in ``env._cache``,
    which resplits of one environment share. Only arrays go in the cache, so an environment
    never references itself (no reference cycle keeps a replicate's arrays alive)."""
    cdf = env._cache.get("cdf")
    if cdf is None:
        cdf = _cdf(env.probs)
        cdf.setflags(write=False)
        env._cache["cdf"] = cdf
    return cdf


class Stats:
    """Per-(context, prompt, N) sums of block utilities and per-(prompt, N) block counts.

    Memory is ``O(CX * P * n_max)`` whatever the budget: statistics are sums, not samples.
    """

    def __init__(self, n_contexts: int, n_prompts: int, n_max: int):
        self.sums = np.zeros((n_contexts, n_prompts, n_max))
        self.counts = np.zeros((n_prompts, n_max), dtype=np.int64)

    def means(self) -> np.ndarray:
        """Empirical mean utility, shape (CX, P, n_max); NaN where an arm has no sample."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / self.counts, np.nan)

    def reset(self) -> None:
        """Forget every sample (PSST's fresh-data rounds, Top-K after screening)."""
        self.sums[:] = 0.0
        self.counts[:] = 0


class Sampler:
    """Draws pulls of ``env`` on one split and credits them to :class:`Stats`.

    Parameters
    ----------
    env : Environment
    split : {"train", "test", "all"}
        Query pool pulls are drawn from (learners use "train").
    """

    def __init__(self, env: Environment, split: str = "train"):
        self.env = env
        self.queries = np.ascontiguousarray(env.split_indices(split))
        self.cdf = _env_cdf(env)
        self.weights = (
            np.ascontiguousarray(env.contexts.weights[:, 0]) if env.kind == "mv" else None
        )
        self.cost_weight = env.contexts.cost_weight
        self.tie = check_tie(env.tie)
        self.svals = (
            np.ascontiguousarray(env.scalarized_values()) if env.kind == "bon" else None
        )

    def _check_arm(self, p, n):
        check_int(p, "prompt", low=0, high=self.env.n_prompts - 1)
        check_int(n, "n", low=1, high=self.env.n_max)

    def _chunks(self, n, n_pulls, gen):
        done = 0
        while done < n_pulls:
            m = min(CHUNK_PULLS, n_pulls - done)
            yield gen.random(m), gen.random((m, n))
            done += m

    def accumulate(self, stats: Stats, p: int, n: int, n_pulls: int, *, rng) -> None:
        """Pull arm ``(p, n)`` ``n_pulls`` times and credit every sub-scale block to ``stats``.

        Every scale ``k <= n`` of prompt ``p`` gains ``n_pulls * floor(n/k)`` blocks, and every
        context gains their utility ``w_c * objective - cost_weight_c * k * cost_p``.
        """
        self._check_arm(p, n)
        check_int(n_pulls, "n_pulls", low=0)
        if n_pulls == 0:
            return
        gen = as_rng(rng)
        env = self.env
        ks = np.arange(1, n + 1)
        blocks = n_pulls * (n // ks)
        if env.kind == "mv":
            acc = np.zeros(n)
            for uq, ud in self._chunks(n, n_pulls, gen):
                kernels.mv_scale_credits(self.cdf, env.correct, self.queries, p, uq, ud,
                                         self.tie, acc)
            task = self.weights[:, None] * acc[None, :]
        else:
            task = np.zeros((env.n_contexts, n))
            for uq, ud in self._chunks(n, n_pulls, gen):
                kernels.bon_scale_maxes(self.cdf, self.svals, self.queries, p, uq, ud, task)
        cost = self.cost_weight[:, None] * (ks * env.cost[p] * blocks)[None, :]
        stats.sums[:, p, :n] += task - cost
        stats.counts[p, :n] += blocks

    def pull(self, p: int, n: int, n_pulls: int = 1, *, rng) -> np.ndarray:
        """Utilities of ``n_pulls`` pulls of arm ``(p, n)`` in every context, shape (n_pulls, CX).

        Each pull aggregates all its ``n`` completions once (no block reuse).
        """
        self._check_arm(p, n)
        check_int(n_pulls, "n_pulls", low=1)
        gen = as_rng(rng)
        env = self.env
        parts = []
        for uq, ud in self._chunks(n, n_pulls, gen):
            if env.kind == "mv":
                credit = np.empty(uq.size)
                kernels.mv_pull_credits(self.cdf, env.correct, self.queries, p, uq, ud, self.tie,
                                        credit)
                parts.append(credit[:, None] * self.weights[None, :])
            else:
                best = np.empty((uq.size, env.n_contexts))
                kernels.bon_pull_maxes(self.cdf, self.svals, self.queries, p, uq, ud, best)
                parts.append(best)
        return np.concatenate(parts) - self.cost_weight[None, :] * n * env.cost[p]


def simulate_pulls(env: Environment, prompt: int, n: int, n_pulls: int, *, rng=None,
                   split: str = "train") -> np.ndarray:
    """Monte Carlo utilities of ``n_pulls`` pulls of arm ``(prompt, n)``, shape (n_pulls, CX).

    Their mean estimates ``env.q_table(split)[:, prompt, n - 1]``.
    """
    return Sampler(env, split).pull(prompt, n, n_pulls, rng=rng)


def mv_simulate(probs, correct, n: int, trials: int, *, rng=None, tie: str = "random"):
    """Monte Carlo majority-vote credit per query: mean over ``trials`` votes of ``n`` answers.

    Each trial draws one Multinomial(n, probs) count vector (theory.md Sec. 1.3: the vote needs
    only the counts) and scores it with the tie rule. Returns ``(mean, stderr)``, each of shape
    ``probs.shape[:-1]``.
    """
    p = check_probs(probs, "probs")
    n_ans = p.shape[-1]
    flat = p.reshape(-1, n_ans)
    corr = _check_correct(correct, p.shape).reshape(-1).astype(np.int64)
    (nv,), _ = check_n(n)
    t = check_int(trials, "trials", low=2)
    tie_code = check_tie(tie)
    gen = as_rng(rng)
    total = np.zeros(flat.shape[0])
    total_sq = np.zeros(flat.shape[0])
    per_chunk = max(1, (1 << 20) // max(1, flat.shape[0] * n_ans))
    done = 0
    while done < t:
        m = min(per_chunk, t - done)
        counts = gen.multinomial(nv, flat, size=(m, flat.shape[0]))
        credit = np.empty((m, flat.shape[0]))
        kernels.mv_count_credits(counts, corr, tie_code, credit)
        total += credit.sum(axis=0)
        total_sq += (credit**2).sum(axis=0)
        done += m
    mean = total / t
    var = np.maximum(total_sq / t - mean**2, 0.0) * t / (t - 1)
    shape = p.shape[:-1]
    return mean.reshape(shape), np.sqrt(var / t).reshape(shape)


def bon_simulate(values, probs, n: int, trials: int, *, rng=None):
    """Monte Carlo E[max of n draws] per law via ``F^-1(U^(1/n))`` (theory.md Sec. 1.3).

    Returns ``(mean, stderr)``, each of shape ``values.shape[:-1]``.
    """
    v, p = _check_outcomes(values, probs)
    (nv,), _ = check_n(n)
    t = check_int(trials, "trials", low=2)
    m = v.shape[-1]
    vf, pf = v.reshape(-1, m), p.reshape(-1, m)
    order = np.argsort(vf, axis=1, kind="stable")
    vs = np.ascontiguousarray(np.take_along_axis(vf, order, axis=1))
    cdf = _cdf(np.take_along_axis(pf, order, axis=1))
    gen = as_rng(rng)
    u = gen.random((t, vf.shape[0]))
    out = np.empty_like(u)
    kernels.bon_max_levels(cdf, vs, u, nv, out)
    mean = out.mean(axis=0)
    se = out.std(axis=0, ddof=1) / np.sqrt(t)
    return mean.reshape(v.shape[:-1]), se.reshape(v.shape[:-1])
