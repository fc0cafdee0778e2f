"""Sample complexity: classic H1/H2 and bounds, Theorem 1, Clopper-Pearson, budget to delta."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis import complexity as cx

MU5 = [0.9, 0.8, 0.7, 0.6, 0.5]
MU8 = [0.5] + [0.4] * 7


def test_classic_reference_values():
    # style.md Part A.5: H1 = 1/.01 + 1/.04 + 1/.09 + 1/.16 = 142.3611; H2 = max(2/.01, 3/.04,
    # 4/.09, 5/.16) = 200; logbar(5) = 1/2 + 1/2 + 1/3 + 1/4 + 1/5 = 1.783333.
    assert cx.classic_h1(MU5) == pytest.approx(142.3611, abs=1e-4)
    assert cx.classic_h2(MU5) == pytest.approx(200.0)
    assert cx.logbar(5) == pytest.approx(1.783333, abs=1e-6)
    # K = 8, gaps all 0.1: H1 = 7 * 100 = 700, H2 = 8 * 100 = 800; logbar(8) = 2.217857
    assert cx.classic_h1(MU8) == pytest.approx(700.0)
    assert cx.classic_h2(MU8) == pytest.approx(800.0)
    assert cx.logbar(8) == pytest.approx(2.217857, abs=1e-6)


def test_classic_bounds_reference_values():
    # style.md Part A.5: SR bound at B = 1000 is 0.61438; SH bound 5.32 (vacuous); budgets for the
    # bound to reach 0.1: SH 15,765, SR 1,648; for 0.01: SH 24,320, SR 2,469.
    assert cx.sr_bound(200.0, 5, 1000) == pytest.approx(0.61438, abs=1e-5)
    assert cx.sh_bound(200.0, 5, 1000) == pytest.approx(5.32, abs=5e-3)
    assert math.ceil(cx.sh_budget(200.0, 5, 0.1)) == 15766  # 15765.3
    assert round(cx.sh_budget(200.0, 5, 0.1)) == 15765
    assert math.ceil(cx.sr_budget(200.0, 5, 0.1)) == 1648
    assert round(cx.sh_budget(200.0, 5, 0.01)) == 24320
    assert math.ceil(cx.sr_budget(200.0, 5, 0.01)) == 2469
    assert cx.sh_bound(200.0, 5, cx.sh_budget(200.0, 5, 0.1)) == pytest.approx(0.1)


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12, unique=True))
def test_h1_h2_inequalities(mu):
    # style.md Part A.5 (i >= 2 convention): H1 <= (logbar(K) - 1/2) H2 and H2 <= 2 H1
    h1, h2, k = cx.classic_h1(mu), cx.classic_h2(mu), len(mu)
    assert h1 <= (cx.logbar(k) - 0.5) * h2 * (1 + 1e-12)
    assert h2 <= 2 * h1 * (1 + 1e-12)
    assert cx.logbar(k) <= math.log(2 * k)


def test_theorem1_hand_table():
    # one context, 2 prompts x n_max 2: arms (p, N) with Q = [[.5, .6], [.3, .4]]
    # sorted: (0,2)=.6 best, N(a_1) = 2, Nbar = (2 + 2)/2 = 2; gaps .1, .2, .3 at i = 2, 3, 4
    q = np.array([[[0.5, 0.6], [0.3, 0.4]]])
    t = cx.theorem1(q)
    assert t.h1 == pytest.approx(2 / 0.01)  # max Nbar / Delta^2
    assert t.h2 == pytest.approx(2 * max(2 / 0.01, 3 / 0.04, 4 / 0.09))
    assert t.classic_h2_c[0] == pytest.approx(200.0)
    assert t.rounds == 2 and t.n_arms == 4
    # bound = 3 |C| R exp(-T / (R min(2 |P| H1, 8 |C| H2))) = 6 exp(-T / (2 * 800))
    assert t.denominator == pytest.approx(min(2 * 2 * 200, 8 * 400))
    assert t.bound(1600.0) == pytest.approx(6 * math.exp(-1))
    assert t.bound(t.budget(0.05)) == pytest.approx(0.05)


def test_theorem1_nbar_uses_best_arm_scale():
    # best arm at N = 1: Nbar = (1 + 3)/2 = 2
    q = np.array([[[0.9, 0.5, 0.4]]])
    t = cx.theorem1(q)
    assert t.h1 == pytest.approx(2 / 0.4**2)


def test_theorem1_ties_are_infinite():
    q = np.array([[[0.5, 0.5], [0.1, 0.2]]])
    t = cx.theorem1(q)
    assert math.isinf(t.h1) and math.isinf(t.h2)
    assert np.all(np.isinf(t.bound([1e3, 1e6])))


@given(st.integers(0, 2**32 - 1))
def test_theorem1_max_over_contexts(seed):
    q = np.random.default_rng(seed).random((3, 4, 5))
    t = cx.theorem1(q)
    per = [cx.theorem1(q[c:c + 1]) for c in range(3)]
    assert t.h1 == pytest.approx(max(p.h1 for p in per))
    assert t.h2 == pytest.approx(max(p.h2 for p in per))
    assert t.h1 <= t.h2  # i >= 2 in H2
    assert t.plain_sh_bound(1e6) >= 0


def test_plain_sh_bound_is_costlier_than_karnin_by_cx_nmax():
    # |C| = 1 and n_max = 1 recovers Karnin's bound exactly
    assert cx.plain_sh_bound([200.0], 5, 1, 3000.0) == pytest.approx(cx.sh_bound(200.0, 5, 3000))
    b = cx.plain_sh_bound([200.0, 100.0], 5, 4, 8 * 3000.0)
    assert b == pytest.approx(2 * cx.sh_bound(200.0, 5, 3000.0))


def test_clopper_pearson_known_values():
    lo, hi = cx.clopper_pearson(np.array([0, 5, 20]), 20)
    # k = 0: upper = 1 - (alpha/2)^(1/n) = 1 - 0.025^(1/20)
    assert hi[0] == pytest.approx(1 - 0.025 ** (1 / 20))
    assert lo[0] == 0.0 and hi[2] == 1.0
    assert lo[2] == pytest.approx(0.025 ** (1 / 20))
    assert lo[1] < 0.25 < hi[1]
    with pytest.raises(ValueError):
        cx.clopper_pearson(3, 2)


def test_budget_to_reach_interpolates_on_log_budget():
    t = [1000, 4000, 16000]
    e = [0.8, 0.3, 0.05]
    # between 4000 (0.3) and 16000 (0.05): delta 0.1 is 0.8 of the way in log space
    assert cx.budget_to_reach(t, e, 0.1) == pytest.approx(4000 * 4**0.8)
    assert cx.budget_to_reach(t, e, 0.9) == 1000
    assert math.isinf(cx.budget_to_reach(t, e, 0.01))
    with pytest.raises(ValueError):
        cx.budget_to_reach([2, 1], [0.1, 0.2], 0.1)


@pytest.mark.parametrize("fn", [cx.sh_bound, cx.sr_bound])
def test_classic_bounds_reject_non_positive_h2(fn):
    with pytest.raises(ValueError, match=r"h2 must be in \(0.0, inf\)"):
        fn(-1.0, 4, 100)
    with pytest.raises(ValueError, match=r"h2 must be in \(0.0, inf\)"):
        {cx.sh_bound: cx.sh_budget, cx.sr_bound: cx.sr_budget}[fn](0.0, 4, 0.1)
