"""PSST and Top-K screening: rounds, allocation (Eq. 6), halving, the budget rule, accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from learner_envs import clear_gap, small_bon, small_mv
from scipy import stats

import sim
from sim.learners import make
from sim.learners.psst import maximal_scales, screening_budget


@pytest.fixture(scope="module")
def math_env():
    return sim.load_env("math", seed=0)


def test_rounds_and_minimum_budgets(math_env):
    cqa = sim.load_env("commonsenseqa")
    psst = make("psst")
    # R = ceil(log2 |A|): MATH 25 x 32 = 800 arms -> 10, CQA 48 x 32 = 1536 -> 11 (mission.md)
    assert psst._rounds(math_env) == 10 and psst._rounds(cqa) == 11
    # minimum T: R floor(T/R) >= M_1 = P n_max  ->  T >= R ceil(M_1 / R)
    assert psst.min_budget(math_env) == 10 * math.ceil(800 / 10) == 800
    assert psst.min_budget(cqa) == 11 * math.ceil(1536 / 11) == 1540
    # Top-K phase 2: ceil(log2(K n_max)) rounds
    assert [make(f"psst-k{k}")._rounds(math_env) for k in (1, 4, 8)] == [5, 7, 8]


def _schedule(policy, env, budget):
    """Replay Eq. 6 from the traced active sets: the pulls and spend PSST must have made."""
    info = policy.info
    pulls = np.zeros((env.n_prompts, env.n_max), dtype=np.int64)
    allowance, spent = 0, 0
    for r in range(info["rounds"]):
        allowance += budget // info["rounds"]
        nmax = maximal_scales(info["active"][r])
        m = int(nmax.sum())
        k = allowance // m
        assert info["sweep_cost"][r] == m and info["pulls_per_arm"][r] == k
        if k:
            allowance = 0
            for p in np.flatnonzero(nmax):
                pulls[p, nmax[p] - 1] += k
            spent += k * m
    return pulls, spent


@pytest.mark.parametrize("budget", [800, 1234, 5000, 50_000])
def test_allocation_and_halving(math_env, budget):
    pol = make("psst", trace=True).fit(math_env, budget, rng=budget)
    info = pol.info
    pulls, spent = _schedule(pol, math_env, budget)
    np.testing.assert_array_equal(pol.pulls, pulls)  # equal pulls of every maximal arm
    assert pol.spent == spent <= info["rounds"] * (budget // info["rounds"]) <= budget
    for r in range(info["rounds"]):
        before, after = info["active"][r], info["active"][r + 1]
        assert np.all(after <= before)  # survivors only shrink
        n_before, n_after = info["survivors"][r], info["survivors"][r + 1]
        if info["pulls_per_arm"][r]:  # a round with data keeps ceil(|A_c| / 2)
            np.testing.assert_array_equal(n_after, (n_before + 1) // 2)
        else:  # a deferred round neither pulls nor trims
            np.testing.assert_array_equal(after, before)
    # the deployed arm is a survivor
    for c, (p, n) in enumerate(pol.choice):
        assert info["active"][-1][c, p, n - 1]
    if budget >= 10 * 800:  # every round affordable: one survivor per context
        np.testing.assert_array_equal(info["survivors"][-1], 1)


def test_tiny_budget_never_overspends(math_env):
    """Regression for the authors' max(1, .) rule: at T < R * M the reference code pulls every
    maximal arm once per round anyway (800 completions per round on MATH). Here the allowance
    is deferred until it pays one sweep."""
    psst = make("psst", trace=True)
    pol = psst.fit(math_env, 800, rng=0)
    # allowance 80 per round: rounds 1-9 defer (9 * 80 = 720 < 800), round 10 sweeps once
    assert pol.info["pulls_per_arm"] == [0] * 9 + [1]
    assert pol.spent == 800
    np.testing.assert_array_equal(pol.info["survivors"][-1], 400)
    # at T = 1000 (100 per round): round 8 sweeps (800), rounds 9-10 gather only 200
    assert psst.fit(math_env, 1000, rng=0).info["pulls_per_arm"] == [0] * 7 + [1, 0, 0]
    for budget in range(800, 1700, 37):
        assert psst.fit(math_env, budget, rng=budget).spent <= budget


def test_fresh_resets_every_round(monkeypatch, math_env):
    """``fresh=True`` resets the statistics once per round that pulls; stockpiling never."""
    calls = []
    real = sim.Stats.reset
    monkeypatch.setattr(sim.sampler.Stats, "reset", lambda self: (calls.append(1), real(self)))
    make("psst").fit(math_env, 20_000, rng=1)
    assert calls == []
    pol = make("psst", fresh=True).fit(math_env, 20_000, rng=1)
    assert len(calls) == sum(k > 0 for k in pol.info["pulls_per_arm"]) == 10


def test_same_first_round_fresh_or_stockpiled(math_env):
    a = make("psst", trace=True).fit(math_env, 9000, rng=3)
    b = make("psst", trace=True, fresh=True).fit(math_env, 9000, rng=3)
    np.testing.assert_array_equal(a.info["active"][1], b.info["active"][1])


@pytest.mark.parametrize("fresh", [False, True])
def test_clear_gap_found_with_high_probability(fresh):
    """Gaps 0.24 / 0.09 / 0.21: at T = 6000 PSST finds the best arm in every context."""
    env = clear_gap()
    best = env.optimal_arms("train")
    np.testing.assert_array_equal(best, env.optimal_arms("test"))
    learner = make("psst", fresh=fresh)
    hits = sum(np.array_equal(learner.fit(env, 6000, rng=s).choice, best) for s in range(100))
    assert hits >= 95


def test_error_falls_with_budget():
    """Error rate (suboptimal in some context) over 200 runs at T = 30, 300, 3000."""
    env = clear_gap()
    best = env.optimal_arms("train")
    rates = [np.mean([not np.array_equal(make("psst").fit(env, t, rng=s).choice, best)
                      for s in range(200)]) for t in (30, 300, 3000)]
    assert rates[0] > rates[1] > rates[2]
    assert rates[2] <= 0.02


def test_theorem1_bound_holds():
    """Fresh data (the analysis): the error's Clopper-Pearson upper limit is below Theorem 1.

    Clear-gap instance, N_bar = (2 + 2)/2 = 2; H1 = 2/0.09^2 = 246.9 (context 1), so
    min(2 |P| H1, 8 |C| H2) = 2 * 3 * 246.9 = 1481.5; R = 3, |C| = 3; bound
    3 |C| R exp(-T / (R 1481.5)) = 27 exp(-30000 / 4444.4) = 0.0316 at T = 30000.
    """
    env = clear_gap()
    best = env.optimal_arms("train")
    q = np.sort(env.q_table("train").reshape(3, -1), axis=1)[:, ::-1]
    gaps = q[:, :1] - q[:, 1:]
    h1 = (2 / gaps**2).max()
    h2 = (np.arange(2, 7) * 2 / gaps**2).max()
    assert h1 == pytest.approx(2 / 0.09**2)
    bound = 27 * math.exp(-30_000 / (3 * min(2 * 3 * h1, 8 * 3 * h2)))
    assert bound == pytest.approx(0.0316, abs=5e-4)
    runs = 200
    errors = sum(not np.array_equal(make("psst", fresh=True).fit(env, 30_000, rng=s).choice, best)
                 for s in range(runs))
    upper = stats.beta.ppf(0.95, errors + 1, runs - errors) if errors < runs else 1.0
    assert upper <= bound


# ----------------------------------------------------------------------------- Top-K


def test_screening_budget_is_exact_decimal():
    assert screening_budget(0.29, 100) == 29  # 0.29 * 100 = 28.999999999999996 in floats
    assert screening_budget(0.2, 1000) == 200
    assert screening_budget(0.2, 4) == 0


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("env", [small_mv(seed=5, n_prompts=5), small_bon(seed=6, n_prompts=4)],
                         ids=["mv", "bon"])
def test_topk_screening(env, k):
    learner = make("psst-topk", k=k, trace=True)
    budget = 4 * learner.min_budget(env)
    pol = learner.fit(env, budget, rng=k)
    info = pol.info
    t0 = info["screening"]["budget"]
    assert t0 == math.floor(0.2 * budget)
    assert info["rounds"] == max(1, math.ceil(math.log2(k * env.n_max)))
    for c in range(env.n_contexts):
        top = info["screening"]["top_k"][c]
        assert len(top) == k
        # phase 2 only ever considers the top-K prompts of the context
        assert set(np.flatnonzero(info["active"][0][c].any(axis=1))) == set(top)
        assert pol.choice[c, 0] in top
    phase2 = sum(k_r * m for k_r, m in zip(info["pulls_per_arm"], info["sweep_cost"],
                                           strict=True))
    assert pol.spent == t0 + phase2 <= budget


def test_topk_screening_picks_the_best_single_shot_prompts():
    """With a huge screening budget, the top-K sets are the true top-K by Q(c, p, 1)."""
    env = small_mv(seed=8, n_prompts=6, n_queries=30)
    q1 = env.q_table("train")[:, :, 0]
    pol = make("psst-topk", k=2, rho=0.9).fit(env, 400_000, rng=0)
    for c in range(env.n_contexts):
        assert set(pol.info["screening"]["top_k"][c]) == set(np.argsort(-q1[c])[:2])


@pytest.mark.slow
def test_regret_falls_with_budget_on_math():
    """MATH (800 arms per context): the exact relative ACR of PSST and Top-K rises with T over
    60 paired replicates (the optimal arm itself is out of reach at these budgets: neighbouring
    N differ by ~1e-4)."""
    from analysis.evaluate import run_replicates

    res = run_replicates("math", ["psst", "psst-k4"], [1000, 5000, 50_000], 60, seed=1)
    for rec in res["learners"].values():
        mean, se = rec["mean"]["relative"], rec["se"]["relative"]
        for lo, hi in ((0, 1), (1, 2)):
            assert mean[hi] - mean[lo] > 2 * np.hypot(se[lo], se[hi])
