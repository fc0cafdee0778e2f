"""The results store of a sweep: one SQLite file in WAL mode, one row per finished cell.

Why SQLite (WAL) rather than atomically renamed Parquet parts
-------------------------------------------------------------
* **Atomic per cell, for free.** Cells are ``INSERT``-ed in a transaction as they arrive (one
  transaction per batch that a worker returns together). SQLite's journal guarantees that a
  process killed at any instant (SIGKILL, OOM killer, power cut) leaves each transaction
  entirely stored or not at all: whole rows only, no half-written file to detect and clean up.
  Parquet would need one file per cell (thousands of tiny files, slow to list and read back) or
  batched parts (then a kill loses the unflushed batch and "written as it completes" no longer
  holds).
* **No duplicates by construction.** The primary key is the cell key (environment, learner spec,
  budget, replicate): the database itself refuses a second row for a cell, whatever the engine
  does. With part files, uniqueness would be a convention checked on read.
* **Resume is one query** (``SELECT`` of the finished keys), and the spec hash lives in the same
  file as the rows it describes, so results can never be paired with the wrong spec.
* **No new dependency** (``sqlite3`` is in the standard library) and the file opens in any
  SQLite tool or ``pandas.read_sql``.
* Rows are small (a handful of numbers per cell), so a row store fits; results are written by one
  process (the driver) while workers only compute, so SQLite's single-writer model costs nothing.

WAL mode lets readers (e.g. a notebook watching a running sweep) read while the sweep writes.
``synchronous=NORMAL`` is used: in WAL mode a committed transaction survives any crash of the
process; only an operating-system crash or power loss may roll back the last few commits, and
the rolled-back cells are then simply recomputed on resume (still never half a row, never two).
An exclusive ``flock`` on the database file stops two sweeps from writing one store at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

try:  # POSIX only; elsewhere the single-writer rule is the user's responsibility
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: Version of the table layout below; a store with another version is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    env       TEXT    NOT NULL,
    learner   TEXT    NOT NULL,
    budget    INTEGER NOT NULL,
    replicate INTEGER NOT NULL,
    metrics   TEXT    NOT NULL,  -- JSON object of the cell function's plain metrics
    seconds   REAL    NOT NULL,  -- wall time of the cell function alone
    PRIMARY KEY (env, learner, budget, replicate)
) WITHOUT ROWID;
"""


class ResultStore:
    """A crash-safe store of cell results bound to one sweep spec.

    Parameters
    ----------
    path : str or path-like
        The SQLite file (created if missing), or ``":memory:"`` for a throw-away store.
    spec_hash : str
        Hash of the sweep spec (and cell function) whose results the store holds.
    spec_text : str, optional
        Human-readable canonical spec, kept in the store for reference.
    restart : bool
        Discard whatever the store holds (results of this or another spec) and start over.

    Raises
    ------
    ValueError
        If the file holds a different spec (and ``restart`` is false), is not a results store,
        has another schema version, or is in use by another running sweep.
    """

    def __init__(self, path, spec_hash: str, spec_text: str = "", *, restart: bool = False):
        self.path = str(path)
        memory = self.path == ":memory:"
        self._lock_fd = None
        if not memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _lock(self.path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if not memory:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":  # e.g. a file system without shared memory
                    raise ValueError(f"--out: cannot put {self.path!r} in WAL mode (got {mode})")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._bind(spec_hash, spec_text, restart)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ValueError(f"--out: {self.path!r} is not a sweep results store ({exc})") from None
        except BaseException:
            self.close()
            raise

    def _bind(self, spec_hash: str, spec_text: str, restart: bool) -> None:
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and not tables >= {"meta", "cells"}:
            raise ValueError(f"--out: {self.path!r} is an SQLite file but not a sweep store")
        db.execute("BEGIN IMMEDIATE")
        try:
            if restart:
                db.execute("DROP TABLE IF EXISTS cells")
                db.execute("DROP TABLE IF EXISTS meta")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            meta = dict(db.execute("SELECT key, value FROM meta"))
            if not meta:
                db.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("schema_version", str(SCHEMA_VERSION)), ("spec_hash", spec_hash),
                    ("spec", spec_text)])
            elif int(meta.get("schema_version", -1)) != SCHEMA_VERSION:
                raise ValueError(f"--out: {self.path!r} has store schema version "
                                 f"{meta.get('schema_version')}; this iapo reads {SCHEMA_VERSION}")
            elif meta.get("spec_hash") != spec_hash:
                raise ValueError(
                    f"--out: {self.path!r} holds results of a different spec (hash "
                    f"{meta.get('spec_hash', '?')[:12]}, this spec {spec_hash[:12]}); pass "
                    "--restart to discard them or choose another --out")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def done_keys(self) -> set[tuple[str, str, int, int]]:
        """Keys ``(env, learner, budget, replicate)`` of every stored cell."""
        return set(self._db.execute("SELECT env, learner, budget, replicate FROM cells"))

    def put(self, key, metrics: dict, seconds: float) -> None:
        """Store one finished cell atomically (its own transaction); see :meth:`put_many`."""
        self.put_many([(key, metrics, seconds)])

    def put_many(self, cells) -> None:
        """Store finished cells ``(key, metrics, seconds)`` in one transaction: all or none.

        The sweep engine calls this once per batch of cells that arrive together (a chunk
        returned by a worker), so a commit's cost is shared by the batch.

        Raises
        ------
        ValueError
            If a cell is already stored (the primary key forbids duplicates); nothing of the
            batch is stored then.
        """
        db = self._db
        db.execute("BEGIN")
        try:
            for key, metrics, seconds in cells:
                env, learner, budget, replicate = key
                try:
                    db.execute("INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?)",
                               (env, learner, int(budget), int(replicate),
                                json.dumps(metrics, sort_keys=True), float(seconds)))
                except sqlite3.IntegrityError:
                    raise ValueError(f"cell {key} is already in the store {self.path!r}") from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def rows(self):
        """Every stored cell as ``(key, metrics, seconds)``, ordered by key."""
        cur = self._db.execute("SELECT env, learner, budget, replicate, metrics, seconds "
                               "FROM cells ORDER BY env, learner, budget, replicate")
        for env, learner, budget, rep, text, secs in cur:
            yield (env, learner, budget, rep), json.loads(text), secs

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]

    @property
    def spec_hash(self) -> str:
        return self._db.execute("SELECT value FROM meta WHERE key = 'spec_hash'").fetchone()[0]

    @property
    def spec_text(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'spec'").fetchone()
        return row[0] if row else ""

    def close(self) -> None:
        """Close the database, then release the lock (in that order: see :func:`_lock`)."""
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _lock(path: str):
    """Take an exclusive ``flock`` on the database file, held until :meth:`ResultStore.close`.

    ``flock`` locks are independent of the POSIX record locks SQLite uses on Linux, but closing
    any descriptor of the file drops the process's POSIX locks, so this descriptor is closed only
    after the SQLite connection.
    """
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ValueError(f"--out: {path!r} is in use by another running sweep") from None
    return fd


def load_results(path) -> tuple[dict, list[dict]]:
    """Read a results store without binding to a spec (read-only; safe while a sweep runs).

    Returns
    -------
    spec : dict
        The canonical spec the store was made for (``{}`` if not recorded).
    rows : list of dict
        One per stored cell, ordered by key: ``env, learner, budget, replicate, seconds`` and
        the cell's metrics under ``metrics``.

    Raises
    ------
    ValueError
        If ``path`` does not exist or is not a results store.
    """
    if not Path(path).is_file():
        raise ValueError(f"path: no results store at {str(path)!r}")
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            cur = db.execute("SELECT env, learner, budget, replicate, seconds, metrics FROM cells "
                             "ORDER BY env, learner, budget, replicate")
            rows = [{"env": e, "learner": lr, "budget": b, "replicate": r, "seconds": s,
                     "metrics": json.loads(m)} for e, lr, b, r, s, m in cur]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"path: {str(path)!r} is not a sweep results store ({exc})") from None
    spec = json.loads(meta["spec"]) if meta.get("spec") else {}
    return spec, rows
