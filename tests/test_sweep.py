"""Sweeps: spec validation, the engine, executors (local processes and Dask), crash and resume.

The engine takes the cell function as a parameter; these tests use cheap deterministic cell
functions that draw from the cell's seed (:func:`seeded_cell`), so they check the engine's
plumbing — keys, seeds, storage, resume — independently of the learners.
"""

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from analysis.cli import main
from analysis.executors import DaskExecutor, LocalExecutor, default_chunksize
from analysis.progress import Progress
from analysis.seeds import learner_seed
from analysis.store import ResultStore, load_results
from analysis.sweep import (
    CellError,
    cell_name,
    format_summary,
    learner_key,
    load_spec,
    parse_spec,
    run_sweep,
    summarize,
)
from sim import load_env
from sim.learners import make

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- cell functions


def seeded_cell(env, learner, params, budget, replicate, seed):
    """A cheap stand-in for ``run_cell``: metrics drawn from the cell's own seed stream."""
    key = learner_key(learner, params)
    gen = np.random.default_rng(learner_seed(seed, env, replicate, key, budget))
    return {"relative": float(gen.random()), "acr": float(gen.normal()),
            "spent": int(gen.integers(budget + 1)), "choice": gen.integers(0, 9, (3, 2)).tolist()}


def slow_cell(env, learner, params, budget, replicate, seed):
    """:func:`seeded_cell` after a pause of ``$IAPO_TEST_CELL_SLEEP`` seconds (kill tests)."""
    time.sleep(float(os.environ.get("IAPO_TEST_CELL_SLEEP", "0.01")))
    return seeded_cell(env, learner, params, budget, replicate, seed)


_FLAKY = {"calls": 0, "fail_at": None}


def flaky_cell(*args):
    """:func:`seeded_cell` that raises on call number ``_FLAKY["fail_at"]`` (a crash mid-sweep)."""
    _FLAKY["calls"] += 1
    if _FLAKY["fail_at"] is not None and _FLAKY["calls"] >= _FLAKY["fail_at"]:
        raise RuntimeError("simulated crash")
    return seeded_cell(*args)


# ----------------------------------------------------------------------------- specs


def _toml_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v)  # strings, ints, floats, booleans share JSON's spelling in TOML


def _toml(fields: dict) -> str:
    return "\n".join(f"{k} = {_toml_value(v)}" for k, v in fields.items()) + "\n"


BASE = {
    "name": "t", "seed": 7, "environments": ["math", "synth-bernoulli"],
    "learners": ["psst", {"name": "ucb", "params": {"c": 0.2}}],
    "budgets": [2000, 5000, 10000], "replicates": 4,
}


def _spec(tmp_path, fields=None, name="spec.toml"):
    path = tmp_path / name
    path.write_text(_toml(BASE if fields is None else fields))
    return path


def test_example_spec_parses():
    spec = load_spec(os.path.join(ROOT, "examples", "sweep_math.toml"))
    assert spec.environments == ("math",) and spec.replicates == 200
    assert len(spec.cells()) == 1 * 4 * 6 * 200
    expected = [make("psst").key, make("psst-topk", k=4, rho=0.2).key, make("ucb", c=0.1).key,
                make("uniform").key]
    assert [lr.key for lr in spec.learners] == expected


def test_spec_fields_and_cells(tmp_path):
    spec = load_spec(_spec(tmp_path))
    assert spec.name == "t" and spec.seed == 7 and spec.budgets == (2000, 5000, 10000)
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 3 * 4
    assert len({c.key for c in cells}) == len(cells)
    assert cells[0].key == ("math", learner_key("psst"), 2000, 0)
    assert cells[-1].key == ("synth-bernoulli", "ucb(c=0.2)", 10000, 3)


def test_learner_key_is_the_learners_own_key():
    assert learner_key("ucb") == learner_key("ucb", {"c": 0.1}) == make("ucb").key
    assert (learner_key("psst-topk", {"rho": 0.2, "k": 4})
            == learner_key("psst-topk", {"k": 4, "rho": 0.2}) == make("psst-topk", k=4).key)
    assert learner_key("ucb", {"c": 0.1}) != learner_key("ucb", {"c": 0.2})


def test_default_name_is_file_stem(tmp_path):
    fields = {k: v for k, v in BASE.items() if k != "name"}
    assert load_spec(_spec(tmp_path, fields, "my-sweep.toml")).name == "my-sweep"


def test_hash_tracks_results_not_name(tmp_path):
    a = load_spec(_spec(tmp_path))
    b = load_spec(_spec(tmp_path, {**BASE, "name": "other"}, "b.toml"))
    c = load_spec(_spec(tmp_path, {**BASE, "budgets": [2000, 5000]}, "c.toml"))
    d = load_spec(_spec(tmp_path, {**BASE, "seed": 8}, "d.toml"))
    assert a.hash() == b.hash()
    assert len({a.hash(), c.hash(), d.hash(), a.hash("tests:other_cell")}) == 4


def _without(field):
    return {k: v for k, v in BASE.items() if k != field}


BAD_SPECS = [
    (_without("seed"), "seed: missing field"),
    (_without("environments"), "environments: missing field"),
    (_without("learners"), "learners: missing field"),
    (_without("budgets"), "budgets: missing field"),
    (_without("replicates"), "replicates: missing field"),
    ({**BASE, "budgets": [2000, -5]}, "budgets[1]: must be an integer >= 1"),
    ({**BASE, "budgets": [0]}, "budgets[0]: must be an integer >= 1"),
    ({**BASE, "budgets": [1.5]}, "budgets[0]: must be an integer"),
    ({**BASE, "budgets": [True]}, "budgets[0]: must be an integer"),
    ({**BASE, "budgets": 2000}, "budgets: must be a non-empty list"),
    ({**BASE, "budgets": []}, "budgets: must be a non-empty list"),
    ({**BASE, "budgets": [2000, 2000]}, "budgets[1]: duplicate"),
    ({**BASE, "replicates": 0}, "replicates: must be an integer >= 1"),
    ({**BASE, "replicates": "4"}, "replicates: must be an integer"),
    ({**BASE, "seed": -1}, "seed: must be an integer >= 0"),
    ({**BASE, "name": 3}, "name: must be a non-empty string"),
    ({**BASE, "environments": ["nope"]}, "environments[0]: unknown environment 'nope'"),
    ({**BASE, "environments": ["math", "math"]}, "environments[1]: duplicate"),
    ({**BASE, "environments": "math"}, "environments: must be a non-empty list"),
    ({**BASE, "budget": 3}, "budget: unknown field"),
    ({**BASE, "learners": [{"params": {"c": 1}}]}, "learners[0].name: missing field"),
    ({**BASE, "learners": [{"name": "ucb", "c": 1}]}, "learners[0].c: unknown field"),
    ({**BASE, "learners": [{"name": 5}]}, "learners[0].name: must be a string"),
    ({**BASE, "learners": [3]}, "learners[0]: must be a learner name or a table"),
    ({**BASE, "learners": [{"name": "ucb", "params": {"c": [1, 2]}}]},
     "learners[0].params.c: must be a number"),
    ({**BASE, "learners": [{"name": "ucb", "params": 2}]}, "learners[0].params: must be a table"),
    ({**BASE, "learners": ["psst", {"name": "psst"}]}, "learners[1]: duplicate"),
    ({**BASE, "learners": []}, "learners: must be a non-empty list"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SPECS,
                         ids=[m.split(":")[0] + "-" + str(i) for i, (_, m) in enumerate(BAD_SPECS)])
def test_malformed_spec_refused_naming_the_field(tmp_path, fields, message):
    with pytest.raises(ValueError) as err:
        load_spec(_spec(tmp_path, fields))
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text


def test_unknown_learner_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"^learners\[1\]\.name: unknown learner 'pst'; use one "
                                         r"of psst, "):
        parse_spec({**BASE, "learners": ["psst", "pst"]})


def test_bad_learner_params_refused_via_make():
    with pytest.raises(ValueError, match=r"^learners\[0\]\.params: .*\bc\b"):
        parse_spec({**BASE, "learners": [{"name": "ucb", "params": {"c": -1}}]})


def test_equal_learners_spelled_differently_are_duplicates():
    with pytest.raises(ValueError, match=r"^learners\[1\]: duplicate entry 'ucb\(c=0.1\)'$"):
        parse_spec({**BASE, "learners": ["ucb", {"name": "ucb", "params": {"c": 0.1}}]})


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 1\n")
    with pytest.raises(ValueError, match="^SPEC: .* is not valid TOML"):
        load_spec(bad)
    with pytest.raises(ValueError, match="^SPEC: no such file"):
        load_spec(tmp_path / "missing.toml")


@pytest.mark.parametrize(("fields", "field"), [(_without("budgets"), "budgets"),
                                               ({**BASE, "budgets": [-100]}, "budgets[0]")])
def test_cli_malformed_spec_one_line_exit_2(tmp_path, capsys, fields, field):
    code = main(["sweep", str(_spec(tmp_path, fields)), "--out", str(tmp_path / "r.sqlite")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"iapo sweep: error: {field}: ")
    assert not (tmp_path / "r.sqlite").exists()


# ----------------------------------------------------------------------------- the engine


def _rows(store):
    return [(k, m) for k, m, _ in store.rows()]


def _run(spec, executor=None, cell_fn=seeded_cell, chunksize=None):
    with ResultStore(":memory:", spec.hash(cell_name(cell_fn))) as store:
        run = run_sweep(spec, store, executor=executor, cell_fn=cell_fn, chunksize=chunksize)
        assert run.computed == run.total == len(spec.cells()) and run.skipped == 0
        return _rows(store)


def test_every_cell_once_with_its_own_seed(tmp_path):
    spec = load_spec(_spec(tmp_path))
    rows = _run(spec)
    assert [k for k, _ in rows] == sorted(c.key for c in spec.cells())
    direct = {c.key: seeded_cell(c.env, c.learner.name, c.learner.kwargs, c.budget, c.replicate,
                                 spec.seed) for c in spec.cells()}
    assert all(m == direct[k] for k, m in rows)
    assert len({m["relative"] for _, m in rows}) == len(rows)  # distinct streams per cell


def test_results_do_not_depend_on_spec_order(tmp_path):
    spec = load_spec(_spec(tmp_path))
    shuffled = {**BASE, "environments": BASE["environments"][::-1],
                "learners": BASE["learners"][::-1], "budgets": BASE["budgets"][::-1]}
    assert _run(spec) == _run(load_spec(_spec(tmp_path, shuffled, "s.toml")))


def test_local_workers_and_chunking_give_identical_results(tmp_path):
    spec = load_spec(_spec(tmp_path))
    ref = _run(spec, LocalExecutor(1))
    with LocalExecutor(2) as ex:
        assert _run(spec, ex) == ref
        assert _run(spec, ex, chunksize=1) == ref
        assert _run(spec, ex, chunksize=7) == ref


@pytest.fixture(scope="module")
def dask_address():
    """A small Dask cluster on loopback, started by the test (threads: quick to start)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       protocol="tcp", host="127.0.0.1", dashboard_address=None)
    yield cluster.scheduler_address
    cluster.close()


def test_dask_and_local_give_identical_results(tmp_path, dask_address):
    spec = load_spec(_spec(tmp_path))
    ref = _run(spec, LocalExecutor(1))
    with DaskExecutor(dask_address) as ex:
        assert ex.n_workers == 2
        assert _run(spec, ex) == ref
        assert _run(spec, ex, chunksize=5) == ref


def test_map_matches_builtin_map(dask_address):
    a, b = list(range(50)), [x * 0.5 for x in range(50)]
    expected = list(map(pow, a, b))
    with LocalExecutor(2, chunksize=3) as ex:
        assert list(ex.map(pow, a, b)) == expected
    assert list(LocalExecutor(1).map(pow, a, b)) == expected
    with DaskExecutor(dask_address, chunksize=4) as ex:
        assert list(ex.map(pow, a, b)) == expected


def test_map_yields_in_order_as_results_arrive():
    """``map`` submits at once and yields lazily: the first result is available before the
    last task finishes (a caller's progress bar moves)."""
    with LocalExecutor(2, chunksize=1) as ex:
        t0 = time.perf_counter()
        it = ex.map(time.sleep, [0.0, 0.0, 1.5, 1.5])
        next(it)
        first = time.perf_counter() - t0
        assert list(it) == [None] * 3
        assert first < 1.0 <= time.perf_counter() - t0


def test_executor_arguments_validated():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="--workers must be an integer >= 1"):
            LocalExecutor(bad)
    with pytest.raises(ValueError, match="cannot connect"):
        DaskExecutor("tcp://127.0.0.1:1", timeout=0.5)


def test_default_chunksize():
    assert default_chunksize(1000, 2) == 16  # ceil(1000 / 64)
    assert default_chunksize(10, 2) == 1
    assert default_chunksize(10**6, 2) == 64


def test_resume_after_crash_computes_only_missing_cells(tmp_path):
    spec = load_spec(_spec(tmp_path))
    path = tmp_path / "r.sqlite"
    total = len(spec.cells())
    _FLAKY.update(calls=0, fail_at=10)
    with ResultStore(path, spec.hash(cell_name(flaky_cell))) as store:
        with pytest.raises(CellError, match=r"^cell \('math', .*\) failed with RuntimeError: "
                                            r"simulated crash \(rerun it alone: "
                                            r"test_sweep:flaky_cell\('math', .*the 9 finished"):
            run_sweep(spec, store, cell_fn=flaky_cell, chunksize=4)
        assert len(store) == 9  # two whole chunks of 4, and the crashing chunk's first cell
    _FLAKY.update(calls=0, fail_at=None)
    with ResultStore(path, spec.hash(cell_name(flaky_cell))) as store:
        run = run_sweep(spec, store, cell_fn=flaky_cell, chunksize=1)
        assert (run.total, run.skipped, run.computed) == (total, 9, total - 9)
        assert _FLAKY["calls"] == total - 9
        assert _rows(store) == _run(spec)


def test_summary_mean_and_standard_error(tmp_path):
    spec = load_spec(_spec(tmp_path))
    with ResultStore(":memory:", "h") as store:
        with pytest.raises(ValueError, match="^store: bound to another spec"):
            run_sweep(spec, store, cell_fn=seeded_cell)
    with ResultStore(":memory:", spec.hash(cell_name(seeded_cell))) as store:
        run_sweep(spec, store, cell_fn=seeded_cell)
        rows = summarize(spec, store)
        vals = {}
        for k, m, _ in store.rows():
            vals.setdefault(k[:3], []).append(m["relative"])
    assert len(rows) == 2 * 2 * 3
    for r in rows:
        v = np.array(vals[(r["env"], r["learner"], r["budget"])])
        assert r["n"] == 4 and r["mean"] == pytest.approx(v.mean(), rel=1e-15)
        assert r["se"] == pytest.approx(v.std(ddof=1) / 2.0, rel=1e-12)  # sqrt(4) = 2


def test_progress_reports_done_rate_and_eta():
    out = io.StringIO()
    bar = Progress(10, initial=4, stream=out, log_every=0.0)
    for _ in range(6):
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[") and " 4/10 cells " in lines[0]
    assert " 10/10 cells 100% " in lines[-1] and "cells/s" in lines[-1] and "ETA 0:00" in lines[-1]


# ----------------------------------------------------------------------------- the command


def _cli(tmp_path, spec_path, out, *extra, sleep="0.01", timeout=120):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "tests"), ROOT]),
           "IAPO_TEST_CELL_SLEEP": sleep}
    cmd = [sys.executable, "-m", "analysis.cli", "sweep", str(spec_path), "--out", str(out),
           "--cell", "test_sweep:slow_cell", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_cli_runs_resumes_and_refuses_changed_spec(tmp_path, capsys):
    spec_path, out = _spec(tmp_path), tmp_path / "r.sqlite"
    code = main(["sweep", str(spec_path), "--out", str(out), "--workers", "1",
                 "--cell", "test_sweep:seeded_cell"])
    cap = capsys.readouterr()
    assert code == 0
    assert "48/48 cells 100%" in cap.err and "ETA" in cap.err
    assert "| math | ucb(c=0.2) | 10000 | 4 |" in cap.out and cap.out.count("\n") == 2 + 12
    # same command again: nothing to do
    assert main(["sweep", str(spec_path), "--out", str(out), "--workers", "1",
                 "--cell", "test_sweep:seeded_cell"]) == 0
    assert "computed 0 cells" in capsys.readouterr().err
    # a changed spec is refused (one line) unless --restart
    spec_path.write_text(_toml({**BASE, "replicates": 5}))
    args = ["sweep", str(spec_path), "--out", str(out), "--cell", "test_sweep:seeded_cell",
            "--workers", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different spec" in err and "--restart" in err
    assert main([*args, "--restart"]) == 0
    with ResultStore(out, load_spec(spec_path).hash("test_sweep:seeded_cell")) as store:
        assert len(store) == 60


def test_cli_on_a_dask_scheduler_matches_local(tmp_path, capsys, dask_address):
    spec_path = _spec(tmp_path)
    outs = [tmp_path / "local.sqlite", tmp_path / "dask.sqlite"]
    for out, where in zip(outs, (["--workers", "2"], ["--scheduler", dask_address]),
                          strict=True):
        assert main(["sweep", str(spec_path), "--out", str(out), *where,
                     "--cell", "test_sweep:seeded_cell"]) == 0
    assert "running on DaskExecutor(tcp://127.0.0.1:" in capsys.readouterr().err
    local, dask = (load_results(out)[1] for out in outs)
    assert len(local) == 48
    assert [(r["env"], r["learner"], r["budget"], r["replicate"], r["metrics"]) for r in local] \
        == [(r["env"], r["learner"], r["budget"], r["replicate"], r["metrics"]) for r in dask]


def test_sigkill_mid_sweep_then_rerun_has_every_cell_once(tmp_path):
    """Kill the sweep driver with SIGKILL after some cells are stored; rerun the same command."""
    fields = {**BASE, "replicates": 15}  # 180 cells, ~20 ms each
    spec_path, out = _spec(tmp_path, fields), tmp_path / "r.sqlite"
    spec = load_spec(spec_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(ROOT, "tests"), ROOT]),
           "IAPO_TEST_CELL_SLEEP": "0.02"}
    cmd = [sys.executable, "-m", "analysis.cli", "sweep", str(spec_path), "--out", str(out),
           "--cell", "test_sweep:slow_cell", "--workers", "2", "--chunksize", "2", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    stored = 0
    try:
        deadline = time.monotonic() + 60
        while stored < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
            if out.exists():
                con = sqlite3.connect(out, timeout=5)
                try:
                    stored = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0
                finally:
                    con.close()
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must not linger
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)  # any process left in the sweep's group?
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("worker processes outlived the killed driver")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    con = sqlite3.connect(out)
    partial = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    con.close()
    assert 40 <= partial < 180
    done = _cli(tmp_path, spec_path, out, "--workers", "1", sleep="0.0")
    assert done.returncode == 0, done.stderr
    assert f"({partial} resumed from" in done.stderr
    con = sqlite3.connect(out)
    keys = con.execute("SELECT env, learner, budget, replicate FROM cells").fetchall()
    con.close()
    assert len(keys) == len(set(keys)) == 180
    assert set(keys) == {c.key for c in spec.cells()}
    with ResultStore(out, spec.hash("test_sweep:slow_cell")) as store:
        assert _rows(store) == _run(spec)


# ----------------------------------------------------------------------------- the real cell


def test_real_cells_match_run_cell_and_run_replicates(tmp_path, dask_address):
    """The default cell function (analysis.evaluate.run_cell) through the engine gives exactly
    what run_cell gives directly, and what run_replicates (iapo compare / figures) gives on the
    same executors; a budget below a learner's minimum is stored as an infeasible cell."""
    from analysis import evaluate
    fields = {"seed": 7, "environments": ["math"], "learners": ["psst", "ucb"],
              "budgets": [500, 1000], "replicates": 3}
    spec = load_spec(_spec(tmp_path, fields))
    assert make("psst").min_budget(load_env("math")) > 500
    with ResultStore(":memory:", spec.hash()) as store:
        run = run_sweep(spec, store)
        assert run.computed == 12
        rows = dict(_rows(store))
        summary = {(r["learner"], r["budget"]): r for r in summarize(spec, store)}
    for c in spec.cells():
        direct = evaluate.run_cell(c.env, c.learner.name, c.learner.kwargs, c.budget,
                                   c.replicate, spec.seed)
        assert rows[c.key] == json.loads(json.dumps(direct))
        assert rows[c.key]["learner"] == c.learner.key
    psst, ucb = (lr.key for lr in spec.learners)
    assert rows[("math", psst, 500, 0)]["feasible"] is False
    assert summary[(psst, 500)]["n"] == 0 and summary[(psst, 1000)]["n"] == 3
    need = rows[("math", psst, 500, 0)]["min_budget"]
    assert summary[(psst, 500)]["min_budget"] == need > 500
    assert summary[(psst, 1000)]["min_budget"] is None
    assert f"| math | {psst} | 500 | 0 | infeasible (minimum budget {need}) |" in \
        format_summary(list(summary.values()))
    with LocalExecutor(2) as local, DaskExecutor(dask_address) as dask:
        for ex in (local, dask):
            rep = evaluate.run_replicates("math", ["psst", "ucb"], [500, 1000], 3, seed=7,
                                          executor=ex)
            for key in (psst, ucb):
                for bi, b in enumerate((500, 1000)):
                    assert rep["learners"][key]["values"]["acr"][bi] == [
                        rows[("math", key, b, r)]["acr"] for r in range(3)]


def test_workers_survive_a_driver_that_used_openmp():
    """Regression: with plain fork, a driver that had run a Numba ``parallel=True`` kernel on
    the GNU OpenMP layer killed its workers ("fork() called from a process already using GNU
    OpenMP") as soon as they ran one (a synthetic environment's exact Q table)."""
    import sim
    from analysis import evaluate
    sim.load_env("synth-bernoulli", seed=11).q_table("test")  # parallel kernel in the driver
    args = [("synth-bernoulli", "psst", {}, 2000, r, 5) for r in range(4)]
    with LocalExecutor(2, chunksize=1) as ex:
        got = list(ex.map(evaluate.run_cell, *zip(*args, strict=True)))
    assert got == [evaluate.run_cell(*a) for a in args]
