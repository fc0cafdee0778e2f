"""Exact aggregator math (sim.exact): properties, reference values and brute-force oracles.

Reference values come from theory.md Sec. 10 (item numbers cited) and Sec. 6; each constant
carries its derivation. Values quoted there to 4 decimals are checked to half a unit in the last
place (5e-5); values with a closed form are checked against the closed form to 1e-12.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from helpers import (
    brute_force_mv,
    categorical_laws,
    dirichlet_laws,
    probit_latent_curve,
    reward_laws,
)
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import betainc, comb

from sim import (
    bon_expected_max,
    bon_expected_max_continuous,
    load_env,
    mv_accuracy,
    mv_accuracy_binary,
)
from sim.exact import _bon_curves, _bon_curves_parallel, _bon_curves_serial

TIES = ("random", "pessimistic")
probabilities = st.floats(0.0, 1.0)
small_n = st.integers(1, 12)


def binary(q):
    """Binary answer law (correct answer 0 with probability q)."""
    return np.array([q, 1.0 - q])


# ----------------------------------------------------------------------------- MV properties


@given(categorical_laws(), small_n)
def test_win_probabilities_of_all_answers_sum_to_one(law, n):
    # Under random ties every vote splits one unit of credit among its leaders, so summing the
    # credit of every answer as "the correct one" gives 1 for any law and N.
    total = sum(mv_accuracy(law, a, n) for a in range(law.size))
    assert total == pytest.approx(1.0, abs=1e-12)


@given(categorical_laws(), small_n, st.randoms(use_true_random=False), st.sampled_from(TIES))
def test_relabelling_answers_leaves_accuracy_unchanged(law, n, rnd, tie):
    correct = rnd.randrange(law.size)
    perm = list(range(law.size))
    rnd.shuffle(perm)  # answer a is renamed perm[a]
    relabelled = np.empty_like(law)
    relabelled[perm] = law
    a = mv_accuracy(law, correct, n, tie=tie)
    b = mv_accuracy(relabelled, perm[correct], n, tie=tie)
    assert b == pytest.approx(a, abs=1e-12)


@given(categorical_laws(), st.data())
def test_two_votes_equal_one_vote_under_random_ties(law, data):
    # theory.md Sec. 1.2: Acc(2) = q^2 + 2 q (1 - q) / 2 = q = Acc(1) for any categorical law.
    correct = data.draw(st.integers(0, law.size - 1))
    acc = mv_accuracy(law, correct, [1, 2])
    assert acc[0] == pytest.approx(law[correct], abs=1e-12)
    assert acc[1] == pytest.approx(law[correct], abs=1e-12)


@given(probabilities, st.integers(0, 40))
def test_binary_increment_identity(q, m):
    # theory.md Sec. 1.1: Acc(q, 2m+3) - Acc(q, 2m+1) = C(2m+1, m) (q(1-q))^{m+1} (2q - 1).
    acc = mv_accuracy(binary(q), 0, [2 * m + 1, 2 * m + 3])
    expected = comb(2 * m + 1, m, exact=True) * (q * (1 - q)) ** (m + 1) * (2 * q - 1)
    assert acc[1] - acc[0] == pytest.approx(expected, abs=1e-12)


@given(probabilities, st.integers(0, 60))
def test_odd_binary_vote_is_the_incomplete_beta(q, m):
    # theory.md Sec. 1.1: Acc(q, 2m+1) = P(Binomial(2m+1, q) >= m+1) = I_q(m+1, m+1).
    k = 2 * m + 1
    assert mv_accuracy(binary(q), 0, k) == pytest.approx(betainc(m + 1, m + 1, q), abs=1e-12)
    assert mv_accuracy_binary(q, k) == pytest.approx(betainc(m + 1, m + 1, q), abs=1e-15)


@given(probabilities, st.integers(1, 60))
def test_even_binary_vote_equals_the_previous_odd_one(q, m):
    # A fair-coin tie at 2m votes splits the m:m case evenly, so Acc(2m) = Acc(2m - 1).
    acc = mv_accuracy(binary(q), 0, [2 * m - 1, 2 * m])
    assert acc[1] == pytest.approx(acc[0], abs=1e-12)
    assert mv_accuracy_binary(q, 2 * m) == mv_accuracy_binary(q, 2 * m - 1)


@given(dirichlet_laws(), st.integers(1, 8), st.sampled_from([0, 1]), st.data())
def test_dp_agrees_with_brute_force_enumeration(law, n, tie, data):
    correct = data.draw(st.integers(0, law.size - 1))
    exact = mv_accuracy(law, correct, n, tie=TIES[tie])
    assert exact == pytest.approx(brute_force_mv(list(law), correct, n, tie), abs=1e-12)


@pytest.mark.parametrize("tie", TIES)
@pytest.mark.parametrize("n_answers", [1, 2, 5])
def test_point_mass_laws(tie, n_answers):
    ns = np.arange(1, 21)
    on_correct = np.eye(n_answers)[0]
    assert np.array_equal(mv_accuracy(on_correct, 0, ns, tie=tie), np.ones(20))
    if n_answers > 1:
        assert np.array_equal(mv_accuracy(on_correct, n_answers - 1, ns, tie=tie), np.zeros(20))


def test_scalar_and_sequence_n_shapes():
    probs = np.full((2, 3, 4), 0.25)
    assert mv_accuracy(probs, 0, 3).shape == (2, 3)
    assert mv_accuracy(probs, np.zeros((2, 3), int), [1, 5, 2]).shape == (2, 3, 3)
    out = mv_accuracy(probs, 0, [5, 1, 3])
    assert np.array_equal(out[..., 1], np.full((2, 3), 0.25))  # order of n is respected


# ----------------------------------------------------------------------------- MV reference values


def test_condorcet_binary_values():
    # theory.md Sec. 10 item 1: p = 0.6, Acc = P(Binomial(K, 0.6) >= (K+1)/2), quoted to 4 dp.
    ks = [1, 3, 5, 11, 51, 101]
    quoted = [0.6000, 0.6480, 0.6826, 0.7535, 0.9265, 0.9791]
    acc = mv_accuracy(binary(0.6), 0, ks)
    np.testing.assert_allclose(acc, quoted, atol=5e-5)
    # exact binomial tail sums
    tails = [stats.binom.sf(k // 2, k, 0.6) for k in ks]
    np.testing.assert_allclose(acc, tails, atol=1e-12)
    # K = 3: 3 q^2 - 2 q^3 = 1.08 - 0.432 = 0.648 exactly
    assert acc[1] == pytest.approx(0.648, abs=1e-15)


def test_even_budget_ties():
    # theory.md Sec. 10 item 2: p = 0.7, Acc(4) = Acc(3) = 3(0.49) - 2(0.343) = 0.784.
    acc = mv_accuracy(binary(0.7), 0, [3, 4])
    np.testing.assert_allclose(acc, [0.784, 0.784], atol=1e-14)
    # (0.4, 0.3, 0.3): Acc(3) = P(count >= 2) + (1/3) P(1,1,1) = 0.352 + 0.216/3 = 0.424,
    # Acc(4) = 0.4384 (exact rational by enumeration: 274/625); Acc(4) != Acc(3) beyond binary.
    acc = mv_accuracy([0.4, 0.3, 0.3], 0, [3, 4])
    assert acc[0] == pytest.approx(0.424, abs=1e-14)
    assert brute_force_mv([Fraction(2, 5), Fraction(3, 10), Fraction(3, 10)], 0, 4) == Fraction(
        274, 625
    )
    assert acc[1] == pytest.approx(274 / 625, abs=1e-14)


def test_plurality_random_ties_reference():
    # theory.md Sec. 10 item 4: (0.4, 0.3, 0.3), quoted to 4 dp; exact rationals by enumeration.
    law = [0.4, 0.3, 0.3]
    quoted = [0.4000, 0.4000, 0.4240, 0.4384, 0.4470, 0.4600, 0.4712, 0.4785, 0.4887, 0.4978]
    ns = np.arange(1, 11)
    acc = mv_accuracy(law, 0, ns)
    np.testing.assert_allclose(acc, quoted, atol=5e-5)
    exact = [brute_force_mv([Fraction(2, 5), Fraction(3, 10), Fraction(3, 10)], 0, n) for n in ns]
    np.testing.assert_allclose(acc, [float(v) for v in exact], atol=1e-14)
    assert mv_accuracy(law, 0, 101) == pytest.approx(0.8127, abs=5e-5)


def test_plurality_pessimistic_ties_reference():
    # theory.md Sec. 10 item 5: N = 2 pessimistic is q^2 = 0.16; N = 3 is P(count >= 2) = 0.352.
    quoted = [0.40, 0.16, 0.352, 0.352, 0.3174, 0.3866]
    acc = mv_accuracy([0.4, 0.3, 0.3], 0, np.arange(1, 7), tie="pessimistic")
    np.testing.assert_allclose(acc, quoted, atol=5e-5)
    np.testing.assert_allclose(acc[:4], quoted[:4], atol=1e-14)


def _beta_latent_curve(a: int, b: int, ks) -> np.ndarray:
    """F(K) = E[Acc(q, K)], q ~ Beta(a, b) with integer a, b, by Gauss-Legendre quadrature.

    Acc(q, K) is a polynomial of degree K in q and the Beta density a polynomial of degree
    a + b - 2, so 40 nodes (exact to degree 79) integrate it exactly for K <= 33.
    """
    x, w = np.polynomial.legendre.leggauss(40)
    q, w = (x + 1) / 2, w / 2
    dens = stats.beta(a, b).pdf(q)
    acc = mv_accuracy(np.stack([q, 1 - q], axis=1), 0, ks)
    return (w * dens) @ acc


def test_beta_2_1_latent_closed_form():
    # theory.md Sec. 10 item 7: q ~ Beta(2,1) (density 2q) gives F(K) = 3/4 - 1/(4(K+2)),
    # i.e. 2/3, 7/10, 5/7, 8/11, 26/35 at K = 1, 3, 5, 9, 33.
    ks = np.array([1, 3, 5, 9, 33])
    curve = _beta_latent_curve(2, 1, ks)
    np.testing.assert_allclose(curve, 0.75 - 1 / (4 * (ks + 2)), atol=1e-12)
    np.testing.assert_allclose(curve, [2 / 3, 7 / 10, 5 / 7, 8 / 11, 26 / 35], atol=1e-12)


@pytest.mark.parametrize("a", [1, 2, 3])
def test_symmetric_beta_latent_is_flat_at_one_half(a):
    # theory.md Sec. 10 item 7: Beta(a, a) is symmetric about 1/2 and Acc(1-q, K) = 1 - Acc(q, K)
    # for odd K, so F(K) = 1/2.
    np.testing.assert_allclose(_beta_latent_curve(a, a, [1, 3, 7, 21]), 0.5, atol=1e-12)


def test_three_vote_moment_identity():
    # theory.md Sec. 10 item 9: F(3) = 3 E[q^2] - 2 E[q^3]; Beta(2,3): E[q^2] = 2*3/(5*6) = 1/5,
    # E[q^3] = 2*3*4/(5*6*7) = 4/35, so F(3) = 3/5 - 8/35 = 13/35 = 0.371429.
    assert _beta_latent_curve(2, 3, 3) == pytest.approx(13 / 35, abs=1e-12)
    assert 13 / 35 == pytest.approx(0.371429, abs=5e-7)


def test_probit_latent_curve():
    # theory.md Sec. 10 item 8: q = Phi(mu + tau Z), (mu, tau) = (0.3, 0.3). F(1) = E[q] =
    # Phi(mu / sqrt(1 + tau^2)) exactly; F(K) by quadrature over Z (helpers.probit_latent_curve).
    mu, tau = 0.3, 0.3
    curve = probit_latent_curve(mu, tau, [1, 3, 11, 51])
    assert curve[0] == pytest.approx(stats.norm.cdf(mu / math.sqrt(1 + tau**2)), abs=1e-12)
    np.testing.assert_allclose(curve, [0.6131, 0.6591, 0.7356, 0.8062], atol=5e-5)
    # Monotone towards the limit F(inf) = P(q > 1/2) = Phi(mu / tau) = Phi(1) = 0.8413.
    assert np.all(np.diff(curve) > 0) and curve[-1] < stats.norm.cdf(1.0)


def test_bi_level_deceiving_pair():
    # theory.md Sec. 3: A has 60% of queries at q = 0.95 and 40% at 0.30; B all at 0.6.
    # F(K) = sum_i alpha_i I_{q_i}((K+1)/2, (K+1)/2) for odd K; B first wins at K = 5.
    ks = np.array([1, 3, 5, 11, 51])
    acc = mv_accuracy(np.array([binary(0.95), binary(0.30), binary(0.6)]), 0, ks)
    f_a = 0.6 * acc[0] + 0.4 * acc[1]
    f_b = acc[2]
    np.testing.assert_allclose(f_a, [0.690, 0.682, 0.6645, 0.631, 0.6005], atol=5e-4)
    np.testing.assert_allclose(f_b, [0.600, 0.648, 0.6826, 0.7535, 0.9265], atol=5e-5)
    assert ks[np.argmax(f_b > f_a)] == 5


def test_parallel_and_serial_paths_agree():
    # Large jobs run the rows over threads, small ones serially (sim.exact.PARALLEL_WORK); rows
    # are independent, so a batch equals its rows computed one by one, bit for bit.
    env = load_env("math")
    probs, correct = env.probs[:4, :30], np.broadcast_to(env.correct[:30], (4, 30))
    ns = np.arange(1, 33)
    batch = mv_accuracy(probs, correct, ns)
    single = [mv_accuracy(probs[p, x], correct[p, x], ns) for p in range(4) for x in range(30)]
    assert np.array_equal(batch.reshape(-1, 32), np.array(single))


# ----------------------------------------------------------------------------- stability


@pytest.mark.parametrize("tie", TIES)
def test_three_answer_law_is_stable_to_n_1000(tie):
    acc = mv_accuracy([0.4, 0.35, 0.25], 0, np.arange(1, 1001), tie=tie)
    assert np.all(np.isfinite(acc))
    assert np.all((acc >= 0) & (acc <= 1))
    # The correct answer is the strict mode, so accuracy approaches 1 (theory.md Sec. 1.2; the
    # error exponent is 0.00167 per vote, so at N = 1000 the error is still ~ e^{-1.67}/sqrt(N)).
    assert acc[-1] > acc[98] > 0.5


def test_binary_law_is_stable_to_n_1000():
    ns = np.arange(1, 1001)
    for q in (0.3, 0.5, 0.55, 0.9):
        acc = mv_accuracy(binary(q), 0, ns)
        assert np.all(np.isfinite(acc)) and np.all((acc >= 0) & (acc <= 1))
        odd = ns[::2]
        np.testing.assert_allclose(acc[odd - 1], betainc((odd + 1) / 2, (odd + 1) / 2, q),
                                   atol=1e-10)


# ----------------------------------------------------------------------------- BoN


@given(reward_laws())
def test_bon_is_the_mean_at_one_draw(law):
    values, probs = law
    assert bon_expected_max(values, probs, 1) == pytest.approx(values @ probs, abs=1e-12)


@given(reward_laws())
def test_bon_is_non_decreasing_and_concave_in_n(law):
    # E[M_{N+1}] - E[M_N] = sum_y y F(y^-)... is >= 0 and shrinks with N (theory.md Sec. 6).
    values, probs = law
    curve = bon_expected_max(values, probs, np.arange(1, 41))
    step = np.diff(curve)
    assert np.all(step >= -1e-12)
    assert np.all(np.diff(step) <= 1e-12)
    assert curve[-1] <= values[probs > 0].max() + 1e-12


@given(reward_laws(), st.integers(1, 30))
def test_bon_matches_enumeration_of_draws(law, n):
    # E[max] = sum_i y_i P(max = y_i), P(max <= y) = F(y)^N, computed here level by level.
    values, probs = law
    levels = np.unique(values)
    cdf = np.array([probs[values <= y].sum() for y in levels])
    below = np.concatenate([[0.0], cdf[:-1]])
    expected = levels @ (cdf**n - below**n)
    assert bon_expected_max(values, probs, n) == pytest.approx(expected, abs=1e-9)


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 5, 8, 33, 40]), st.integers(1, 40))
def test_bon_curve_kernel_matches_bon_expected_max(seed, m, n_max):
    # The Q-table kernel (Abel-summed, F^N carried by products, insertion sort for M <= 32 and
    # argsort above) against the numpy path of bon_expected_max on laws with tied rewards and
    # zero-probability outcomes.
    gen = np.random.default_rng(seed)
    svals = gen.integers(-3, 4, size=(2, 3, 4, m)) * gen.uniform(0.1, 3.0)
    probs = gen.dirichlet(np.ones(m), size=(3, 4))
    probs[gen.random(probs.shape) < 0.3] = 0.0
    probs[..., -1] += probs.sum(axis=-1) == 0
    probs /= probs.sum(axis=-1, keepdims=True)
    ns = np.arange(1, n_max + 1)
    expected = np.stack([bon_expected_max(s, probs, ns) for s in svals])
    np.testing.assert_allclose(_bon_curves(svals, probs, n_max), expected, rtol=0, atol=1e-12)


def test_bon_curve_kernels_threaded_and_serial_agree():
    # Large Q tables spread (context, prompt) blocks over threads, small ones run serially
    # (sim.exact.PARALLEL_WORK); blocks are independent, so both agree bit for bit.
    gen = np.random.default_rng(1)
    svals = gen.integers(0, 5, size=(3, 4, 50, 8)) * 0.7
    probs = gen.dirichlet(np.ones(8), size=(4, 50))
    serial = _bon_curves_serial(svals, probs, 32)
    assert np.array_equal(_bon_curves_parallel(svals, probs, 32), serial)


@given(st.floats(-5, 5), st.integers(1, 6))
def test_bon_constant_rewards(c, m):
    assert np.allclose(bon_expected_max(np.full(m, c), np.full(m, 1 / m), [1, 7, 32]), c,
                       atol=1e-12, rtol=0)


def test_bon_point_mass():
    values = np.array([0.0, 3.0, 1.0])
    np.testing.assert_allclose(bon_expected_max(values, [0, 0, 1], [1, 4, 16]), 1.0, atol=0)


def test_bon_two_outcome_closed_form():
    # Two equiprobable outcomes 0 and 1: E[max of N] = P(some draw is 1) = 1 - 2^-N.
    ns = np.arange(1, 11)
    np.testing.assert_allclose(bon_expected_max([0.0, 1.0], [0.5, 0.5], ns), 1 - 0.5**ns,
                               atol=1e-15)


def test_normal_expected_max_reference():
    # theory.md Sec. 10 item 13 / Sec. 6: E[max of N standard normals] by quadrature, quoted to
    # 4 dp; exactly 1/sqrt(pi) at N = 2 and 3/(2 sqrt(pi)) at N = 3.
    ns = [2, 3, 4, 5, 10, 16, 64, 100, 1000]
    quoted = [0.5642, 0.8463, 1.0294, 1.1630, 1.5388, 1.7660, 2.3437, 2.5076, 3.2414]
    e = bon_expected_max_continuous(stats.norm(), ns)
    np.testing.assert_allclose(e, quoted, atol=5e-5)
    assert e[0] == pytest.approx(1 / math.sqrt(math.pi), abs=1e-9)
    assert e[1] == pytest.approx(1.5 / math.sqrt(math.pi), abs=1e-9)


def test_beta_2_5_expected_max_reference():
    # theory.md Sec. 6: Beta(2,5), E[M_N] = int_0^1 (1 - F^N): 0.28571 (= 2/7, the mean),
    # 0.53535, 0.70367 at N = 1, 8, 64.
    e = bon_expected_max_continuous(stats.beta(2, 5), [1, 8, 64])
    np.testing.assert_allclose(e, [0.28571, 0.53535, 0.70367], atol=5e-6)
    assert e[0] == pytest.approx(2 / 7, abs=1e-10)


def test_closed_form_expected_maxima():
    ns = np.array([1, 2, 5, 20, 100])
    # Uniform(0,1): the max is Beta(N, 1), mean N/(N+1).
    np.testing.assert_allclose(bon_expected_max_continuous(stats.uniform(), ns), ns / (ns + 1),
                               atol=1e-10)
    # Beta(a, 1): F = x^a, max has F = x^{aN}, mean aN/(aN+1).
    np.testing.assert_allclose(bon_expected_max_continuous(stats.beta(3, 1), ns),
                               3 * ns / (3 * ns + 1), atol=1e-10)
    # Gumbel(0,1): the max of N is Gumbel(ln N, 1), mean gamma + ln N.
    np.testing.assert_allclose(bon_expected_max_continuous(stats.gumbel_r(), ns),
                               np.euler_gamma + np.log(ns), atol=1e-8)
    # Exp(1): the max of N has mean H_N (Renyi representation).
    harmonic = [sum(1 / i for i in range(1, n + 1)) for n in ns]
    np.testing.assert_allclose(bon_expected_max_continuous(stats.expon(), ns), harmonic,
                               atol=1e-8)


def test_discrete_bon_converges_to_continuous():
    # A fine equiprobable discretisation of Uniform(0,1) (values (i + 1/2)/M): E[max] tends to
    # N/(N+1) with error at most the half bin width.
    m = 2000
    values = (np.arange(m) + 0.5) / m
    ns = np.array([1, 4, 16])
    e = bon_expected_max(values, np.full(m, 1 / m), ns)
    np.testing.assert_allclose(e, ns / (ns + 1), atol=0.5 / m)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        ([0.5, -0.1, 0.6], "probs must be non-negative"),
        ([0.5, np.nan, 0.5], "probs must be finite"),
        ([0.5, 0.4], r"probs must sum to 1 .*tolerance 1e-08"),
        ([0.5, 0.5 + 2e-8], r"tolerance 1e-08"),
        (np.zeros((2, 0)), "probs must have .*non-empty last axis"),
        (0.5, "probs must have at least 1 dimension"),
    ],
)
def test_mv_accuracy_rejects_bad_probs(probs, match):
    with pytest.raises(ValueError, match=match):
        mv_accuracy(probs, 0, 3)


def test_probs_within_tolerance_are_accepted():
    assert mv_accuracy([0.5, 0.5 + 5e-9], 0, 1) == pytest.approx(0.5, abs=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n=0), r"n must be >= 1"),
        (dict(n=[3, -1]), r"n must be >= 1"),
        (dict(n=2.5), "n must be integer-valued"),
        (dict(n=[]), "n must be an int or a non-empty"),
        (dict(correct=3), r"correct must be in \[0, 2\]"),
        (dict(correct=-1), r"correct must be in \[0, 2\]"),
        (dict(correct=0.0), r"correct must be integer answer indices in \[0, 2\]"),
        (dict(correct=[0, 1]), "correct must broadcast"),
        (dict(tie="optimistic"), "tie must be one of"),
    ],
)
def test_mv_accuracy_rejects_bad_arguments(kwargs, match):
    args = dict(probs=[0.4, 0.3, 0.3], correct=0, n=3) | kwargs
    with pytest.raises(ValueError, match=match):
        mv_accuracy(**args)


@pytest.mark.parametrize(
    ("values", "probs", "n", "match"),
    [
        ([0.0, 1.0], [0.5, 0.5, 0.0], 2, "probs must have the shape of values"),
        ([0.0, np.inf], [0.5, 0.5], 2, "values must be finite"),
        ([0.0, 1.0], [1.5, -0.5], 2, "probs must be non-negative"),
        ([0.0, 1.0], [0.5, 0.5], 0, "n must be >= 1"),
    ],
)
def test_bon_expected_max_rejects_bad_input(values, probs, n, match):
    with pytest.raises(ValueError, match=match):
        bon_expected_max(values, probs, n)


def test_binary_and_continuous_reject_bad_input():
    with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
        mv_accuracy_binary(1.2, 3)
    with pytest.raises(ValueError, match="dist must be a frozen scipy.stats"):
        bon_expected_max_continuous(lambda x: x, 3)
