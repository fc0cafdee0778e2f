"""Contexts (sim.contexts): objective weights, cost weight, context distribution."""

from __future__ import annotations

import numpy as np
import pytest

import sim


def test_mv_budget_contexts():
    ctx = sim.mv_budget_contexts()
    assert len(ctx) == 3 and ctx.n_objectives == 1
    assert ctx.names == ("low", "mid", "high")
    np.testing.assert_array_equal(ctx.weights, np.ones((3, 1)))
    np.testing.assert_array_equal(ctx.cost_weight, [0.0, 0.2, 1.0])
    np.testing.assert_allclose(ctx.probs, 1 / 3, atol=1e-16)


def test_mv_budget_contexts_custom():
    ctx = sim.mv_budget_contexts({"free": 0.0, "tight": 2.5})
    assert ctx.names == ("free", "tight")
    np.testing.assert_array_equal(ctx.cost_weight, [0.0, 2.5])


def test_bon_contexts_are_the_papers_27():
    ctx = sim.bon_contexts()
    assert len(ctx) == 27 and ctx.n_objectives == 2
    np.testing.assert_allclose(ctx.weights.sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(np.unique(np.round(ctx.weights[:, 0], 12)),
                               np.arange(1, 10) / 10, atol=1e-12)
    np.testing.assert_array_equal(ctx.cost_weight, np.repeat([0.0, 0.2, 1.0], 9))
    assert ctx.names[0] == "w=0.1/low" and ctx.names[-1] == "w=0.9/high"
    assert len(set(ctx.names)) == 27
    np.testing.assert_allclose(ctx.probs.sum(), 1.0, atol=1e-15)


def test_contexts_are_read_only_and_normalised():
    ctx = sim.Contexts([[1.0], [2.0]], [0.0, 0.5], [0.3, 0.7 + 5e-9], ("a", "b"))
    assert ctx.probs.sum() == pytest.approx(1.0, abs=1e-15)
    for arr in (ctx.weights, ctx.cost_weight):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1.0
    one = sim.Contexts([0.5, 0.5], [0.1], [1.0], ("only",))  # a 1-d weight row is one context
    assert one.weights.shape == (1, 2)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([[1.0], [1.0]], [0.0], [0.5, 0.5], ("a", "b")),
         "weights has 2 rows but cost_weight, probs and names have 1, 2, 2"),
        (([[1.0], [1.0]], [0.0, 0.1], [0.5, 0.5], ("a",)), "names have 2, 2, 1"),
        (([[np.nan], [1.0]], [0.0, 0.1], [0.5, 0.5], ("a", "b")), "must be finite"),
        (([[1.0], [1.0]], [0.0, -0.1], [0.5, 0.5], ("a", "b")), r"cost_weight must be >= 0"),
        (([[1.0], [1.0]], [0.0, 0.1], [0.5, 0.6], ("a", "b")),
         r"probs must be >= 0 and sum to 1 \(tol 1e-08\)"),
        (([[1.0], [1.0]], [0.0, 0.1], [1.5, -0.5], ("a", "b")), r"probs must be >= 0"),
    ],
)
def test_contexts_reject_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        sim.Contexts(*args)
