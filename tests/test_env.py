"""The Environment (sim.env): exact Q tables, splits, optimal arms and validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import sim

# ----------------------------------------------------------------------------- fixtures


def small_mv_env(n_queries=20, tie="random"):
    gen = np.random.default_rng(21)
    probs = gen.dirichlet(np.ones(4), size=(3, n_queries))
    return sim.Environment(
        name="mv", kind="mv", probs=probs, correct=gen.integers(0, 4, n_queries),
        cost=np.array([0.01, 0.03, 0.02]), contexts=sim.mv_budget_contexts(), n_max=7,
        train=np.arange(16), test=np.arange(16, n_queries), tie=tie,
    )


def small_bon_env():
    gen = np.random.default_rng(22)
    laws = [sim.bon_laws(gen.uniform(0.5, 3, 2), gen.uniform(0.2, 1.5, 2), 15, n_outcomes=5,
                         rng=gen) for _ in range(4)]
    return sim.Environment(
        name="bon", kind="bon", probs=np.stack([p for _, p in laws]),
        values=np.stack([v for v, _ in laws]), cost=gen.uniform(0.01, 0.04, 4),
        contexts=sim.bon_contexts(), n_max=6, train=np.arange(12), test=np.arange(12, 15),
    )


@pytest.fixture(scope="module")
def math_env():
    return sim.load_env("math")


# ----------------------------------------------------------------------------- Q tables


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_q_table_shape(math_env, split):
    assert math_env.q_table(split).shape == (3, 25, 32)
    assert small_bon_env().q_table(split).shape == (27, 4, 6)


@pytest.mark.parametrize("tie", ["random", "pessimistic"])
@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_mv_q_is_weighted_accuracy_minus_cost(split, tie):
    # Q(c, p, N) = w_c * mean_{x in split} Acc(p, x, N) - cost_weight_c * N * cost_p (Eq. 3)
    env = small_mv_env(tie=tie)
    idx = env.split_indices(split)
    ns = np.arange(1, env.n_max + 1)
    q = env.q_table(split)
    for p in range(env.n_prompts):
        acc = sim.mv_accuracy(env.probs[p, idx], env.correct[idx], ns, tie=tie).mean(axis=0)
        for c in range(env.n_contexts):
            expected = (env.contexts.weights[c, 0] * acc
                        - env.contexts.cost_weight[c] * ns * env.cost[p])
            np.testing.assert_allclose(q[c, p], expected, rtol=0, atol=1e-14)


def test_mv_q_with_non_unit_weights():
    env = dataclasses.replace(
        small_mv_env(), contexts=sim.Contexts([[2.0], [0.5]], [0.1, 0.0], [0.5, 0.5], ("a", "b")),
        _cache={},
    )
    acc = env.query_curves()[:, env.test].mean(axis=1)
    ns = np.arange(1, 8)
    q = env.q_table("test")
    np.testing.assert_allclose(q[0], 2.0 * acc - 0.1 * ns * env.cost[:, None], atol=1e-14)
    np.testing.assert_allclose(q[1], 0.5 * acc, atol=1e-14)


def test_bon_q_is_expected_max_of_weighted_reward_minus_cost():
    env = small_bon_env()
    ns = np.arange(1, env.n_max + 1)
    q = env.q_table("train")
    for c in (0, 13, 26):
        w = env.contexts.weights[c]
        for p in range(env.n_prompts):
            rewards = env.values[p][env.train] @ w  # (X_train, M): max on the weighted reward
            emax = sim.bon_expected_max(rewards, env.probs[p, env.train], ns).mean(axis=0)
            expected = emax - env.contexts.cost_weight[c] * ns * env.cost[p]
            np.testing.assert_allclose(q[c, p], expected, rtol=0, atol=1e-12)


def test_all_split_is_the_query_weighted_mix_of_train_and_test(math_env):
    cost = math_env.cost_table()
    task = {s: math_env.q_table(s) + cost for s in ("train", "test", "all")}
    mix = (252 * task["train"] + 64 * task["test"]) / 316
    np.testing.assert_allclose(task["all"], mix, rtol=0, atol=1e-13)


def test_query_curves_are_cached_and_read_only(math_env):
    curves = math_env.query_curves()
    assert curves is math_env.query_curves()
    assert curves.shape == (25, 316, 32)
    with pytest.raises(ValueError, match="read-only"):
        curves[0, 0, 0] = 0.5


def test_optimal_arms_are_the_argmax_of_q(math_env):
    arms = math_env.optimal_arms("test")
    q = math_env.q_table("test")
    for c, (p, n) in enumerate(arms):
        assert q[c, p, n - 1] == q[c].max()
        # ties go to the lowest (p, N): no earlier arm reaches the maximum
        flat = q[c].ravel()
        assert np.flatnonzero(flat == flat.max())[0] == p * 32 + n - 1


def test_optimal_arms_break_ties_towards_the_lowest_arm():
    # A binary vote with q = 1/2 has Acc(N) = 1/2 for every N; with identical prompts and zero
    # cost every arm ties, and the lowest arm (0, 1) is returned in every context.
    probs = np.full((3, 4, 2), 0.5)
    env = sim.Environment(name="flat", kind="mv", probs=probs, correct=np.zeros(4, np.int64),
                          cost=np.zeros(3), contexts=sim.mv_budget_contexts(), n_max=5,
                          train=np.arange(3), test=np.arange(3, 4))
    assert np.array_equal(env.optimal_arms(), np.tile([0, 1], (3, 1)))


def test_cost_table():
    env = small_mv_env()
    ct = env.cost_table()
    assert ct.shape == (3, 3, 7)
    assert ct[2, 1, 4] == pytest.approx(1.0 * 0.03 * 5)
    assert np.all(ct[0] == 0)  # the low budget regime has cost weight 0


# ----------------------------------------------------------------------------- splits


def test_resplit_is_80_20_disjoint_and_covering(math_env):
    env = math_env.resplit(rng=3)
    assert env.train.size == round(0.8 * 316) == 253 and env.test.size == 63
    assert np.intersect1d(env.train, env.test).size == 0
    assert np.array_equal(np.union1d(env.train, env.test), np.arange(316))
    assert np.all(np.diff(env.train) > 0) and np.all(np.diff(env.test) > 0)


def test_resplit_is_reproducible_from_its_seed(math_env):
    a, b, c = (math_env.resplit(rng=s) for s in (5, 5, 6))
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert not np.array_equal(a.train, c.train)
    ss = np.random.SeedSequence(8)
    assert np.array_equal(math_env.resplit(rng=ss).test, math_env.resplit(rng=ss).test)


def test_resplit_shares_curves_and_changes_q(math_env):
    env = math_env.resplit(rng=1)
    assert env.query_curves() is math_env.query_curves()
    assert not np.array_equal(env.q_table("test"), math_env.q_table("test"))
    np.testing.assert_array_equal(env.q_table("all"), math_env.q_table("all"))


def test_resplit_fraction_and_bad_input():
    env = small_mv_env()
    assert env.resplit(rng=0, train_fraction=0.5).train.size == 10
    for frac in (0.0, 1.0, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"train_fraction must be in \(0.0, 1.0\)"):
            env.resplit(rng=0, train_fraction=frac)
    with pytest.raises(ValueError, match="rng must be None, an int"):
        env.resplit(rng="x")
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test', 'all'\)"):
        env.q_table("dev")


# ----------------------------------------------------------------------------- validation


def _mv_kwargs(**over):
    base = dict(name="x", kind="mv", probs=np.full((2, 3, 2), 0.5), correct=np.zeros(3, int),
                cost=np.array([0.1, 0.2]), contexts=sim.mv_budget_contexts(), n_max=4,
                train=np.array([0, 1]), test=np.array([2]))
    return base | over


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (dict(kind="pairwise"), r"kind must be one of \('mv', 'bon'\)"),
        (dict(tie="first"), r"tie must be one of \('random', 'pessimistic'\)"),
        (dict(probs=np.full((3, 2), 0.5)), r"probs must have shape \(P, X, C\)"),
        (dict(probs=np.full((2, 3, 2), [-0.5, 1.5])), "probs must be finite and non-negative"),
        (dict(probs=np.full((2, 3, 2), [np.nan, 0.5])), "probs must be finite and non-negative"),
        (dict(probs=np.full((2, 3, 2), 0.6)), r"probs must sum to 1 .*tolerance 1e-08"),
        (dict(cost=np.array([0.1])), "cost must be 2 finite non-negative numbers"),
        (dict(cost=np.array([0.1, -0.2])), "cost must be 2 finite non-negative numbers"),
        (dict(n_max=0), "n_max must be an int >= 1"),
        (dict(n_max=4.0), "n_max must be an int >= 1"),
        (dict(correct=np.array([0, 2, 1])), r"correct must be in \[0, 1\]"),
        (dict(correct=np.zeros(2, int)), "correct must be 3 integer answer indices"),
        (dict(train=np.array([0, 3])), r"train must be non-empty integer query indices"),
        (dict(test=np.array([], int)), r"test must be non-empty integer query indices in \[0, 2\]"),
        (dict(test=np.array([1.5])), r"test must be non-empty integer query indices in \[0, 2\]"),
        (dict(prompt_names=("a",)), "prompt_names must have 2 entries"),
        (dict(contexts=sim.bon_contexts()), "an MV environment has one objective"),
        (dict(contexts="low"), "contexts must be a sim.Contexts"),
    ],
)
def test_environment_rejects_bad_fields(over, match):
    with pytest.raises(ValueError, match=match):
        sim.Environment(**_mv_kwargs(**over))


def test_bon_environment_rejects_bad_values():
    env = small_bon_env()
    kw = {f.name: getattr(env, f.name) for f in dataclasses.fields(env) if f.name != "_cache"}
    with pytest.raises(ValueError, match=r"values must have shape \(4, 15, 5, 'K'\)"):
        sim.Environment(**kw | dict(values=env.values[:, :, :4]))
    with pytest.raises(ValueError, match="values must be finite"):
        sim.Environment(**kw | dict(values=np.where(env.values > 3, np.inf, env.values)))
    with pytest.raises(ValueError, match="contexts weigh 1 objectives but values have 2"):
        sim.Environment(**kw | dict(contexts=sim.mv_budget_contexts()))


def test_environment_normalises_probs_within_tolerance():
    env = sim.Environment(**_mv_kwargs(probs=np.full((2, 3, 2), 0.5 + 2e-9)))
    assert np.array_equal(env.probs.sum(axis=-1), np.ones((2, 3)))
    assert env.prompt_names == ("p0", "p1")
