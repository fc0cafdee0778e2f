"""Deceiving prompts: exact rank-flip analysis, N -> infinity limits, deceiving regions."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.special import ndtr

import sim
from analysis import deceiving as d
from sim.exact import bon_expected_max_continuous, mv_accuracy, mv_accuracy_binary


# ------------------------------------------------------------------ environment-level analysis
def test_analyze_context_hand_table():
    # prompt 0 wins at N = 1 and 2, prompt 1 overtakes at N = 3 and is the joint optimum.
    q = np.array([[0.65, 0.65, 0.63, 0.62],
                  [0.62, 0.62, 0.70, 0.77],
                  [0.10, 0.20, 0.30, 0.40]])
    a = d.analyze_context(q, "ctx")
    assert a.n1_prompt == 0
    assert a.best == (1, 4)
    assert a.disjoint == (0, 1)  # best N of prompt 0 is N = 1 (first of the tied maxima)
    assert a.deceives
    assert a.disjoint_loss == pytest.approx(0.77 - 0.65)
    assert a.prompt_only_loss == pytest.approx(0.77 - 0.65)
    assert a.relative(a.disjoint_loss) == pytest.approx(0.12 / 0.77)
    assert [(f.winner1, f.loser1, f.crossover) for f in a.flips] == [(0, 1, 3)]
    assert a.flips[0].margin == pytest.approx(0.15)
    assert a.flips[0].holds_at_nmax


def test_analyze_context_no_flip_when_one_prompt_dominates():
    q = np.array([[0.5, 0.6, 0.7], [0.4, 0.5, 0.6]])
    a = d.analyze_context(q)
    assert a.flips == [] and not a.deceives and a.best == (0, 3) and a.disjoint == (0, 3)
    assert a.disjoint_loss == 0.0


@given(st.integers(0, 2**32 - 1))
def test_analyze_context_invariants(seed):
    rng = np.random.default_rng(seed)
    q = rng.random((5, 6))
    a = d.analyze_context(q)
    assert a.best_value == q.max()
    assert a.disjoint_value <= a.best_value and a.prompt_only_value <= a.disjoint_value
    assert a.disjoint_value == q[q[:, 0].argmax()].max()
    for f in a.flips:  # definition of a flip, checked by brute force
        assert q[f.winner1, 0] > q[f.loser1, 0]
        behind = np.flatnonzero(q[f.loser1] > q[f.winner1])
        assert f.crossover == behind[0] + 1
    n_flips = sum(q[x, 0] > q[y, 0] and np.any(q[y] > q[x]) for x in range(5) for y in range(5))
    assert len(a.flips) == n_flips


def test_analyze_rejects_bad_table():
    with pytest.raises(ValueError, match="q must be"):
        d.analyze_context(np.zeros(3))


@pytest.mark.parametrize(("call", "match"), [
    (lambda: d.clipped_normal_bon(1.0, -1.0, 3), "sigma finite and >= 0"),
    (lambda: d.clipped_normal_bon(1.0, 1.0, 3, low=4.0, high=0.0), "low must be < high"),
    (lambda: d.mv_phase([0.0, 1.0], [0.5, 1.0], (0.3, 0.3), 0), "n must be an int >= 1"),
    (lambda: d.bon_phase([0.0, 1.0], [0.5, 1.0], (0.3, 0.3), 0), r"n must be an int \[1,"),
])
def test_theory_functions_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_math_has_a_deceiving_prompt():
    # The real MATH environment: the N = 1 winner is not the prompt of the joint optimum in any
    # budget regime (computed from the exact Q table; the paper's Fig. 2a phenomenon).
    env = sim.load_env("math")
    res = d.analyze(env)
    assert [r.name for r in res] == list(env.contexts.names)
    q = env.q_table("all")
    for c, r in enumerate(res):
        assert r.best_value == pytest.approx(q[c].max())
        assert r.deceives and r.n1_prompt != r.best[0]


# ------------------------------------------------------------------ limits
def test_mv_limit_cases():
    probs = np.array([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4],
                      [1 / 3, 1 / 3, 1 / 3]])
    assert d.mv_limit(probs, 0).tolist() == pytest.approx([1, 0, 0.5, 0, 1 / 3])
    assert d.mv_limit(probs, 0, tie="pessimistic").tolist() == [1, 0, 0, 0, 0]


def test_mv_limit_matches_exact_accuracy_at_large_n():
    # strict mode -> 1, not the mode -> 0, two-way exact tie -> 1/2 (by symmetry the two leaders
    # win equally often and a third answer wins with exponentially small probability).
    probs = np.array([[0.5, 0.3, 0.2], [0.3, 0.5, 0.2], [0.45, 0.45, 0.1]])
    acc = mv_accuracy(probs, 0, 301)
    np.testing.assert_allclose(acc, d.mv_limit(probs, 0), atol=2e-3)


def test_bon_limit_is_top_of_support():
    vals = np.array([[0.0, 1.0, 3.0], [2.0, 5.0, 1.0]])
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.1, 0.7]])
    assert d.bon_limit(vals, probs).tolist() == [1.0, 5.0]
    big = sim.bon_expected_max(vals, probs, 2000)
    np.testing.assert_allclose(big, [1.0, 5.0], atol=1e-12)


def test_env_limits_mv_binary_matches_probit_style_formula():
    env = sim.load_env("synth-bernoulli", seed=3)
    u1, uinf = d.env_limits(env)
    theta = env.probs[:, :, 0]
    np.testing.assert_allclose(u1[0], theta.mean(axis=1))
    expect = ((theta > 0.5) + 0.5 * (theta == 0.5)).mean(axis=1)
    np.testing.assert_allclose(uinf[0], expect)


# ------------------------------------------------------------------ probit MV family
@pytest.mark.parametrize(("mu", "tau", "expected"), [
    # theory.md Sec. 3 / Sec. 10 item 8 (quadrature reference values, K = 1, 3, 11, 51)
    (1.0, 2.0, [0.6726, 0.6823, 0.6885, 0.6908]),
    (0.3, 0.3, [0.6131, 0.6591, 0.7356, 0.8062]),
])
def test_probit_curve_reference_values(mu, tau, expected):
    np.testing.assert_allclose(d.probit_curve(mu, tau, [1, 3, 11, 51]), expected, atol=5e-5)


def test_probit_curve_first_point_and_limit():
    mu, tau = np.array([0.3, -0.2, 1.0]), np.array([0.3, 0.5, 2.0])
    f1, finf = d.probit_limits(mu, tau)
    np.testing.assert_allclose(d.probit_curve(mu, tau, 1), f1, atol=1e-10)
    np.testing.assert_allclose(finf, ndtr(mu / tau))
    # N = 4001: within 1e-2 of the limit for these (mu, tau) (convergence ~ N^-1/2 near q = 1/2)
    np.testing.assert_allclose(d.probit_curve(mu, tau, 4001), finf, atol=1e-2)


@pytest.mark.parametrize(("mu", "tau", "n"), [(0.3, 0.3, 11), (-0.2, 0.5, 31), (1.0, 2.0, 32),
                                              (0.05, 0.05, 101)])
def test_probit_curve_matches_adaptive_quadrature(mu, tau, n):
    def f(z):
        return mv_accuracy_binary(ndtr(mu + tau * z), n) * stats.norm.pdf(z)

    ref = integrate.quad(f, -12, 12, points=[-mu / tau], limit=400, epsabs=1e-12)[0]
    assert d.probit_curve(mu, tau, n) == pytest.approx(ref, abs=1e-8)


def test_probit_curve_tau_zero_is_a_point_mass():
    assert d.probit_curve(0.4, 0.0, 7) == pytest.approx(float(mv_accuracy_binary(ndtr(0.4), 7)))


@given(st.floats(-1.5, 1.5), st.floats(0.1, 2.0), st.floats(-1.5, 1.5), st.floats(0.1, 2.0))
def test_probit_deceives_formula_matches_limits(mu_a, tau_a, mu_b, tau_b):
    expect = (mu_a / np.sqrt(1 + tau_a**2) > mu_b / np.sqrt(1 + tau_b**2)) and (
        mu_a / tau_a < mu_b / tau_b)
    assert bool(d.probit_deceives(mu_a, tau_a, mu_b, tau_b)) == expect


@pytest.mark.parametrize(("a", "b"), [((0.8, 1.5), (0.3, 0.3)), ((1.0, 2.0), (0.4, 0.5)),
                                      ((0.6, 1.0), (0.25, 0.2))])
def test_probit_deceiving_pairs_flip_in_exact_curves(a, b):
    # theory says A deceives B; the exact curves agree: A ahead at N = 1, behind at large N.
    assert d.probit_deceives(*a, *b)
    fa = d.probit_curve(*a, [1, 2001])
    fb = d.probit_curve(*b, [1, 2001])
    assert fa[0] > fb[0] and fa[1] < fb[1]


def test_mv_phase_agrees_with_theory_away_from_boundary():
    ref = (0.3, 0.3)
    mu = np.linspace(-0.5, 1.5, 21)
    tau = np.linspace(0.1, 2.5, 13)
    ph = d.mv_phase(mu, tau, ref, 2001)
    f1a, fia = d.probit_limits(ph["mu"], ph["tau"])
    f1b, fib = d.probit_limits(*ref)
    # points whose limit differs from the reference's by > 0.02 and whose N = 1 value by > 1e-6
    clear = (np.abs(fia - fib) > 0.02) & (np.abs(f1a - f1b) > 1e-6)
    assert clear.sum() > 100
    exact_deceives = ph["region"] == 2
    assert np.array_equal(exact_deceives[clear], ph["theory_deceives"][clear])
    assert exact_deceives.any()


# ------------------------------------------------------------------ location-scale BoN
def test_normal_max_reference_values():
    # theory.md Sec. 10 item 13: E[max of N standard normals], quadrature
    e = d.normal_max(16)
    np.testing.assert_allclose(e[[1, 2, 3, 4, 9, 15]],
                               [0.5642, 0.8463, 1.0294, 1.1630, 1.5388, 1.7660], atol=5e-5)
    assert e[1] == pytest.approx(1 / np.sqrt(np.pi), abs=1e-10)
    assert e[0] == 0.0


@given(st.floats(0.0, 2.0), st.floats(0.1, 1.0), st.floats(0.0, 0.8), st.floats(0.05, 1.5))
def test_bon_crossover_matches_exact_quadrature(mu_b, s_a, dmu, ds):
    # A = (mu_B + dmu, s_a) against B = (mu_B, s_a + ds): a deceiving pair by theory.
    mu_a, s_b = mu_b + dmu + 0.01, s_a + ds
    n_max = 32
    assert d.bon_ls_deceives(mu_a, s_a, mu_b, s_b)
    theory = d.bon_ls_crossover(mu_a, s_a, mu_b, s_b, n_max)
    e = d.normal_max(n_max)
    ratio = (mu_a - mu_b) / (s_b - s_a)
    first = np.flatnonzero(e > ratio)
    assert theory == (first[0] + 1 if first.size else 0)


def test_bon_crossover_against_continuous_quadrature():
    # exact curves of the two Gaussian reward laws (quadrature of 1 - F^N), not the e_N shortcut
    ns = np.arange(1, 17)
    ca = bon_expected_max_continuous(stats.norm(1.0, 0.3), ns)
    cb = bon_expected_max_continuous(stats.norm(0.5, 0.8), ns)
    first = int(np.flatnonzero(cb > ca)[0]) + 1
    assert first == d.bon_ls_crossover(1.0, 0.3, 0.5, 0.8, 16)
    # ratio = 0.5 / 0.5 = 1: e_3 = 0.846 < 1 < e_4 = 1.029
    assert first == 4


def test_clipped_normal_bon_unclipped_is_close_to_location_scale():
    # with bounds far away, the 1024-atom quantised normal follows mu + sigma e_N closely
    got = d.clipped_normal_bon(1.0, 0.5, [1, 4, 16], low=-50, high=50, atoms=1024)
    e = d.normal_max(16)
    np.testing.assert_allclose(got, 1.0 + 0.5 * e[[0, 3, 15]], atol=5e-3)


def test_bon_phase_gauss_region_equals_theory():
    mu = np.linspace(0.5, 3.0, 26)
    sig = np.linspace(0.1, 1.5, 15)
    ph = d.bon_phase(mu, sig, (1.5, 0.7), 32)
    assert np.array_equal(ph["region_gauss"] == 2, ph["theory_deceives"])
    assert (ph["region_clipped"] >= 0).any()
