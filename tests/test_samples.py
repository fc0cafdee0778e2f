"""sim.from_samples / ``iapo import``: environments from sample logs (issue 5)."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from analysis.cli import main as iapo
from sim.samples import default_contexts, from_samples

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MV_COLS = ["prompt", "query", "sample", "answer", "gold", "tokens"]


def write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def quiet(*args, **kwargs):
    """from_samples with every warning turned into an error (the call must not warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return from_samples(*args, **kwargs)


# ------------------------------------------------------------------ hand-computed majority vote
# Two prompts a, b; three queries; four samples per pair.
#   q1 (gold A):  a -> A A B C        b -> A B B B
#   q2 (gold 7):  a -> " 7" 7 7 8     b -> 8 8 8 8        (" 7" is stripped to "7")
#   q3 (gold Z):  a -> Y Y W W        b -> Y Y Y Y        (no sample produces the gold answer)
# Tokens: prompt a 100, 200, 300, 400 on every query (mean 250), prompt b 500.
HAND_MV = {
    ("a", "q1"): "A A B C", ("b", "q1"): "A B B B",
    ("a", "q2"): " 7|7|7|8", ("b", "q2"): "8 8 8 8",
    ("a", "q3"): "Y Y W W", ("b", "q3"): "Y Y Y Y",
}
HAND_GOLD = {"q1": "A", "q2": "7", "q3": "Z"}


def hand_mv_rows():
    rows = []
    for (p, q), text in HAND_MV.items():
        answers = text.split("|") if "|" in text else text.split()
        for i, ans in enumerate(answers):
            tokens = 100 * (i + 1) if p == "a" else 500
            rows.append([p, q, i, ans, HAND_GOLD[q], tokens])
    return rows


# Plurality vote with random tie-breaking (credit 1/t among t tied leaders), gold probability g:
#   N = 1: Acc = g.
#   N = 2: both gold -> 1; one gold + one other -> tie of two -> 1/2; so Acc = g^2 + g(1-g) = g.
#   N = 3: >= 2 gold -> 1 (prob 3g^2(1-g) + g^3); exactly 1 gold and the other two different
#          wrong answers -> three-way tie -> 1/3; otherwise 0.
#   a,q1: g = 1/2, B = C = 1/4: 3/8 + 1/8 + (1/3)·3·(1/2)·(2·1/4·1/4) = 1/2 + 1/16 = 9/16.
#   b,q1: g = 1/4, B = 3/4:     3·(1/16)·(3/4) + 1/64 = 10/64 = 5/32 (one gold + BB -> B wins).
#   a,q2: g = 3/4, 8 = 1/4:     3·(9/16)·(1/4) + 27/64 = 54/64 = 27/32.
#   b,q2, a,q3, b,q3: g = 0 -> 0.
HAND_ACC = np.array([
    [[1 / 2, 1 / 2, 9 / 16], [3 / 4, 3 / 4, 27 / 32], [0, 0, 0]],
    [[1 / 4, 1 / 4, 5 / 32], [0, 0, 0], [0, 0, 0]],
])


def test_hand_computed_mv_log_gives_exact_q(tmp_path):
    path = write_csv(tmp_path / "hand.csv", MV_COLS, hand_mv_rows())
    env = quiet(path, n_max=3, cost_scale=1e-3, rng=0)
    assert env.kind == "mv" and env.prompt_names == ("a", "b") and env.name == "hand"
    # categories: gold first, the others sorted; q2 has two, padded to three with probability 0
    expected_probs = np.array([
        [[2, 1, 1], [3, 1, 0], [0, 2, 2]],   # a: q1 [A, B, C], q2 [7, 8, pad], q3 [Z, W, Y]
        [[1, 3, 0], [0, 4, 0], [0, 0, 4]],   # b
    ]) / 4
    np.testing.assert_array_equal(env.probs, expected_probs)
    np.testing.assert_array_equal(env.correct, [0, 0, 0])
    np.testing.assert_array_equal(env.cost, [0.25, 0.5])  # mean tokens 250, 500 × 1e-3
    ns = np.arange(1, 4)
    cw = np.array([0.0, 0.2, 1.0])  # mv_budget_contexts: low, mid, high
    expected_q = HAND_ACC.mean(axis=1)[None] - cw[:, None, None] * ns * env.cost[None, :, None]
    np.testing.assert_allclose(env.q_table("all"), expected_q, rtol=0, atol=1e-15)
    # e.g. Q(mid, a, 3) = (9/16 + 27/32 + 0)/3 - 0.2·3·0.25 = 15/32 - 0.15
    assert env.q_table("all")[1, 0, 2] == pytest.approx(15 / 32 - 0.15, abs=1e-15)


def test_default_cost_scale_puts_the_most_expensive_prompt_at_0_01(tmp_path):
    path = write_csv(tmp_path / "hand.csv", MV_COLS, hand_mv_rows())
    env = quiet(path, n_max=3, rng=0)
    np.testing.assert_allclose(env.cost, [0.005, 0.01], rtol=1e-15)  # 250/500 · 0.01


def test_additive_smoothing_counts_every_category_of_the_query(tmp_path):
    path = write_csv(tmp_path / "hand.csv", MV_COLS, hand_mv_rows())
    env = quiet(path, n_max=3, alpha=1.0, rng=0)
    # (count + 1) / (4 + #categories of the query); padding stays 0
    np.testing.assert_allclose(env.probs[0, 0], [3 / 7, 2 / 7, 2 / 7])  # a,q1: A2 B1 C1
    np.testing.assert_allclose(env.probs[1, 1], [1 / 6, 5 / 6, 0])      # b,q2: 7:0 8:4
    np.testing.assert_allclose(env.probs[0, 2], [1 / 7, 3 / 7, 3 / 7])  # a,q3: Z0 W2 Y2
    np.testing.assert_allclose(env.probs[1, 2], [1 / 7, 1 / 7, 5 / 7])  # b,q3: Z0 W0 Y4


def test_casefold_option(tmp_path):
    rows = [["p", q, i, ans, "Yes", 10] for q in ("q1", "q2") for i, ans in
            enumerate(["yes", "YES", "no", "Yes"])]
    rows += [["r", q, i, "no", "Yes", 10] for q in ("q1", "q2") for i in range(4)]
    path = write_csv(tmp_path / "case.csv", MV_COLS, rows)
    exact_case = quiet(path, n_max=4, rng=0)
    folded = quiet(path, n_max=4, casefold=True, rng=0)
    assert exact_case.q_table("all")[0, 0, 0] == pytest.approx(1 / 4)  # only "Yes" matches
    assert folded.q_table("all")[0, 0, 0] == pytest.approx(3 / 4)      # yes, YES, Yes


def test_empty_answer_is_its_own_wrong_category(tmp_path):
    rows = [["p", q, i, ans, "A", 10] for q in ("q1", "q2") for i, ans in enumerate(["", "", "A"])]
    env = quiet(write_csv(tmp_path / "e.csv", MV_COLS, rows), n_max=3, rng=0)
    np.testing.assert_allclose(env.probs[0, 0], [1 / 3, 2 / 3])
    # N = 3: the empty answer wins with >= 2 of 3 draws: Acc = (1/3)^3 + 3 (1/3)^2 (2/3) = 7/27
    assert env.q_table("all")[0, 0, 2] == pytest.approx(7 / 27, abs=1e-15)


# ------------------------------------------------------------------ hand-computed best of N
# Prompts a, b; queries q1, q2; objectives (x, y); tokens a 100, b 300; cost_scale 0.01.
#   a,q1: (0,0) (0,0) (2,2) (4,0)      b,q1: (2,2) ×4
#   a,q2: (1,3) (1,3) (3,1) (3,1)      b,q2: (1,3) ×4      (q2: 2 outcomes, padded to 3)
# E[max of N] = sum_i y_(i) (F_i^N - F_{i-1}^N) over sorted scalarised rewards.
# Context w = 0.1 (0.1 x + 0.9 y):
#   a,q1: rewards 0 (1/2), 0.4 (1/4), 2 (1/4): N=1: 0.6; N=2: 2(1 - 9/16) + 0.4(9/16 - 4/16) = 1.0
#   a,q2: 2.8 (1/2), 1.2 (1/2): N=1: 2.0; N=2: 2.8·3/4 + 1.2·1/4 = 2.4
#   b,q1: 2; b,q2: 2.8 (deterministic)
# Context w = 0.5: a,q1: 0 (1/2), 2 (1/2): N=1: 1, N=2: 1.5; a,q2: 2; b: 2, 2.
BON_HAND = {
    ("a", "q1"): [(0, 0), (0, 0), (2, 2), (4, 0)], ("b", "q1"): [(2, 2)] * 4,
    ("a", "q2"): [(1, 3), (1, 3), (3, 1), (3, 1)], ("b", "q2"): [(1, 3)] * 4,
}


def test_hand_computed_bon_log_gives_exact_q(tmp_path):
    tokens = {"a": 100, "b": 300}
    rows = [{"prompt": p, "query": q, "score_x": x, "score_y": y, "tokens": tokens[p]}
            for (p, q), outs in BON_HAND.items() for x, y in outs]
    env = quiet(write_jsonl(tmp_path / "bon.jsonl", rows), n_max=2, cost_scale=0.01, rng=0)
    assert env.kind == "bon" and env.values.shape == (2, 2, 3, 2)
    np.testing.assert_array_equal(env.values[0, 0], [[0, 0], [2, 2], [4, 0]])  # sorted support
    np.testing.assert_array_equal(env.probs[0, 0], [1 / 2, 1 / 4, 1 / 4])
    np.testing.assert_array_equal(env.probs[1, 1], [1, 0, 0])  # (1,3), (3,1), padding
    np.testing.assert_array_equal(env.cost, [1.0, 3.0])
    names = env.contexts.names
    q = env.q_table("all")
    task = {  # (weight, prompt) -> mean over queries of E[max] at N = 1, 2
        (0.1, 0): [(0.6 + 2.0) / 2, (1.0 + 2.4) / 2], (0.1, 1): [(2 + 2.8) / 2] * 2,
        (0.5, 0): [(1.0 + 2.0) / 2, (1.5 + 2.0) / 2], (0.5, 1): [2.0, 2.0],
    }
    for (w, p), vals in task.items():
        for regime, cw in (("low", 0.0), ("high", 1.0)):
            c = names.index(f"w={w:.1f}/{regime}")
            expected = np.array(vals) - cw * np.arange(1, 3) * env.cost[p]
            np.testing.assert_allclose(q[c, p], expected, rtol=0, atol=1e-12)


def test_default_contexts_by_number_of_objectives():
    assert len(default_contexts("mv")) == 3
    assert len(default_contexts("bon", ["h"])) == 3
    assert len(default_contexts("bon", ["h", "s"])) == 27
    three = default_contexts("bon", ["h", "s", "f"])
    assert len(three) == 12  # (equal + one emphasis per objective) × 3 budget regimes
    np.testing.assert_allclose(three.weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(three.weights[1], [0.5, 0.25, 0.25])


def test_three_objectives_and_explicit_objective_columns(tmp_path):
    rows = [{"prompt": p, "query": q, "a": i, "b": 1, "c": 2 * i, "tokens": 5}
            for p in "xy" for q in ("q1", "q2") for i in range(3)]
    env = quiet(rows, objective_cols=["a", "c", "b"], n_max=3, rng=0)
    assert env.values.shape[-1] == 3 and len(env.contexts) == 12
    np.testing.assert_array_equal(env.values[0, 0, 2], [2, 4, 1])  # columns in the given order


# ------------------------------------------------------------------ round trips
def draw_log(env, n_samples, *, rng, kind):
    """Rows of a log drawn from the known environment ``env`` (n_samples per pair)."""
    gen = np.random.default_rng(rng)
    rows = []
    lam = env.cost * 1000  # mean tokens, so that cost_scale = 1e-3 recovers env.cost
    for p in range(env.n_prompts):
        for x in range(env.n_queries):
            draws = gen.choice(env.probs.shape[2], size=n_samples, p=env.probs[p, x])
            toks = gen.poisson(lam[p], size=n_samples)
            for i, (m, t) in enumerate(zip(draws, toks, strict=True)):
                row = {"prompt": f"p{p}", "query": f"x{x}", "sample": i, "tokens": int(t)}
                if kind == "mv":
                    row["answer"], row["gold"] = f"ans{m}", f"ans{env.correct[x]}"
                else:
                    row["score_u"], row["score_v"] = env.values[p, x, m]
                rows.append(row)
    return rows


def known_mv(seed=1):
    gen = np.random.default_rng(seed)
    n_p, n_x, n_c = 3, 6, 3
    probs = gen.dirichlet(np.ones(n_c), size=(n_p, n_x))
    return sim.Environment(
        name="known", kind="mv", probs=probs, correct=gen.integers(0, n_c, n_x),
        cost=np.array([0.2, 0.35, 0.5]), contexts=sim.mv_budget_contexts(), n_max=6,
        train=np.arange(4), test=np.arange(4, 6))


def known_bon(seed=2):
    gen = np.random.default_rng(seed)
    n_p, n_x, m = 2, 4, 4
    values = gen.integers(0, 5, size=(n_p, n_x, m, 2)).astype(float)
    probs = gen.dirichlet(np.ones(m), size=(n_p, n_x))
    return sim.Environment(
        name="known", kind="bon", probs=probs, values=values, cost=np.array([0.1, 0.3]),
        contexts=sim.bon_contexts(), n_max=6, train=np.arange(3), test=np.arange(3, 4))


def clt_sd(env, n_samples, h=1e-7):
    """Delta-method (CLT) standard deviation of every entry of the imported Q table.

    The imported law of a pair is the empirical law of S = ``n_samples`` draws, with covariance
    ``(diag(p) - p p^T) / S``. The exact curve f(p) (accuracy or E[max], a polynomial in p) has
    variance ``sum_c p_c d_c^2 / S`` with ``d_c`` its derivative along ``e_c - p`` (forward
    difference of the exact math, step h). Q averages X independent pairs; the cost estimate is
    the mean of S·X Poisson(lambda) token counts / 1000, variance ``lambda / (S X) / 1e6``.
    """
    base = env.query_curves()
    task_var = np.zeros_like(base)
    for c in range(env.probs.shape[2]):
        moved = (1 - h) * env.probs
        moved[..., c] += h
        d = (dataclasses.replace(env, probs=moved, _cache={}).query_curves() - base) / h
        task_var += env.probs[..., c, None] * d**2  # MV (P, X, N); BoN (CX, P, X, N)
    task_var = task_var.sum(axis=-2) / (n_samples * env.n_queries**2)
    if env.kind == "mv":
        task_var = env.contexts.weights[:, 0, None, None] ** 2 * task_var[None]
    ns = np.arange(1, env.n_max + 1)
    cost_var = env.cost * 1000 / (n_samples * env.n_queries) / 1e6
    cw = env.contexts.cost_weight[:, None, None]
    return np.sqrt(task_var + (cw * ns) ** 2 * cost_var[None, :, None])


@pytest.mark.parametrize("kind", ["mv", "bon"])
def test_round_trip_q_tables_converge(tmp_path, kind):
    known = known_mv() if kind == "mv" else known_bon()
    errors = []
    for i, n_samples in enumerate((40, 400, 4000)):
        path = write_jsonl(tmp_path / f"log{i}.jsonl",
                           draw_log(known, n_samples, rng=[7, i], kind=kind))
        env = quiet(path, n_max=known.n_max, cost_scale=1e-3, rng=0)
        assert env.prompt_names == ("p0", "p1", "p2")[:known.n_prompts]
        err = np.abs(env.q_table("all") - known.q_table("all"))
        errors.append(err.max())
    assert errors[0] > errors[1] > errors[2]
    # 5 standard deviations: two-sided normal tail 5.7e-7 per entry (at most 324 entries)
    assert np.all(err <= 5 * clt_sd(known, 4000))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mv", "bon"])
def test_round_trip_large_sample_within_clt_bound(tmp_path, kind):
    known = known_mv(11) if kind == "mv" else known_bon(12)
    path = write_jsonl(tmp_path / "big.jsonl", draw_log(known, 40000, rng=3, kind=kind))
    env = quiet(path, n_max=known.n_max, cost_scale=1e-3, rng=0)
    err = np.abs(env.q_table("all") - known.q_table("all"))
    assert np.all(err <= 5 * clt_sd(known, 40000))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 2), st.sampled_from("ABC")),
                min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_single_shot_q_is_the_gold_frequency_and_row_order_is_irrelevant(extra, rand):
    # every pair gets one "A" answer so the grid is complete; gold is "A" on every query
    triples = [(p, x, "A") for p in range(2) for x in range(3)] + extra
    rows = [{"prompt": f"p{p}", "query": f"q{x}", "answer": a, "gold": "A", "tokens": 1}
            for p, x, a in triples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples per pair
        env = from_samples(rows, n_max=3, rng=0)
        shuffled = rows[:]
        rand.shuffle(shuffled)
        env2 = from_samples(shuffled, n_max=3, rng=0)
    for p in range(2):
        freq = np.mean([np.mean([a == "A" for pp, x, a in triples if (pp, x) == (p, q)])
                        for q in range(3)])
        i = env.prompt_names.index(f"p{p}")
        assert env.q_table("all")[0, i, 0] == pytest.approx(freq, abs=1e-12)
        j = env2.prompt_names.index(f"p{p}")
        np.testing.assert_allclose(env2.q_table("all")[:, j], env.q_table("all")[:, i],
                                   atol=1e-12)


# ------------------------------------------------------------------ formats and examples
def test_examples_import_and_csv_equals_jsonl():
    for task in ("mv", "bon"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 4 samples per pair < n_max
            a = from_samples(EXAMPLES / f"{task}_samples.csv", rng=0)
            b = from_samples(EXAMPLES / f"{task}_samples.jsonl", rng=0)
        assert a.kind == task
        np.testing.assert_array_equal(a.probs, b.probs)
        np.testing.assert_array_equal(a.cost, b.cost)
        np.testing.assert_array_equal(a.q_table("all"), b.q_table("all"))


def test_tsv_and_gzip(tmp_path):
    rows = hand_mv_rows()
    ref = quiet(write_csv(tmp_path / "h.csv", MV_COLS, rows), n_max=3, rng=0)
    tsv = tmp_path / "h.tsv"
    tsv.write_text("\t".join(MV_COLS) + "\n" + "".join("\t".join(map(str, r)) + "\n"
                                                       for r in rows))
    gz = tmp_path / "h.csv.gz"
    gz.write_bytes(gzip.compress((tmp_path / "h.csv").read_bytes()))
    for path in (tsv, gz):
        np.testing.assert_array_equal(quiet(path, n_max=3, rng=0).probs, ref.probs)


def test_parquet_matches_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = hand_mv_rows()
    ref = quiet(write_csv(tmp_path / "h.csv", MV_COLS, rows), n_max=3, rng=0)
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(MV_COLS)})
    pq.write_table(table, tmp_path / "h.parquet")
    env = quiet(tmp_path / "h.parquet", n_max=3, rng=0)
    np.testing.assert_array_equal(env.probs, ref.probs)
    np.testing.assert_array_equal(env.cost, ref.cost)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"log\.parquet: reading Parquet needs pyarrow"):
        from_samples(path)


def test_split_is_80_20_from_the_seed(tmp_path):
    rows = [["p", f"q{x}", i, "A", "A", 1] for x in range(10) for i in range(3)]
    path = write_csv(tmp_path / "s.csv", MV_COLS, rows)
    a, b = quiet(path, n_max=3, rng=5), quiet(path, n_max=3, rng=5)
    assert a.train.size == 8 and a.test.size == 2
    np.testing.assert_array_equal(a.train, b.train)
    assert sorted(np.concatenate([a.train, a.test]).tolist()) == list(range(10))


def test_saved_file_loads_back_identically(tmp_path):
    env = quiet(write_csv(tmp_path / "h.csv", MV_COLS, hand_mv_rows()), n_max=3, rng=0)
    back = sim.load_env(sim.save_env(env, tmp_path / "h.npz"))
    np.testing.assert_array_equal(back.probs, env.probs)
    np.testing.assert_array_equal(back.q_table("test"), env.q_table("test"))
    assert back.prompt_names == env.prompt_names


# ------------------------------------------------------------------ warnings and the grid
def test_warns_when_pairs_have_fewer_samples_than_n_max(tmp_path):
    path = write_csv(tmp_path / "h.csv", MV_COLS, hand_mv_rows())
    with pytest.warns(UserWarning, match=r"h\.csv: 6 of 6 \(prompt, query\) pairs have fewer "
                                         r"than n_max = 32 samples \(fewest: 4"):
        from_samples(path, rng=0)


def test_missing_pairs_are_refused_with_their_list(tmp_path):
    rows = [r for r in hand_mv_rows() if (r[0], r[1]) != ("b", "q2")]
    rows += [["a", f"extra{k}", 0, "A", "A", 1] for k in range(6)]  # six queries only prompt a has
    path = write_csv(tmp_path / "m.csv", MV_COLS, rows)
    with pytest.raises(ValueError) as info:
        from_samples(path, n_max=1)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: 7 of 18 (prompt, query) pairs have no samples: "
                          "('b', 'q2'), ('b', 'extra0'), ('b', 'extra1'), ('b', 'extra2'), "
                          "('b', 'extra3') and 2 more; pass drop_incomplete=True")
    with pytest.warns(UserWarning, match="dropped 7 of 9 queries not covered by every prompt"):
        env = from_samples(path, n_max=1, drop_incomplete=True, cost_scale=1e-3, rng=0)
    assert env.n_queries == 2  # q1, q3
    np.testing.assert_array_equal(env.probs[0, 1], [0, 1 / 2, 1 / 2])  # a,q3 as before
    # cost averages over the kept queries only: prompt a mean 250 tokens on q1 and q3
    np.testing.assert_allclose(env.cost, [0.25, 0.5])


# ------------------------------------------------------------------ bad input
def one_line_error(path, match, **kwargs):
    with pytest.raises(ValueError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from_samples(path, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    assert match in msg, msg
    return msg


def test_bad_missing_column_in_header(tmp_path):
    path = write_csv(tmp_path / "b.csv", ["prompt", "query", "answer", "tokens"],
                     [["p", "q", "A", 1]])
    one_line_error(path, "line 1: missing column(s) ['gold']")


def test_bad_missing_column_in_a_later_jsonl_row(tmp_path):
    rows = [{"prompt": "p", "query": "q", "answer": "A", "gold": "A", "tokens": 1}] * 2
    rows.append({"prompt": "p", "query": "q", "answer": "A", "gold": "A"})
    one_line_error(write_jsonl(tmp_path / "b.jsonl", rows), "line 3: missing column 'tokens'")


def test_bad_no_task_columns(tmp_path):
    path = write_csv(tmp_path / "b.csv", ["prompt", "query", "tokens"], [["p", "q", 1]])
    one_line_error(path, "line 1: no answer column 'answer' (majority vote) and no objective")


def test_bad_both_task_columns_need_a_kind(tmp_path):
    path = write_csv(tmp_path / "b.csv", ["prompt", "query", "answer", "gold", "score_r",
                                          "tokens"], [["p", "q", "A", "A", 1, 1]])
    one_line_error(path, "pass kind='mv' or kind='bon'")


@pytest.mark.parametrize("name, text", [("e.csv", ""), ("e.jsonl", ""), ("e.jsonl", "\n\n")])
def test_bad_empty_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    one_line_error(path, "empty file")


def test_bad_header_only(tmp_path):
    one_line_error(write_csv(tmp_path / "b.csv", MV_COLS, []), "no data rows (only a header)")


@pytest.mark.parametrize("value, problem", [
    ("abc", "column 'score_r': 'abc' is not a number"),
    ("", "column 'score_r': expected a number, found an empty value"),
    ("nan", "column 'score_r': 'nan' is not a finite number"),
])
def test_bad_non_numeric_score(tmp_path, value, problem):
    rows = [["p", "q", 1.0, 5], ["p", "q", value, 5]]
    path = write_csv(tmp_path / "b.csv", ["prompt", "query", "score_r", "tokens"], rows)
    one_line_error(path, f"line 3: {problem}")


def test_bad_non_numeric_score_in_jsonl(tmp_path):
    rows = [{"prompt": "p", "query": "q", "score_r": [1], "tokens": 1}]
    one_line_error(write_jsonl(tmp_path / "b.jsonl", rows),
                   "line 1: column 'score_r': expected a number, found [1]")


@pytest.mark.parametrize("value, problem", [
    ("12x", "column 'tokens': '12x' is not a number"),
    ("-3", "column 'tokens': negative token count -3"),
])
def test_bad_tokens(tmp_path, value, problem):
    rows = [["p", "q", 0, "A", "A", 5], ["p", "q", 1, "A", "A", value]]
    one_line_error(write_csv(tmp_path / "b.csv", MV_COLS, rows), f"line 3: {problem}")


def test_bad_two_gold_answers(tmp_path):
    rows = [["p", "q1", 0, "A", "A", 5], ["p", "q2", 0, "A", "A", 5], ["r", "q1", 0, "A", "B", 5]]
    one_line_error(write_csv(tmp_path / "b.csv", MV_COLS, rows),
                   "line 4: query 'q1' has gold answer 'B' but line 2 gave 'A'")


def test_bad_empty_gold(tmp_path):
    rows = [["p", "q1", 0, "A", " ", 5]]
    one_line_error(write_csv(tmp_path / "b.csv", MV_COLS, rows),
                   "line 2: column 'gold': empty gold answer")


def test_bad_duplicate_rows(tmp_path):
    rows = [["p", "q1", 0, "A", "A", 5], ["p", "q1", 1, "A", "A", 5], ["p", "q1", 0, "B", "A", 5]]
    one_line_error(write_csv(tmp_path / "b.csv", MV_COLS, rows),
                   "line 4: duplicate row: prompt 'p', query 'q1', sample '0' already at line 2")


def test_identical_rows_without_sample_column_are_samples(tmp_path):
    cols = ["prompt", "query", "answer", "gold", "tokens"]
    rows = [["p", q, "A", "A", 5] for q in ("q1", "q2") for _ in range(2)]
    env = quiet(write_csv(tmp_path / "ok.csv", cols, rows), n_max=2, rng=0)
    assert env.q_table("all")[0, 0, 0] == 1.0


def test_bad_truncated_jsonl_line(tmp_path):
    path = tmp_path / "b.jsonl"
    good = json.dumps({"prompt": "p", "query": "q", "answer": "A", "gold": "A", "tokens": 1})
    path.write_text(good + "\n" + good[:25] + "\n")
    one_line_error(path, "line 2: not valid JSON (")


def test_bad_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text("[1, 2]\n")
    one_line_error(path, "line 1: expected one JSON object per line, found list")


def test_bad_csv_row_with_wrong_number_of_fields(tmp_path):
    path = write_csv(tmp_path / "b.csv", MV_COLS, [["p", "q", 0, "A", "A", 5]])
    with open(path, "a") as fh:
        fh.write("p,q,1,A\n")  # truncated last row
    one_line_error(path, "line 3: expected 6 fields, found 4 (truncated or malformed row)")


def test_bad_csv_unterminated_quote(tmp_path):
    path = write_csv(tmp_path / "b.csv", MV_COLS, [["p", "q", 0, "A", "A", 5]])
    with open(path, "a") as fh:
        fh.write('p,q,1,"A')
    one_line_error(path, "malformed CSV")


def test_bad_empty_prompt_id(tmp_path):
    one_line_error(write_csv(tmp_path / "b.csv", MV_COLS, [["", "q", 0, "A", "A", 5]]),
                   "line 2: column 'prompt': empty id")


def test_bad_file_arguments(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        from_samples(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="cannot infer the format"):
        from_samples(tmp_path / "log.txt")
    with pytest.raises(ValueError, match="alpha must be in"):
        from_samples(tmp_path / "nope.csv", alpha=-1)


# ------------------------------------------------------------------ the command line
def test_cli_import_then_curves(tmp_path, capsys):
    log = write_csv(tmp_path / "h.csv", MV_COLS, hand_mv_rows())
    out = tmp_path / "h.npz"
    assert iapo(["import", str(log), "--out", str(out), "--n-max", "3", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote {out}: mv, 2 prompts x 3 queries")
    assert captured.err == ""  # 4 samples per pair >= n_max = 3: no warning
    env = sim.load_env(out)
    assert env.n_max == 3 and env.prompt_names == ("a", "b")
    assert iapo(["curves", str(out), "--n", "1,3"]) == 0
    assert "context low: best arm prompt a, N = 3" in capsys.readouterr().out


def test_cli_prints_warnings(tmp_path, capsys):
    log = write_csv(tmp_path / "h.csv", MV_COLS, hand_mv_rows())
    assert iapo(["import", str(log), "--out", str(tmp_path / "h.npz")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("iapo import: warning: ")
    assert "fewer than n_max = 32 samples" in err[0]


def test_cli_bon_options(tmp_path, capsys):
    rows = [{"prompt": p, "query": q, "r_x": x, "r_y": y, "tokens": 1}
            for (p, q), outs in BON_HAND.items() for x, y in outs]
    log = write_jsonl(tmp_path / "bon.jsonl", rows)
    out = tmp_path / "bon.npz"
    assert iapo(["import", str(log), "--out", str(out), "--objective-prefix", "r_",
                 "--n-max", "2"]) == 0
    env = sim.load_env(out)
    assert env.kind == "bon" and env.values.shape[-1] == 2


def test_cli_error_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    rows = [["p", "q1", 0, "A", "A", 5], ["r", "q1", 0, "A", "B", 5]]
    log = write_csv(tmp_path / "bad.csv", MV_COLS, rows)
    out = tmp_path / "new.npz"
    assert iapo(["import", str(log), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"iapo import: error: {log}: line 3: query 'q1' has gold answer")
    assert not out.exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_failed_import_leaves_existing_output_untouched(tmp_path, capsys):
    out = tmp_path / "env.npz"
    good = write_csv(tmp_path / "h.csv", MV_COLS, hand_mv_rows())
    assert iapo(["import", str(good), "--out", str(out), "--n-max", "3"]) == 0
    before = out.read_bytes()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "query": "q1", "answer": "A", "gold": "A", "tok')
    assert iapo(["import", str(bad), "--out", str(out)]) == 2
    assert "line 1: not valid JSON" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_cli_rejects_a_non_npz_output_before_reading(tmp_path, capsys):
    assert iapo(["import", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "e.txt")]) == 2
    assert "--out: environment files end in .npz" in capsys.readouterr().err


def test_bad_not_utf8(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"prompt,query,answer,gold,tokens\np,q,\xff\xfe,A,1\n")
    one_line_error(path, "not UTF-8 text")


def test_bad_gzip(tmp_path):
    path = tmp_path / "b.jsonl.gz"
    path.write_bytes(b"not a gzip archive")
    one_line_error(path, "cannot read the file (BadGzipFile")


def test_bad_empty_sample_id(tmp_path):
    rows = [{"prompt": "p", "query": "q", "sample": None, "answer": "A", "gold": "A", "tokens": 1}]
    one_line_error(write_jsonl(tmp_path / "b.jsonl", rows), "line 1: column 'sample': empty id")


def test_cli_can_ignore_a_sample_column(tmp_path, capsys):
    rows = [["p", q, 0, "A", "A", 5] for q in ("q1", "q2") for _ in range(2)]  # sample not an id
    log = write_csv(tmp_path / "s.csv", MV_COLS, rows)
    assert iapo(["import", str(log), "--out", str(tmp_path / "a.npz"), "--n-max", "2"]) == 2
    assert "duplicate row" in capsys.readouterr().err
    assert iapo(["import", str(log), "--out", str(tmp_path / "a.npz"), "--n-max", "2",
                 "--sample-col", ""]) == 0
