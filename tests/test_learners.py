"""Every learner against every environment family: the conformance table, budget accounting
(hypothesis, stateful), the tie rule, and the SH / SR allocation references (style.md A.5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from learner_envs import deterministic, permuted, small_bon, small_mv, unit_cost
from scipy import stats

import sim
from sim.learners import NAMES, BudgetError, Ledger, argmax_ties, make, rank_arms, tie_keys
from sim.learners.halving import logbar, sr_phases, sr_pull_budget, sr_worst_spend

#: Learners whose output is exactly equivariant under a relabelling of the prompts when the
#: rewards are noiseless (see test_relabelling_prompts). The sequential bandits are not: their
#: exploration picks arms by index (epsilon-greedy's random arm, the order in which UCB's and
#: softmax's unexplored arms are tried), so a relabelling changes which arms they try.
EQUIVARIANT = tuple(n for n in NAMES if n not in ("egreedy", "softmax", "ucb"))

_ENVS = {"mv": small_mv(seed=1), "bon": small_bon(seed=2)}


@pytest.fixture(scope="module")
def math_env():
    return sim.load_env("math", seed=3)


def _envs(name, math_env):
    return math_env if name == "math" else _ENVS[name]


def check_policy(env, policy, budget):
    """A valid arm per context, the budget respected, the ledger consistent."""
    assert policy.choice.shape == (env.n_contexts, 2)
    assert policy.choice.dtype == np.int64
    assert np.all((policy.choice[:, 0] >= 0) & (policy.choice[:, 0] < env.n_prompts))
    assert np.all((policy.choice[:, 1] >= 1) & (policy.choice[:, 1] <= env.n_max))
    assert policy.pulls.shape == (env.n_prompts, env.n_max)
    assert np.all(policy.pulls >= 0)
    assert policy.spent == int((policy.pulls * np.arange(1, env.n_max + 1)).sum())
    assert 0 <= policy.spent <= budget == policy.budget


def _same(a, b):
    return (np.array_equal(a.choice, b.choice) and np.array_equal(a.pulls, b.pulls)
            and a.spent == b.spent)


# ----------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("family", ["mv", "bon", "math"])
@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, family, math_env):
    env = _envs(family, math_env)
    learner = make(name)
    need = learner.min_budget(env)
    budgets = [need] if (family == "math" and name in ("sh", "sr")) else [need, 3 * need + 7]
    for budget in budgets:
        a = learner.fit(env, budget, rng=11)
        check_policy(env, a, budget)
        b = learner.fit(env, budget, rng=11)  # deterministic under a seed
        assert _same(a, b)
        assert a.learner == learner.key
    if need > 0:
        with pytest.raises(ValueError, match=f"at least {need} completions"):
            learner.fit(env, need - 1, rng=0)


@pytest.mark.parametrize("family", ["mv", "bon"])
@pytest.mark.parametrize("name", [n for n in NAMES if n != "oracle"])
def test_different_seeds_differ(name, family):
    env = _ENVS[family]
    learner = make(name)
    budget = 2 * learner.min_budget(env) + 5
    runs = [learner.fit(env, budget, rng=s) for s in range(8)]
    assert not all(_same(runs[0], r) for r in runs[1:])


def test_oracle_is_exact_and_free(math_env):
    pol = make("oracle").fit(math_env, 0)
    np.testing.assert_array_equal(pol.choice, math_env.optimal_arms("test"))
    assert pol.spent == 0 and pol.pulls.sum() == 0


@pytest.mark.parametrize("kind", ["mv", "bon"])
@pytest.mark.parametrize("name", EQUIVARIANT)
def test_relabelling_prompts(name, kind):
    """Noiseless rewards, all utilities distinct: relabelling the prompts relabels the choice.

    With noise, a relabelling changes which random numbers each prompt's pulls consume, so the
    outputs are equal only in distribution (test_relabelling_in_distribution).
    """
    env = deterministic(kind, seed=4)
    perm = np.array([3, 0, 4, 2, 1])
    env_p = permuted(env, perm)
    learner = make(name)
    budget = 2 * learner.min_budget(env) + 3
    a = learner.fit(env, budget, rng=5)
    b = learner.fit(env_p, budget, rng=5)
    np.testing.assert_array_equal(perm[b.choice[:, 0]], a.choice[:, 0])
    np.testing.assert_array_equal(b.choice[:, 1], a.choice[:, 1])
    np.testing.assert_array_equal(b.pulls, a.pulls[perm])


@pytest.mark.parametrize("name", ["psst", "psst-k1", "ucb", "egreedy", "softmax", "uniform"])
def test_relabelling_in_distribution(name):
    """On a noisy environment the law of the chosen arms follows the relabelling.

    Two-sample chi-square on the choice in context 0 over 150 seeds each (fixed seeds; a
    p-value below 1e-3 would mean the learner favours some prompt indices).
    """
    env = small_mv(seed=7, n_prompts=4, n_max=2)
    perm = np.array([2, 3, 1, 0])
    env_p = permuted(env, perm)
    learner = make(name)
    budget = 3 * learner.min_budget(env) + 40
    n_arms = env.n_prompts * env.n_max
    counts = np.zeros((2, n_arms))
    for s in range(150):
        a = learner.fit(env, budget, rng=s).choice[0]
        b = learner.fit(env_p, budget, rng=10_000 + s).choice[0]
        counts[0, a[0] * env.n_max + a[1] - 1] += 1
        counts[1, perm[b[0]] * env.n_max + b[1] - 1] += 1
    counts = counts[:, counts.sum(axis=0) > 0]
    if counts.shape[1] > 1:
        assert stats.chi2_contingency(counts).pvalue > 1e-3


# ----------------------------------------------------------------------------- budget


@given(name=st.sampled_from(NAMES), n_prompts=st.integers(1, 4), n_max=st.integers(1, 4),
       n_contexts=st.integers(1, 3), kind=st.sampled_from(["mv", "bon"]),
       budget=st.integers(0, 1500), seed=st.integers(0, 2**16))
def test_budget_accounting(name, n_prompts, n_max, n_contexts, kind, budget, seed):
    """spent <= budget for every learner, every budget and every environment size; below the
    minimum, a ValueError stating it."""
    if kind == "mv":
        env = small_mv(seed, n_prompts=n_prompts, n_max=n_max, n_queries=6,
                       n_contexts=n_contexts)
    else:
        env = small_bon(seed, n_prompts=n_prompts, n_max=n_max, n_queries=5,
                        n_contexts=n_contexts)
    learner = make(name)
    need = learner.min_budget(env)
    if budget < need:
        with pytest.raises(ValueError, match=f"at least {need} completions"):
            learner.fit(env, budget, rng=seed)
    else:
        check_policy(env, learner.fit(env, budget, rng=seed), budget)


class LedgerMachine(RuleBasedStateMachine):
    """Random sequences of charges: the ledger never exceeds its budget, refused charges
    change nothing, and spent always equals sum N * pulls."""

    @initialize(budget=st.integers(0, 300), n_prompts=st.integers(1, 4), n_max=st.integers(1, 8))
    def setup(self, budget, n_prompts, n_max):
        self.ledger = Ledger(budget, n_prompts, n_max)
        self.model = 0

    @rule(data=st.data())
    def charge(self, data):
        p = data.draw(st.integers(0, self.ledger.pulls.shape[0] - 1))
        n = data.draw(st.integers(1, self.ledger.pulls.shape[1]))
        k = data.draw(st.integers(0, 40))
        if n * k <= self.ledger.remaining:
            self.ledger.charge(p, n, k)
            self.model += n * k
        else:
            before = self.ledger.pulls.copy()
            with pytest.raises(BudgetError):
                self.ledger.charge(p, n, k)
            np.testing.assert_array_equal(before, self.ledger.pulls)

    @rule(data=st.data())
    def charge_table(self, data):
        shape = self.ledger.pulls.shape
        table = np.array(data.draw(st.lists(st.integers(0, 3), min_size=shape[0] * shape[1],
                                            max_size=shape[0] * shape[1]))).reshape(shape)
        cost = int((table * np.arange(1, shape[1] + 1)).sum())
        if cost <= self.ledger.remaining:
            self.ledger.charge_counts(table)
            self.model += cost
        else:
            with pytest.raises(BudgetError):
                self.ledger.charge_counts(table)

    @invariant()
    def consistent(self):
        ledger = self.ledger
        assert ledger.spent == self.model <= ledger.budget
        assert ledger.spent == int((ledger.pulls * np.arange(1, ledger.pulls.shape[1] + 1)).sum())


TestLedger = LedgerMachine.TestCase


# ----------------------------------------------------------------------------- make


def test_make_rejects_bad_names_and_params():
    with pytest.raises(ValueError, match="unknown name 'psst2'.*psst, psst-topk"):
        make("psst2")
    with pytest.raises(ValueError, match="unknown parameter.*'epsilon'"):
        make("egreedy", eps=0.1)
    with pytest.raises(ValueError, match="epsilon must be in"):
        make("egreedy", epsilon=1.5)
    with pytest.raises(ValueError, match="rho must be in"):
        make("psst-topk", k=2, rho=1.0)
    # only the unknown parameter is named as unknown (k is valid)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['zz'\]; valid: \['k'"):
        make("psst-topk", k=2, zz=1)
    with pytest.raises(ValueError, match="k must be an int"):
        make("psst-topk", k=0)
    with pytest.raises(ValueError, match="fixed by the name"):
        make("psst-k4", k=2)
    with pytest.raises(ValueError, match="fresh must be True or False"):
        make("psst", fresh=1)


def test_keys_are_canonical():
    assert make("ucb").key == make("ucb", c=0.1).key == "ucb(c=0.1)"
    assert make("psst-topk", rho=0.2, k=2).key == "psst-topk(fresh=False,k=2,rho=0.2)"
    assert make("psst", trace=True).key == make("psst").key
    assert len({make(n).key for n in NAMES}) == len(NAMES)


def test_fit_validates_input():
    env = _ENVS["mv"]
    with pytest.raises(ValueError, match="budget must be an int"):
        make("psst").fit(env, 1000.0)
    with pytest.raises(ValueError, match="env must be a sim.Environment"):
        make("psst").fit("math", 1000)


# ----------------------------------------------------------------------------- tie rule


@given(values=st.lists(st.integers(0, 3), min_size=1, max_size=30), seed=st.integers(0, 99))
def test_argmax_agrees_with_ranking(values, seed):
    v = np.array(values, dtype=float)
    v[::7] = np.nan  # arms without data rank last
    keys = tie_keys(1, v.size, seed).ravel()
    order = rank_arms(v, keys)
    assert argmax_ties(v, keys) == order[0]
    assert sorted(order) == list(range(v.size))
    ranked = np.where(np.isnan(v), -np.inf, v)[order]
    assert all(ranked[i] >= ranked[i + 1] for i in range(len(order) - 1))
    for i in range(len(order) - 1):  # equal values in increasing key order
        if ranked[i] == ranked[i + 1]:
            assert keys[order[i]] < keys[order[i + 1]]


def test_ties_are_broken_uniformly():
    """All values equal: the winner is uniform over the arms (chi-square, fixed seed)."""
    gen = np.random.default_rng(2024)
    wins = np.zeros(8)
    for _ in range(4000):
        wins[argmax_ties(np.zeros(8), tie_keys(2, 4, gen).ravel())] += 1
    assert stats.chisquare(wins).pvalue > 1e-3


# ----------------------------------------------------------------------------- SH / SR


def test_logbar_and_sr_phases_reference():
    # style.md A.5: logbar(5) = 1/2 + 1/2 + 1/3 + 1/4 + 1/5 = 1.783333...
    assert logbar(5) == pytest.approx(1.7833333333333333, abs=1e-15)
    # n_k = ceil((1000 - 5) / (1.783333 (6 - k))), k = 1..4 (Audibert et al. 2010)
    assert sr_phases(5, 1000).tolist() == [112, 140, 186, 279]
    # logbar(8) = 2.217857; n_k = ceil(992 / (2.217857 (9 - k)))
    assert logbar(8) == pytest.approx(2.217857142857143, abs=1e-12)
    assert sr_phases(8, 1000).tolist() == [56, 64, 75, 90, 112, 150, 224]


@pytest.mark.parametrize("means, budget, spend", [
    ([0.9, 0.8, 0.7, 0.6, 0.5], 1000, 996),   # 112 + 140 + 186 + 279 + 279
    ([0.5] + [0.4] * 7, 1000, 995),           # 56+64+75+90+112+150+224+224
])
def test_sr_spend_reference(means, budget, spend):
    """Unit costs: the pull budget is B itself and the spend is sum n_k + n_{K-1} (A.5)."""
    env = unit_cost(len(means), means)
    assert sr_pull_budget(np.ones(len(means), dtype=np.int64), budget) == budget
    assert sr_worst_spend(np.ones(len(means), dtype=np.int64), budget) == spend
    pol = make("sr").fit(env, budget, rng=0)
    assert pol.spent == spend


@pytest.mark.parametrize("means, budget, allocation", [
    ([0.9, 0.8, 0.7, 0.6, 0.5], 1000, [(5, 66, 330), (3, 111, 333), (2, 166, 332)]),
    ([0.5] + [0.4] * 7, 1000, [(8, 41, 328), (4, 83, 332), (2, 166, 332)]),
    ([0.5] * 6, 1001, [(6, 55, 330), (3, 111, 333), (2, 166, 332)]),
])
def test_sh_allocation_reference(means, budget, allocation):
    """Karnin et al. t_r = floor(B / (|S_r| ceil(log2 K))) with unit costs (style.md A.5)."""
    pol = make("sh").fit(unit_cost(len(means), means), budget, rng=0)
    assert pol.info["allocation"] == [allocation]
    assert pol.spent == sum(a[2] for a in allocation)


def test_sr_worst_spend_bounds_the_real_spend():
    """With costs, SR's spend never exceeds the worst case it was sized for."""
    env = small_mv(seed=3, n_prompts=3, n_max=3)
    learner = make("sr")
    for budget in (learner.min_budget(env), 2000, 5000):
        for s in range(5):
            pol = learner.fit(env, budget, rng=s)
            b_c = budget // env.n_contexts
            costs = np.tile(np.arange(1, env.n_max + 1), env.n_prompts)
            worst = sr_worst_spend(costs, sr_pull_budget(costs, b_c))
            assert pol.spent <= env.n_contexts * worst <= budget


def test_sh_sr_find_a_clear_best_arm():
    """Unit-cost Bernoulli arms with a 0.3 gap: SH and SR identify the best arm."""
    env = unit_cost(4, [0.8, 0.5, 0.5, 0.5])
    for name in ("sh", "sr"):
        hits = sum(make(name).fit(env, 400, rng=s).choice[0, 0] == 0 for s in range(20))
        assert hits >= 19


def test_resplits_share_cumulative_laws_without_reference_cycles(math_env):
    """Samplers of resplits reuse one cumulative-law array, and the environment cache holds only
    arrays, so a replicate environment is freed by reference counting alone (no cycle through
    ``env._cache``; a cycle kept ~140 MB per synth-categorical replicate alive until a gc pass)."""
    import gc
    import weakref

    first = sim.Sampler(math_env.resplit(rng=0), "train")
    for r in range(1, 3):
        env = math_env.resplit(rng=r)
        sampler = sim.Sampler(env, "train")
        assert sampler.cdf is first.cdf
        np.testing.assert_array_equal(sampler.queries, env.train)
    assert all(isinstance(v, np.ndarray) for v in math_env._cache.values())
    gc.disable()
    try:
        env = small_mv(seed=9)
        make("psst").fit(env, 4000, rng=0)
        ref = weakref.ref(env)
        del env
        assert ref() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("family", ["mv", "bon"])
def test_kernel_pulls_match_the_sampler(family):
    """Differential: the in-kernel pulls draw and credit exactly as :class:`sim.Sampler`."""
    from sim.learners._pulls import credit_pull, pull_sum
    from sim.learners.base import kernel_arrays

    env = _ENVS[family]
    sampler = sim.Sampler(env, "train")
    arrays = kernel_arrays(sampler)
    for p, n in ((0, 1), (1, env.n_max), (env.n_prompts - 1, 3)):
        ours = sim.Stats(env.n_contexts, env.n_prompts, env.n_max)
        ref = sim.Stats(env.n_contexts, env.n_prompts, env.n_max)
        g1, g2 = np.random.default_rng(p + n), np.random.default_rng(p + n)
        for _ in range(5):
            credit_pull(*arrays, p, n, g1, ours.sums, ours.counts)
            sampler.accumulate(ref, p, n, 1, rng=g2)
        np.testing.assert_array_equal(ours.counts, ref.counts)
        np.testing.assert_allclose(ours.sums, ref.sums, rtol=1e-12, atol=1e-12)
        for ctx in range(env.n_contexts):
            total = pull_sum(*arrays, p, n, 300, ctx, np.random.default_rng(ctx))
            expect = sampler.pull(p, n, 300, rng=np.random.default_rng(ctx))[:, ctx].sum()
            assert total == pytest.approx(expect, rel=1e-12, abs=1e-12)
