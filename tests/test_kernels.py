"""Numba kernels (sim.kernels) and the Monte Carlo layer (sim.sampler).

Differential tests: every kernel is fed pre-drawn uniforms and compared for exact equality with a
slow pure-Python reference (tests/helpers.py) consuming the same uniforms. Statistical tests:
Monte Carlo means agree with the exact math within 4 standard errors (fixed seeds).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from helpers import (
    ref_bon_max_levels,
    ref_bon_pull_maxes,
    ref_bon_scale_maxes,
    ref_mv_count_credits,
    ref_mv_pull_credits,
    ref_mv_scale_credits,
)
from hypothesis import given
from hypothesis import strategies as st

import sim
from sim import kernels
from sim.sampler import _cdf

seeds = st.integers(0, 2**32 - 1)


def random_mv_problem(seed, n_prompts=2, n_queries=6, n_answers=4):
    """Random answer laws (some answers with zero mass), correct answers and a query pool."""
    gen = np.random.default_rng(seed)
    probs = gen.dirichlet(np.full(n_answers, 0.7), size=(n_prompts, n_queries))
    probs[gen.random(probs.shape) < 0.2] = 0.0
    probs[..., 0] += probs.sum(axis=-1) == 0  # keep every law non-empty
    probs /= probs.sum(axis=-1, keepdims=True)
    correct = gen.integers(0, n_answers, n_queries)
    queries = np.sort(gen.choice(n_queries, size=n_queries - 1, replace=False))
    return _cdf(probs), correct, queries


def random_bon_problem(seed, n_prompts=2, n_queries=5, n_outcomes=4, n_contexts=3):
    """Random outcome laws and scalarised rewards with ties (integer levels)."""
    gen = np.random.default_rng(seed)
    probs = gen.dirichlet(np.ones(n_outcomes), size=(n_prompts, n_queries))
    svals = gen.integers(0, 4, size=(n_contexts, n_prompts, n_queries, n_outcomes)) * 0.25
    queries = np.arange(n_queries)
    return _cdf(probs), np.ascontiguousarray(svals), queries


# ----------------------------------------------------------------------------- differential


@given(seeds, st.integers(1, 14), st.integers(1, 12), st.sampled_from([0, 1]))
def test_mv_scale_credits_matches_reference(seed, n, pulls, tie):
    cdf, correct, queries = random_mv_problem(seed)
    gen = np.random.default_rng(seed + 1)
    p = int(gen.integers(0, cdf.shape[0]))
    uq, ud = gen.random(pulls), gen.random((pulls, n))
    acc = np.zeros(n)
    kernels.mv_scale_credits(cdf, correct, queries, p, uq, ud, tie, acc)
    expected = ref_mv_scale_credits(cdf, correct, queries, p, uq, ud, tie)
    assert np.array_equal(acc, expected)


def test_mv_scale_credits_accumulates_into_acc():
    cdf, correct, queries = random_mv_problem(3)
    gen = np.random.default_rng(4)
    uq, ud = gen.random(5), gen.random((5, 9))
    acc = np.arange(12.0)  # longer than N: only the first N entries change
    # pessimistic credits are 0/1, so sums of integers are exact whatever the order
    kernels.mv_scale_credits(cdf, correct, queries, 1, uq, ud, 1, acc)
    expected = ref_mv_scale_credits(cdf, correct, queries, 1, uq, ud, 1)
    assert np.array_equal(acc[:9] - np.arange(9.0), expected)
    assert np.array_equal(acc[9:], np.arange(9.0, 12.0))


@given(seeds, st.integers(1, 14), st.integers(1, 12), st.sampled_from([0, 1]))
def test_mv_pull_credits_matches_reference(seed, n, pulls, tie):
    cdf, correct, queries = random_mv_problem(seed)
    gen = np.random.default_rng(seed + 1)
    uq, ud = gen.random(pulls), gen.random((pulls, n))
    out = np.empty(pulls)
    kernels.mv_pull_credits(cdf, correct, queries, 0, uq, ud, tie, out)
    assert np.array_equal(out, ref_mv_pull_credits(cdf, correct, queries, 0, uq, ud, tie))


@given(seeds, st.integers(1, 12), st.integers(1, 8))
def test_bon_scale_maxes_matches_reference(seed, n, pulls):
    cdf, svals, queries = random_bon_problem(seed)
    gen = np.random.default_rng(seed + 1)
    uq, ud = gen.random(pulls), gen.random((pulls, n))
    acc = np.zeros((svals.shape[0], n))
    kernels.bon_scale_maxes(cdf, svals, queries, 1, uq, ud, acc)
    assert np.array_equal(acc, ref_bon_scale_maxes(cdf, svals, queries, 1, uq, ud))


@given(seeds, st.integers(1, 12), st.integers(1, 8))
def test_bon_pull_maxes_matches_reference(seed, n, pulls):
    cdf, svals, queries = random_bon_problem(seed)
    gen = np.random.default_rng(seed + 1)
    uq, ud = gen.random(pulls), gen.random((pulls, n))
    out = np.empty((pulls, svals.shape[0]))
    kernels.bon_pull_maxes(cdf, svals, queries, 0, uq, ud, out)
    assert np.array_equal(out, ref_bon_pull_maxes(cdf, svals, queries, 0, uq, ud))


@given(seeds, st.integers(1, 10), st.sampled_from([0, 1]))
def test_mv_count_credits_matches_reference(seed, n, tie):
    gen = np.random.default_rng(seed)
    probs = gen.dirichlet(np.ones(4), size=7)
    counts = np.stack([gen.multinomial(n, probs) for _ in range(5)])
    correct = gen.integers(0, 4, 7)
    out = np.empty((5, 7))
    kernels.mv_count_credits(counts, correct, tie, out)
    assert np.array_equal(out, ref_mv_count_credits(counts, correct, tie))


@given(seeds, st.integers(1, 40))
def test_bon_max_levels_matches_reference(seed, n):
    gen = np.random.default_rng(seed)
    vals = np.sort(gen.integers(0, 5, size=(6, 4)).astype(float), axis=1)
    cdf = _cdf(gen.dirichlet(np.ones(4), size=6))
    u = gen.random((9, 6))
    out = np.empty_like(u)
    kernels.bon_max_levels(cdf, vals, u, n, out)
    assert np.array_equal(out, ref_bon_max_levels(cdf, vals, u, n))


def test_cdf_reaches_one_at_the_last_positive_category():
    # A uniform u < 1 must never select a zero-probability category, even after rounding.
    probs = np.array([[0.1, 0.2, 0.7, 0.0], [0.0, 1.0, 0.0, 0.0]])
    cdf = _cdf(probs)
    assert cdf[0, 2] == 1.0 and cdf[1, 1] == 1.0
    assert np.all(np.diff(cdf, axis=1) >= 0)


# ----------------------------------------------------------------------------- Monte Carlo vs exact


def small_mv_env():
    """Three prompts × 40 queries × 3 answers, Beta-latent correctness with a disturbed peak."""
    gen = np.random.default_rng(11)
    probs = np.stack([sim.mv_laws(sim.beta_latent_q(m, 4.0, 40, rng=gen), 3, wrong_shape=0.6)
                      for m in (0.45, 0.6, 0.75)])
    return sim.Environment(
        name="small-mv", kind="mv", probs=probs, correct=np.zeros(40, np.int64),
        cost=np.array([0.01, 0.02, 0.005]), contexts=sim.mv_budget_contexts(), n_max=9,
        train=np.arange(30), test=np.arange(30, 40),
    )


def small_bon_env():
    """Two prompts × 30 queries × 6 outcomes × 2 objectives, 27 contexts."""
    gen = np.random.default_rng(12)
    laws = [sim.bon_laws([1.5, 2.0], [1.0, 0.6], 30, correlation=0.3, n_outcomes=6, rng=gen),
            sim.bon_laws([2.5, 1.0], [0.3, 1.2], 30, correlation=-0.2, n_outcomes=6, rng=gen)]
    return sim.Environment(
        name="small-bon", kind="bon", probs=np.stack([p for _, p in laws]),
        values=np.stack([v for v, _ in laws]), cost=np.array([0.02, 0.03]),
        contexts=sim.bon_contexts(), n_max=8, train=np.arange(24), test=np.arange(24, 30),
    )


@pytest.fixture(scope="module")
def math_env():
    return sim.load_env("math")


@pytest.mark.parametrize(("n", "tie"), [(1, "random"), (4, "random"), (7, "pessimistic"),
                                        (32, "random")])
def test_mv_simulate_agrees_with_exact(math_env, n, tie):
    probs = math_env.probs[3]
    correct = math_env.correct
    trials = 3000
    mean, _ = sim.mv_simulate(probs, correct, n, trials, rng=n, tie=tie)
    exact = sim.mv_accuracy(probs, correct, n, tie=tie)
    # credits lie in [0, 1], so Var(credit) <= Acc (1 - Acc): a bound on the standard error.
    # Per law where the normal approximation holds (>= 30 expected successes and failures; near
    # Acc = 0 or 1 the count of rare outcomes is Poisson, not normal), and over all 316 laws.
    bound = np.sqrt(exact * (1 - exact) / trials)
    clt = trials * np.minimum(exact, 1 - exact) >= 30
    assert clt.sum() >= 30
    assert np.all(np.abs(mean - exact)[clt] <= 4 * bound[clt])
    overall_se = np.sqrt((exact * (1 - exact)).sum() / trials) / exact.size
    assert abs(mean.mean() - exact.mean()) <= 4 * overall_se


@pytest.mark.parametrize("n", [1, 3, 16])
def test_bon_simulate_agrees_with_exact(n):
    gen = np.random.default_rng(5)
    values = gen.integers(0, 6, size=(25, 5)).astype(float)  # non-negative, with ties
    probs = gen.dirichlet(np.ones(5), size=25)
    trials = 4000
    mean, _ = sim.bon_simulate(values, probs, n, trials, rng=n)
    exact = sim.bon_expected_max(values, probs, n)
    # for values >= 0, max(v)^2 = max(v^2), so E[M^2] is the expected max of the squares
    var = sim.bon_expected_max(values**2, probs, n) - exact**2
    assert np.all(np.abs(mean - exact) <= 4 * np.sqrt(np.maximum(var, 0) / trials) + 1e-12)


def _assert_pulls_agree(env, prompt, n, n_pulls, seed):
    utilities = sim.Sampler(env, "train").pull(prompt, n, n_pulls, rng=seed)
    exact = env.q_table("train")[:, prompt, n - 1]
    mean = utilities.mean(axis=0)
    se = utilities.std(axis=0, ddof=1) / np.sqrt(n_pulls)
    assert np.all(np.abs(mean - exact) <= 4 * se + 1e-12)


@pytest.mark.parametrize(("prompt", "n"), [(0, 1), (7, 5), (13, 32)])
def test_pull_means_agree_with_q_table_math(math_env, prompt, n):
    _assert_pulls_agree(math_env, prompt, n, 3000, seed=prompt)


@pytest.mark.parametrize(("prompt", "n"), [(0, 1), (1, 4), (2, 9)])
def test_pull_means_agree_with_q_table_small_mv(prompt, n):
    _assert_pulls_agree(small_mv_env(), prompt, n, 3000, seed=prompt)


@pytest.mark.parametrize(("prompt", "n"), [(0, 1), (1, 3), (0, 8)])
def test_pull_means_agree_with_q_table_bon(prompt, n):
    _assert_pulls_agree(small_bon_env(), prompt, n, 3000, seed=prompt)


def _assert_block_reuse_agrees(env, prompt, n, batches, pulls_per_batch, seed):
    """Block-reuse means of every sub-scale k <= n vs the exact Q(c, p, k).

    Blocks of one pull share its query, so they are correlated; independent batches of pulls give
    i.i.d. batch means whose spread is the standard error.
    """
    sampler = sim.Sampler(env, "train")
    means = []
    for stream in np.random.SeedSequence(seed).spawn(batches):
        stats = sim.Stats(env.n_contexts, env.n_prompts, env.n_max)
        sampler.accumulate(stats, prompt, n, pulls_per_batch, rng=stream)
        blocks = pulls_per_batch * (n // np.arange(1, n + 1))
        assert np.array_equal(stats.counts[prompt, :n], blocks)
        assert np.all(np.isnan(stats.means()[:, prompt, n:]))
        means.append(stats.means()[:, prompt, :n])
    means = np.array(means)  # (batches, CX, n)
    exact = env.q_table("train")[:, prompt, :n]
    se = means.std(axis=0, ddof=1) / np.sqrt(batches)
    assert np.all(np.abs(means.mean(axis=0) - exact) <= 4 * se + 1e-12)


def test_block_reuse_means_agree_with_q_table_math(math_env):
    _assert_block_reuse_agrees(math_env, 5, 12, 30, 100, seed=1)


def test_block_reuse_means_agree_with_q_table_small_mv():
    _assert_block_reuse_agrees(small_mv_env(), 1, 9, 30, 100, seed=2)


def test_block_reuse_means_agree_with_q_table_bon():
    _assert_block_reuse_agrees(small_bon_env(), 1, 8, 30, 100, seed=3)


@pytest.mark.parametrize("name", ["commonsenseqa", "synth-bernoulli", "synth-categorical"])
def test_block_reuse_means_agree_with_q_table_full_size(name):
    env = sim.load_env(name, seed=0)
    for prompt, n in ((0, 32), (env.n_prompts - 1, 7)):
        _assert_block_reuse_agrees(env, prompt, n, 40, 250, seed=prompt + n)
        _assert_pulls_agree(env, prompt, n, 5000, seed=prompt)


def test_stats_accumulate_and_reset():
    env = small_mv_env()
    stats = sim.Stats(env.n_contexts, env.n_prompts, env.n_max)
    sampler = sim.Sampler(env)
    sampler.accumulate(stats, 2, 6, 10, rng=0)
    sampler.accumulate(stats, 2, 6, 0, rng=0)  # no pulls: nothing changes
    # a pull of N = 6 holds floor(6/k) blocks of size k: 6, 3, 2, 1, 1, 1
    assert np.array_equal(stats.counts[2, :6], 10 * np.array([6, 3, 2, 1, 1, 1]))
    assert stats.counts.sum() == stats.counts[2, :6].sum()
    stats.reset()
    assert not stats.counts.any() and not stats.sums.any()


# ----------------------------------------------------------------------------- reproducibility


def test_same_rng_gives_identical_results(math_env):
    sampler = sim.Sampler(math_env)
    a, b = (sim.Stats(3, math_env.n_prompts, 32) for _ in range(2))
    sampler.accumulate(a, 4, 16, 500, rng=np.random.SeedSequence(9))
    sampler.accumulate(b, 4, 16, 500, rng=np.random.SeedSequence(9))
    assert np.array_equal(a.sums, b.sums)
    assert np.array_equal(sampler.pull(4, 8, 50, rng=3), sampler.pull(4, 8, 50, rng=3))
    m1, _ = sim.mv_simulate(math_env.probs[0], math_env.correct, 5, 20, rng=7)
    m2, _ = sim.mv_simulate(math_env.probs[0], math_env.correct, 5, 20, rng=7)
    assert np.array_equal(m1, m2)


def test_different_seeds_give_different_results(math_env):
    sampler = sim.Sampler(math_env)
    assert not np.array_equal(sampler.pull(4, 8, 200, rng=1), sampler.pull(4, 8, 200, rng=2))
    m1, _ = sim.bon_simulate([0.0, 1.0, 2.0], [0.3, 0.3, 0.4], 3, 100, rng=1)
    m2, _ = sim.bon_simulate([0.0, 1.0, 2.0], [0.3, 0.3, 0.4], 3, 100, rng=2)
    assert m1 != m2


def test_results_do_not_depend_on_the_thread_count(math_env):
    before = numba.get_num_threads()
    probs = math_env.probs[:, :60]
    correct = np.broadcast_to(math_env.correct[:60], probs.shape[:2])
    try:
        numba.set_num_threads(1)
        one = sim.mv_accuracy(probs, correct, np.arange(1, 33))
        pulls_one = sim.Sampler(math_env).pull(2, 16, 300, rng=5)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = sim.mv_accuracy(probs, correct, np.arange(1, 33))
        pulls_two = sim.Sampler(math_env).pull(2, 16, 300, rng=5)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, two)
    assert np.array_equal(pulls_one, pulls_two)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("prompt", "n", "n_pulls", "match"),
    [
        (-1, 4, 1, r"prompt must be an int \[0, 24\]"),
        (25, 4, 1, r"prompt must be an int \[0, 24\]"),
        (0, 0, 1, r"n must be an int \[1, 32\]"),
        (0, 33, 1, r"n must be an int \[1, 32\]"),
        (0, 2.0, 1, r"n must be an int \[1, 32\]"),
        (0, 4, 0, r"n_pulls must be an int >= 1"),
    ],
)
def test_sampler_pull_rejects_bad_arms(math_env, prompt, n, n_pulls, match):
    with pytest.raises(ValueError, match=match):
        sim.Sampler(math_env).pull(prompt, n, n_pulls, rng=0)


def test_sampler_accumulate_rejects_bad_input(math_env):
    sampler = sim.Sampler(math_env)
    stats = sim.Stats(3, 25, 32)
    with pytest.raises(ValueError, match=r"n must be an int \[1, 32\]"):
        sampler.accumulate(stats, 0, 40, 1, rng=0)
    with pytest.raises(ValueError, match=r"n_pulls must be an int >= 0"):
        sampler.accumulate(stats, 0, 4, -1, rng=0)
    with pytest.raises(ValueError, match="rng must be None, an int"):
        sampler.accumulate(stats, 0, 4, 1, rng="seed")
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test', 'all'\)"):
        sim.Sampler(math_env, "validation")


def test_simulators_reject_bad_input():
    with pytest.raises(ValueError, match=r"trials must be an int >= 2"):
        sim.mv_simulate([0.5, 0.5], 0, 3, 1, rng=0)
    with pytest.raises(ValueError, match=r"correct must be in \[0, 1\]"):
        sim.mv_simulate([0.5, 0.5], 2, 3, 10, rng=0)
    with pytest.raises(ValueError, match=r"correct must be integer answer indices in \[0, 1\]"):
        sim.mv_simulate([0.5, 0.5], 0.5, 3, 10, rng=0)
    with pytest.raises(ValueError, match=r"correct must broadcast to probs.shape\[:-1\] = \(2,\)"):
        sim.mv_simulate([[0.5, 0.5], [0.2, 0.8]], [0, 1, 1], 3, 10, rng=0)
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        sim.mv_simulate([0.5, 0.5], 0, 0, 10, rng=0)
    with pytest.raises(ValueError, match=r"probs must sum to 1 .*tolerance 1e-08"):
        sim.bon_simulate([0.0, 1.0], [0.5, 0.6], 3, 10, rng=0)
