"""Figures, REPORT.md and the deceive / complexity / figures commands."""

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest

import sim
from analysis import cli, complexity, figures, report
from analysis.progress import Progress

STEMS = ("fig1_rank_flip", "fig2_bernoulli_heatmaps", "fig3_learning_curves",
         "fig4_inference_aware", "fig5_phase_diagrams", "fig6_sample_complexity",
         "fig7_bon_tradeoff")
DATA = ("fig1_rank_flip.csv", "fig2_bernoulli_heatmaps.csv", "fig3_learning_curves.csv",
        "fig3_learning_curves_runs.json", "fig4_inference_aware.csv", "fig5_phase_diagrams.json",
        "fig6_sample_complexity.csv", "fig6_clear_gap_env.npz", "fig7_bon_tradeoff.csv",
        "summary.json")


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory):
    """``iapo figures --quick`` into a temporary directory (run once for the module)."""
    out = tmp_path_factory.mktemp("figures")
    t0 = time.perf_counter()
    rc = cli.main(["figures", "--quick", "--out", str(out), "--workers", "1"])
    elapsed = time.perf_counter() - t0
    assert rc == 0
    return out, elapsed


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_quick_run_is_fast_and_complete(quick_out):
    out, elapsed = quick_out
    assert elapsed < 60, f"iapo figures --quick took {elapsed:.1f} s"
    for stem in STEMS:
        png, pdf = out / f"{stem}.png", out / f"{stem}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
    for name in DATA:
        path = out / name
        assert path.stat().st_size > 500, name
        if name.endswith(".csv"):
            assert len(_rows(path)) >= 5, name
        elif name.endswith(".json"):
            assert json.loads(path.read_text())
    assert not list(out.glob(".*.tmp")), "temporary files left behind"
    text = (out / "REPORT.md").read_text()
    for k in range(1, 8):
        assert f"## Figure {k}" in text
    assert "## Which prompts deceive" in text and "quick" in text
    assert "nan" not in text.lower().replace("nanmean", "")


def test_fig1_data_is_the_exact_q_table(quick_out):
    out, _ = quick_out
    env = sim.load_env("math")
    q = env.q_table("all")
    rows = _rows(out / "fig1_rank_flip.csv")
    assert len(rows) == env.n_contexts * env.n_prompts * env.n_max
    names = list(env.contexts.names)
    for row in rows[::97]:
        c, p, n = names.index(row["context"]), env.prompt_names.index(row["prompt"]), int(row["N"])
        assert float(row["Q"]) == pytest.approx(q[c, p, n - 1], rel=1e-9)
        assert float(row["total_cost"]) == pytest.approx(n * env.cost[p], rel=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    for c, ctx in enumerate(summary["fig1"]["contexts"]):
        assert ctx["best_value"] == pytest.approx(q[c].max())
        assert ctx["disjoint_value"] <= ctx["best_value"]


def test_fig2_data_matches_closed_forms(quick_out):
    out, _ = quick_out
    rows = {(round(float(r["theta"]), 3), int(r["N"])): r
            for r in _rows(out / "fig2_bernoulli_heatmaps.csv")}
    # theory.md Sec. 10 item 1: Acc(0.6, K) = 0.6, 0.648, 0.6826 at K = 1, 3, 5; even K ties
    assert float(rows[(0.6, 3)]["mv"]) == pytest.approx(0.648)
    assert float(rows[(0.6, 4)]["mv"]) == pytest.approx(0.648)
    assert float(rows[(0.6, 5)]["mv"]) == pytest.approx(0.68256)
    assert float(rows[(0.4, 10)]["bon"]) == pytest.approx(1 - 0.6**10)
    summary = json.loads((out / "summary.json").read_text())
    # the paper's two-query example: ~0.63 vs ~0.77 at N = 10
    assert summary["fig2"]["toy_prompt1_n10"] == pytest.approx(0.6328, abs=1e-4)
    assert summary["fig2"]["toy_prompt2_n10"] == pytest.approx(0.7738, abs=1e-4)


def test_fig3_fig4_consistent_with_runs(quick_out):
    out, _ = quick_out
    summary = json.loads((out / "summary.json").read_text())
    raw = json.loads((out / "fig3_learning_curves_runs.json").read_text())
    for env_name, e in summary["fig3"].items():
        for ln, per in e["learners"].items():
            for bi, p in enumerate(per):
                vals = [v for v in raw[env_name]["acr"][ln][bi] if v is not None]
                if p["acr"] is None:
                    assert not vals
                else:
                    assert p["acr"] == pytest.approx(np.mean(vals))
    rows = _rows(out / "fig4_inference_aware.csv")
    assert {r["aware"] for r in rows} == set(figures.AWARE)
    assert {r["agnostic"] for r in rows} == set(figures.AGNOSTIC)
    for r in rows:
        a, b = float(r["acr_aware"]), float(r["acr_agnostic"])
        assert float(r["gain_pct"]) == pytest.approx(100 * (a - b) / abs(b))


def test_fig6_counts_and_bounds(quick_out):
    out, _ = quick_out
    env = sim.load_env(str(out / "fig6_clear_gap_env.npz"))
    thm = complexity.theorem1(env.q_table("test"))
    for r in _rows(out / "fig6_sample_complexity.csv"):
        k, n = int(r["errors"]), int(r["runs"])
        assert float(r["error_rate"]) == pytest.approx(k / n)
        assert float(r["cp_low"]) <= k / n <= float(r["cp_high"])
        assert float(r["theorem1_bound"]) == pytest.approx(float(thm.bound(int(r["budget"]))))
        if r["learner"] == "triple-n1":  # prompt-only deploys N = 1: wrong in every context
            assert k == n


def test_complexity_instance_has_a_deceiver():
    env = complexity.complexity_instance()
    q_train, q_test = env.q_table("train"), env.q_table("test")
    np.testing.assert_allclose(q_train, q_test)
    opt = env.optimal_arms()
    assert np.all(opt[:, 0] == 1)
    assert np.all(q_test[:, :, 0].argmax(axis=1) == 0)  # prompt 0 wins at N = 1 everywhere


def test_tradeoff_pair_reverses_preference():
    # prompt 2 best under 'hi', prompt 0 best under 'lo'; prompt 1 in between
    hi = np.array([[1.0, 1.1], [2.0, 2.1], [3.0, 3.2]])
    lo = np.array([[3.0, 3.3], [2.0, 2.0], [1.0, 1.0]])
    assert figures._tradeoff_pair(hi, lo) == (2, 0)


def test_write_text_is_atomic(tmp_path):
    path = tmp_path / "a.txt"
    figures.write_text(path, "first")
    with pytest.raises(RuntimeError), figures._atomic(path) as fh:
        fh.write("partial")
        raise RuntimeError("interrupted")
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_json_handles_numpy_and_non_finite(tmp_path):
    path = figures.write_json(tmp_path / "x.json",
                              {"a": np.arange(3), "b": np.float64(np.inf), "c": (np.int64(2),)})
    assert json.loads(path.read_text()) == {"a": [0, 1, 2], "b": None, "c": [2]}


def test_report_renders_from_summary(quick_out):
    out, _ = quick_out
    facts = json.loads((out / "summary.json").read_text())
    text = report.render(facts)
    assert text == (out / "REPORT.md").read_text()
    assert "| context | best at N=1 (Q)" in text


def test_progress_line():
    class Sink:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    sink = Sink()
    prog = Progress(label="runs", prefix="math ", stream=sink, log_every=0.0)
    prog(5, 10)
    prog(10, 10)
    lines = sink.text.strip().splitlines()
    assert lines[0].startswith("math [") and " 5/10 runs  50% " in lines[0] and "ETA" in lines[0]
    assert " 10/10 runs 100% " in lines[-1] and "runs/s" in lines[-1]


# ---------------------------------------------------------------------------- CLI
def test_deceive_command(capsys):
    assert cli.main(["deceive", "math", "--top", "1"]) == 0
    text = capsys.readouterr().out
    assert "context low (cost weight 0): best at N=1 p1" in text
    assert "the N=1 winner p1 deceives" in text
    assert "N -> infinity without cost" in text


def test_complexity_command_theory_only(capsys, tmp_path):
    path = sim.save_env(complexity.complexity_instance(), tmp_path / "inst.npz")
    assert cli.main(["complexity", str(path), "--runs", "0"]) == 0
    text = capsys.readouterr().out
    thm = complexity.theorem1(complexity.complexity_instance().q_table("test"))
    assert f"H1 = {thm.h1:.6g}" in text and f"H2 = {thm.h2:.6g}" in text


def test_complexity_command_measures(capsys, tmp_path):
    path = sim.save_env(complexity.complexity_instance(), tmp_path / "inst.npz")
    argv = ["complexity", str(path), "--runs", "4", "--budgets", "2000", "--learners", "psst",
            "triple-n1"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "triple-n1" in text and "1.000 [0.398, 1.000]" in text  # 4/4 errors, exact CP
    assert "> max budget (2000)" in text


@pytest.mark.parametrize("argv", [
    ["figures", "--runs", "0"],
    ["figures", "--workers", "0"],
    ["complexity", "math", "--delta", "2"],
    ["complexity", "math", "--budgets", "-5"],
    ["deceive", "no-such-env"],
    ["deceive", "math", "--top", "-1"],
])
def test_bad_input_is_one_line_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err


def test_learner_runs_identical_with_worker_processes():
    from analysis.executors import LocalExecutor

    # a parallel (OpenMP) Numba kernel in this process before the workers start
    sim.mv_accuracy(np.full((64, 3), 1 / 3), 0, 5)
    args = (["math"], ["psst", "triple-n1"], [2000], 3)
    with LocalExecutor(2) as pool:
        par = figures.run_learners(*args, executor=pool)
    ser = figures.run_learners(*args)
    for res in (par, ser):
        res["math"].pop("seconds")
    assert par == ser


def test_figures_output_dir_is_created(tmp_path):
    target = Path(tmp_path) / "deep" / "dir"
    figures.fig_bernoulli_heatmaps(target, n_max=8, n_theta=11)
    assert (target / "fig2_bernoulli_heatmaps.png").exists()
