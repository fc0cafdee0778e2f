"""The sweep results store: atomic rows, no duplicates, spec binding, locking, crash safety."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from analysis.store import ResultStore


def _metrics(key):
    """A deterministic, non-trivial payload for a key (so a torn row could not pass as whole)."""
    env, learner, budget, rep = key
    return {"relative": budget * 1e-4 + rep * 1e-7, "acr": rep / 3.0, "label": f"{env}/{learner}",
            "choice": [[rep % 5, budget % 7]] * 20}


def test_roundtrip_and_reopen(tmp_path):
    path = tmp_path / "r.sqlite"
    keys = [("math", "psst", b, r) for b in (10, 20) for r in range(3)]
    with ResultStore(path, "h1", "spec") as store:
        assert len(store) == 0 and store.done_keys() == set()
        for k in keys:
            store.put(k, _metrics(k), 0.5)
    with ResultStore(path, "h1") as store:
        assert store.done_keys() == set(keys)
        rows = list(store.rows())
        assert [k for k, _, _ in rows] == sorted(keys)
        assert all(m == _metrics(k) and s == 0.5 for k, m, s in rows)
        assert store.spec_text == "spec"


def test_floats_roundtrip_bit_identically(tmp_path):
    values = [0.1, 1 / 3, 2.0**-1074, 1e308, -0.0, 0.30000000000000004]
    with ResultStore(tmp_path / "r.sqlite", "h") as store:
        for i, v in enumerate(values):
            store.put(("e", "l", 1, i), {"x": v}, 0.0)
        back = [m["x"] for _, m, _ in store.rows()]
    assert [v.hex() for v in back] == [v.hex() for v in values]


def test_duplicate_cell_refused(tmp_path):
    with ResultStore(tmp_path / "r.sqlite", "h") as store:
        store.put(("e", "l", 1, 0), {"x": 1}, 0.0)
        with pytest.raises(ValueError, match="already in the store"):
            store.put(("e", "l", 1, 0), {"x": 2}, 0.0)
        assert [m for _, m, _ in store.rows()] == [{"x": 1}]
        store.put(("e", "l", 1, 1), {"x": 3}, 0.0)  # the store is still usable
        assert len(store) == 2


def test_put_many_is_all_or_nothing(tmp_path):
    keys = [("e", "l", 1, r) for r in range(4)]
    with ResultStore(tmp_path / "r.sqlite", "h") as store:
        store.put_many([(k, _metrics(k), 0.1) for k in keys[:2]])
        batch = [(k, _metrics(k), 0.1) for k in keys[2:]] + [(keys[0], {"x": 0}, 0.1)]
        with pytest.raises(ValueError, match=r"cell \('e', 'l', 1, 0\) is already in the store"):
            store.put_many(batch)
        assert store.done_keys() == set(keys[:2])  # keys[2:] rolled back with the duplicate
        store.put_many(batch[:-1])
        assert store.done_keys() == set(keys)


def test_changed_spec_refused_unless_restart(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path, "hash-a") as store:
        store.put(("e", "l", 1, 0), {"x": 1}, 0.0)
    with pytest.raises(ValueError, match="different spec.*--restart") as err:
        ResultStore(path, "hash-b")
    assert "\n" not in str(err.value)
    with ResultStore(path, "hash-a") as store:  # still intact after the refusal
        assert len(store) == 1
    with ResultStore(path, "hash-b", restart=True) as store:
        assert len(store) == 0
    with ResultStore(path, "hash-b") as store:
        assert len(store) == 0


def test_not_a_store_refused(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="not a sweep results store"):
        ResultStore(junk, "h")
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="not a sweep store"):
        ResultStore(other, "h")


def test_second_writer_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path, "h"):
        with pytest.raises(ValueError, match="in use by another running sweep"):
            ResultStore(path, "h")
    with ResultStore(path, "h"):  # released on close
        pass


def test_wal_mode_and_memory_store(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path, "h"):
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with ResultStore(":memory:", "h") as store:
        store.put(("e", "l", 1, 0), {"x": 1}, 0.0)
        assert len(store) == 1


_WRITER = textwrap.dedent("""
    import sys
    sys.path[:0] = [{root!r}, {tests!r}]
    from analysis.store import ResultStore
    from test_store import _metrics
    with ResultStore({path!r}, "h") as store:
        done = store.done_keys()
        for i in range(10**9):
            key = ("math", "psst", 100 + i % 7, i)
            if key not in done:
                store.put(key, _metrics(key), 0.001)
""")


def test_sigkill_leaves_whole_rows_only(tmp_path):
    """Kill a writer at arbitrary moments, three times: every stored row is whole and correct,
    the database is intact, and writing resumes where it stopped."""
    path = str(tmp_path / "r.sqlite")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _WRITER.format(root=root, tests=os.path.join(root, "tests"), path=path)
    seen = 0
    for target in (150, 400, 700):
        proc = subprocess.Popen([sys.executable, "-c", code])
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.02)
                if not os.path.exists(path):
                    continue
                con = sqlite3.connect(path, timeout=5)
                try:
                    n = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
                except sqlite3.OperationalError:  # table not created yet
                    n = 0
                finally:
                    con.close()
                if n >= target:
                    break
            assert proc.poll() is None, "the writer died on its own"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        with ResultStore(path, "h") as store:
            rows = list(store.rows())
        keys = [k for k, _, _ in rows]
        assert len(keys) == len(set(keys)) >= max(target, seen)
        assert {k[3] for k in keys} == set(range(len(keys)))  # a prefix: no gap, nothing lost
        assert all(m == _metrics(k) for k, m, _ in rows)
        assert all(json.dumps(m) for _, m, _ in rows)
        seen = len(keys)


def test_load_results_reads_while_the_store_is_open(tmp_path):
    from analysis.store import load_results

    path = tmp_path / "r.sqlite"
    keys = [("math", "psst", 10, r) for r in range(3)]
    with ResultStore(path, "h", json.dumps({"seed": 1})) as store:
        for k in keys[:2]:
            store.put(k, _metrics(k), 0.25)
        spec, rows = load_results(path)  # a reader alongside the running writer
        assert spec == {"seed": 1}
        assert [(r["env"], r["learner"], r["budget"], r["replicate"]) for r in rows] == keys[:2]
        assert rows[1]["metrics"] == _metrics(keys[1]) and rows[1]["seconds"] == 0.25
    with pytest.raises(ValueError, match="no results store"):
        load_results(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk"
    junk.write_bytes(b"x" * 4096)
    with pytest.raises(ValueError, match="not a sweep results store"):
        load_results(junk)
