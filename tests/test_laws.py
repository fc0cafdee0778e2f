"""Synthetic response laws (sim.laws): the centering and variance knobs, and their validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import probit_latent_curve
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import sim

N_Q = 20000  # queries drawn for moment checks


@given(st.floats(0.05, 0.95), st.floats(0.5, 50.0))
def test_beta_latent_moments(mean, kappa):
    # E[q] = mean and Var[q] = mean (1 - mean) / (kappa + 1): the centering and variance knobs.
    q = sim.beta_latent_q(mean, kappa, N_Q, rng=1)
    var = mean * (1 - mean) / (kappa + 1)
    assert np.all((q >= 0) & (q <= 1))
    assert abs(q.mean() - mean) <= 4 * math.sqrt(var / N_Q)
    # Var of the sample variance is (mu4 - var^2)/n; for a law on [0, 1], mu4 <= var.
    assert abs(q.var(ddof=1) - var) <= 4 * math.sqrt(var / N_Q)


@given(st.floats(-2.0, 2.0), st.floats(0.0, 3.0))
def test_probit_latent_single_shot_accuracy(mu, tau):
    # E[Phi(mu + tau Z)] = Phi(mu / sqrt(1 + tau^2)) (theory.md Sec. 3).
    q = sim.probit_latent_q(mu, tau, N_Q, rng=2)
    expected = stats.norm.cdf(mu / math.sqrt(1 + tau**2))
    assert abs(q.mean() - expected) <= 4 * max(q.std(ddof=1), 1e-12) / math.sqrt(N_Q) + 1e-15


def test_probit_without_spread_is_constant():
    np.testing.assert_array_equal(sim.probit_latent_q(0.4, 0.0, 5, rng=0),
                                  np.full(5, stats.norm.cdf(0.4)))


def test_latent_draws_are_reproducible():
    a = sim.beta_latent_q(0.6, 3.0, 50, rng=np.random.SeedSequence(4))
    b = sim.beta_latent_q(0.6, 3.0, 50, rng=np.random.SeedSequence(4))
    c = sim.beta_latent_q(0.6, 3.0, 50, rng=np.random.SeedSequence(5))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_probit_deceiving_pair_crosses():
    # theory.md Sec. 3: A (mu, tau) = (1, 2) vs B = (0.3, 0.3). A wins at N = 1:
    # Phi(1/sqrt 5) = 0.6726 > Phi(0.3/sqrt 1.09) = 0.6131, but B wins in the limit:
    # Phi(1/2) = 0.6915 < Phi(1) = 0.8413. Quoted curve of A: 0.6726, 0.6823, 0.6885, 0.6908.
    ks = [1, 3, 11, 51]
    a, b = probit_latent_curve(1.0, 2.0, ks), probit_latent_curve(0.3, 0.3, ks)
    np.testing.assert_allclose(a, [0.6726, 0.6823, 0.6885, 0.6908], atol=5e-5)
    assert a[0] > b[0] and a[1] > b[1] and a[2] < b[2] and a[3] < b[3]
    assert a[-1] < stats.norm.cdf(0.5) < b[-1] < stats.norm.cdf(1.0)


def test_probit_hard_prompt_decreases():
    # theory.md Sec. 3: (mu, tau) = (-0.2, 0.5): F(1) = Phi(-0.2/sqrt 1.25) = 0.429, decreasing
    # to F(inf) = Phi(-0.4) = 0.3446.
    curve = probit_latent_curve(-0.2, 0.5, [1, 3, 11, 51, 201])
    assert curve[0] == pytest.approx(stats.norm.cdf(-0.2 / math.sqrt(1.25)), abs=1e-12)
    assert curve[0] == pytest.approx(0.429, abs=5e-4)
    assert np.all(np.diff(curve) < 0) and curve[-1] > stats.norm.cdf(-0.4)
    assert curve[-1] == pytest.approx(0.3446, abs=5e-3)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8), st.integers(2, 6),
       st.floats(0.0, 1.0))
def test_mv_laws_shape_knob(q, n_answers, shape):
    laws = sim.mv_laws(q, n_answers, wrong_shape=shape)
    q = np.asarray(q)
    assert laws.shape == (q.size, n_answers)
    np.testing.assert_allclose(laws.sum(axis=1), 1.0, atol=1e-15)
    assert np.array_equal(laws[:, 0], q)
    # first distractor: shape + (1 - shape)/(C - 1) of the wrong mass; the rest share evenly
    even = (1 - shape) / (n_answers - 1)
    np.testing.assert_allclose(laws[:, 1], (1 - q) * (shape + even), atol=1e-15)
    np.testing.assert_allclose(laws[:, 2:], ((1 - q) * even)[:, None] * np.ones(n_answers - 2),
                               atol=1e-15)


def test_disturbed_peak_changes_the_vote():
    # q = 0.4 with the wrong mass 0.6 split evenly over 3 distractors (0.2 each): the correct
    # answer is the mode and voting helps. All 0.6 on one distractor (a disturbed peak): it is not,
    # and voting hurts (theory.md Sec. 1.2: Acc -> 1 or -> 0).
    ns = [1, 31, 101]
    even = sim.mv_accuracy(sim.mv_laws([0.4], 4, 0.0), 0, ns)[0]
    peak = sim.mv_accuracy(sim.mv_laws([0.4], 4, 1.0), 0, ns)[0]
    assert even[0] == pytest.approx(0.4, abs=1e-15) and peak[0] == pytest.approx(0.4, abs=1e-15)
    assert np.all(np.diff(even) > 0) and even[-1] > 0.98
    assert np.all(np.diff(peak) < 0) and peak[-1] < 0.03


def test_bon_laws_structure_and_knobs():
    values, probs = sim.bon_laws([1.0, 3.0], [0.8, 0.8], 400, correlation=0.0, n_outcomes=6,
                                 o_max=4.0, rng=0)
    assert values.shape == (400, 6, 2) and probs.shape == (400, 6)
    np.testing.assert_array_equal(probs, 1 / 6)
    assert np.array_equal(values, np.round(values)) and values.min() >= 0 and values.max() <= 4
    means = values.mean(axis=(0, 1))
    assert means[0] < means[1]  # per-objective centering


def test_bon_laws_correlation_knob():
    def corr(rho):
        v, _ = sim.bon_laws([2.0, 2.0], [1.0, 1.0], 300, correlation=rho, rng=1)
        flat = v.reshape(-1, 2)
        return np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]

    assert corr(0.9) > 0.5 and corr(-0.9) < -0.5 and abs(corr(0.0)) < 0.1


def test_bon_laws_without_spread_are_point_masses():
    values, _ = sim.bon_laws([1.2, 2.7], [0.0, 0.0], 5, query_spread=0.0, rng=0)
    assert np.array_equal(values, np.broadcast_to([1.0, 3.0], (5, 8, 2)))
    # no within-query spread: best-of-N gains nothing over one draw
    curve = sim.bon_expected_max(values[..., 0], np.full((5, 8), 1 / 8), [1, 16])
    assert np.array_equal(curve[:, 0], curve[:, 1])


def test_continuous_families():
    fam = sim.CONTINUOUS_FAMILIES
    assert set(fam) == {"gaussian", "beta", "gumbel"}
    assert fam["gaussian"](1.0, 2.0).mean() == pytest.approx(1.0)
    assert fam["beta"]().mean() == pytest.approx(2 / 7)
    # location-scale: E[max of N] = mu + sigma e_N (theory.md Sec. 6)
    e = sim.bon_expected_max_continuous(fam["gaussian"](1.0, 2.0), 4)
    assert e == pytest.approx(1.0 + 2.0 * 1.0293753730039, abs=1e-8)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sim.beta_latent_q(1.0, 2.0, 5), r"mean must be in \(0.0, 1.0\)"),
        (lambda: sim.beta_latent_q(0.5, 0.0, 5), r"concentration must be in \(0.0, inf\)"),
        (lambda: sim.beta_latent_q(0.5, 2.0, 0), r"n_queries must be an int >= 1"),
        (lambda: sim.probit_latent_q(np.nan, 1.0, 5), r"mu must be in \(-inf, inf\)"),
        (lambda: sim.probit_latent_q(0.0, -1.0, 5), r"tau must be in \[0.0, inf\)"),
        (lambda: sim.mv_laws([1.2], 3), r"q must be in \[0, 1\]"),
        (lambda: sim.mv_laws([0.5], 1), r"n_answers must be an int >= 2"),
        (lambda: sim.mv_laws([0.5], 3, 1.5), r"wrong_shape must be in \[0.0, 1.0\]"),
        (lambda: sim.bon_laws([1.0], [-1.0], 5), "spreads and query_spread must be finite"),
        (lambda: sim.bon_laws([np.nan], [1.0], 5), "centers must be a finite 1-d array"),
        (lambda: sim.bon_laws([1.0, 1.0], [1.0], 5, correlation=1.5),
         r"correlation must be in \[-1.0, 1.0\]"),
        (lambda: sim.bon_laws([1.0], [1.0], 5, n_outcomes=0), r"n_outcomes must be an int >= 1"),
        # three equicorrelated objectives need correlation >= -1/2 (else no covariance matrix)
        (lambda: sim.bon_laws([1.0] * 3, [1.0] * 3, 5, correlation=-0.9),
         r"correlation must be in \[-0.5, 1\] for 3 objectives"),
        (lambda: sim.bon_laws([1.0], [1.0], 5, o_max=0.0), r"o_max must be in \(0.0, inf\)"),
    ],
)
def test_laws_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
