"""Sweeps: a grid of (environment, learner, budget, replicate) cells, described in TOML.

A spec (``examples/sweep_math.toml``)::

    name = "math-psst"            # optional; defaults to the file name
    seed = 0                      # the sweep seed every cell seed derives from
    environments = ["math", "commonsenseqa"]   # built-in names or paths to .npz files
    budgets = [1000, 5000, 20000] # completions
    replicates = 200

    [[learners]]
    name = "psst"

    [[learners]]
    name = "psst-topk"
    params = { k = 4, rho = 0.2 }

A learner may also be given as a bare string (``learners = ["psst", "uniform"]``).

The cell key is ``(environment, learner key, budget, replicate)`` where the learner key is the
canonical string of the learner spec (:func:`learner_key`, e.g. ``ucb(c=0.1)``).
The cell function receives the sweep seed and derives the cell's streams from the key
(:mod:`analysis.seeds`), so a cell's result is the same whatever the executor, the number of
workers, the chunking or the order cells run in — and whether it ran before or after a crash.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sim.learners import NAMES, make

from .executors import LocalExecutor, default_chunksize
from .store import ResultStore

#: The cell function used when none is given: ``run_cell(env_name, learner_name, params, budget,
#: replicate, seed) -> dict`` of plain-JSON metrics.
DEFAULT_CELL = "analysis.evaluate:run_cell"

_FIELDS = ("name", "seed", "environments", "learners", "budgets", "replicates")
_REQUIRED = ("seed", "environments", "learners", "budgets", "replicates")
_SCALAR = (bool, int, float, str)


def learner_key(name: str, params: dict | None = None) -> str:
    """Canonical string of a learner spec, e.g. ``ucb(c=0.1)``: the learner's own ``key``.

    It is ``sim.learners.make(name, **params).key`` (defaults filled in, parameters sorted), the
    string :func:`analysis.evaluate.run_cell` derives the learner's seed from, so equal learners
    get equal keys however the spec spelled them (``ucb`` and ``ucb(c=0.1)`` are one learner).
    """
    return make(name, **dict(params or {})).key


@dataclass(frozen=True)
class LearnerSpec:
    """A learner name, its parameters (``sim.learners.make(name, **params)``) and its key."""

    name: str
    params: tuple[tuple[str, object], ...] = ()
    key: str = ""

    def __post_init__(self):
        if not self.key:
            object.__setattr__(self, "key", learner_key(self.name, self.kwargs))

    @property
    def kwargs(self) -> dict:
        return dict(self.params)


class Cell(NamedTuple):
    """One cell of the grid."""

    env: str
    learner: LearnerSpec
    budget: int
    replicate: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        """``(environment, learner key, budget, replicate)``: the store's primary key."""
        return (self.env, self.learner.key, self.budget, self.replicate)


@dataclass(frozen=True)
class Spec:
    """A validated sweep spec (see the module docstring for the TOML form)."""

    name: str
    seed: int
    environments: tuple[str, ...]
    learners: tuple[LearnerSpec, ...]
    budgets: tuple[int, ...]
    replicates: int

    def cells(self) -> list[Cell]:
        """Every cell, environment × replicate × learner × budget, in spec order.

        Replicate-major, so that consecutive cells (a chunk) share one replicate environment,
        which :func:`analysis.evaluate.replicate_env` caches per worker: a synthetic
        environment is generated, and a split's Q table computed, about once per chunk rather
        than once per cell. The order changes no result.
        """
        return [Cell(e, lr, b, r) for e in self.environments for r in range(self.replicates)
                for lr in self.learners for b in self.budgets]

    def canonical(self) -> dict:
        """Everything that determines the results (not the cosmetic ``name``), as plain JSON."""
        return {
            "seed": self.seed, "environments": list(self.environments),
            "learners": [{"name": lr.name, "params": lr.kwargs, "key": lr.key}
                         for lr in self.learners],
            "budgets": list(self.budgets), "replicates": self.replicates,
        }

    def hash(self, cell: str = DEFAULT_CELL) -> str:
        """SHA-256 of the canonical spec and the cell function's name."""
        text = json.dumps({"spec": self.canonical(), "cell": cell}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------- spec parsing


def load_spec(path) -> Spec:
    """Read and validate a TOML sweep spec.

    Raises
    ------
    ValueError
        One line naming the offending field: missing or unknown fields, wrong types, unknown
        environments or learners, bad learner parameters, non-positive budgets or replicates,
        duplicates.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"SPEC: no such file {str(path)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"SPEC: {str(path)!r} is not valid TOML ({exc})") from None
    return parse_spec(data, base_dir=path.parent, default_name=path.stem)


def _int(value, field: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{field}: must be an integer >= {minimum}; got {value}")
    return value


def _list(value, field: str) -> list:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field}: must be a non-empty list; got {value!r}")
    return value


def _no_duplicates(items, field: str, shown=None) -> None:
    seen = set()
    for i, item in enumerate(items):
        if item in seen:
            label = shown[i] if shown is not None else item
            raise ValueError(f"{field}[{i}]: duplicate entry {label!r}")
        seen.add(item)


def _environment(value, field: str, base_dir) -> str:
    from sim.datasets import ENV_NAMES

    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: must be an environment name or path; got {value!r}")
    if value in ENV_NAMES:
        return value
    path = Path(value) if base_dir is None else Path(base_dir) / value
    if value.endswith(".npz") and path.is_file():
        return str(path.resolve())
    raise ValueError(f"{field}: unknown environment {value!r}; use one of {', '.join(ENV_NAMES)}"
                     " or the path of an existing .npz file")


def _learner(value, field: str) -> LearnerSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ValueError(f"{field}: must be a learner name or a table with 'name' and 'params'; "
                         f"got {value!r}")
    unknown = sorted(set(value) - {"name", "params"})
    if unknown:
        raise ValueError(f"{field}.{unknown[0]}: unknown field (a learner has 'name' and "
                         "'params')")
    if "name" not in value:
        raise ValueError(f"{field}.name: missing field")
    name = value["name"]
    if not isinstance(name, str):
        raise ValueError(f"{field}.name: must be a string; got {name!r}")
    if name not in NAMES:
        raise ValueError(f"{field}.name: unknown learner {name!r}; use one of {', '.join(NAMES)}")
    params = value.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"{field}.params: must be a table of parameters; got {params!r}")
    for k, v in params.items():
        if not isinstance(v, _SCALAR):
            raise ValueError(f"{field}.params.{k}: must be a number, boolean or string; "
                             f"got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{field}.params.{k}: must be finite; got {v!r}")
    try:
        key = make(name, **params).key
    except (TypeError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{field}.params: {msg}") from None
    return LearnerSpec(name, tuple(sorted(params.items())), key)


def parse_spec(data: dict, *, base_dir=None, default_name: str = "sweep") -> Spec:
    """Validate a spec given as a dict (the parsed TOML); see :func:`load_spec`."""
    if not isinstance(data, dict):
        raise ValueError(f"spec: must be a table; got {type(data).__name__}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field; a spec has {', '.join(_FIELDS)}")
    for field in _REQUIRED:
        if field not in data:
            raise ValueError(f"{field}: missing field")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: must be a non-empty string; got {name!r}")
    seed = _int(data["seed"], "seed", minimum=0)
    envs = tuple(_environment(v, f"environments[{i}]", base_dir)
                 for i, v in enumerate(_list(data["environments"], "environments")))
    _no_duplicates(envs, "environments")
    learners = tuple(_learner(v, f"learners[{i}]")
                     for i, v in enumerate(_list(data["learners"], "learners")))
    _no_duplicates([lr.key for lr in learners], "learners")
    budgets = tuple(_int(v, f"budgets[{i}]", minimum=1)
                    for i, v in enumerate(_list(data["budgets"], "budgets")))
    _no_duplicates(budgets, "budgets")
    replicates = _int(data["replicates"], "replicates", minimum=1)
    return Spec(name, seed, envs, learners, budgets, replicates)


# ----------------------------------------------------------------------------- the engine


def resolve_cell(ref: str = DEFAULT_CELL) -> Callable:
    """Import a cell function given as ``"module:function"``."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"--cell: expected MODULE:FUNCTION; got {ref!r}")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--cell: cannot import {ref!r} ({exc})") from None
    if not callable(fn):
        raise ValueError(f"--cell: {ref!r} is not callable")
    return fn


def cell_name(fn: Callable) -> str:
    """``"module:qualname"`` of a cell function (part of the spec hash)."""
    return f"{fn.__module__}:{fn.__qualname__}"


class CellError(ValueError):
    """A cell function raised; the message names the cell and how to rerun it alone."""


def run_cells(cell_fn: Callable, tasks: list) -> list:
    """Worker side: run ``cell_fn`` on each task ``(key, args)``; ``[(key, metrics, seconds)]``.

    ``seconds`` is the wall time of the cell function alone (the "pure" cell time). If a cell
    raises, the chunk stops there and ends with ``(key, None, "ExceptionType: message")``, so
    the cells finished before it are still stored.
    """
    out = []
    for key, args in tasks:
        t0 = time.perf_counter()
        try:
            metrics = cell_fn(*args)
        except Exception as exc:
            out.append((key, None, f"{type(exc).__name__}: {exc}".splitlines()[0]))
            break
        out.append((key, metrics, time.perf_counter() - t0))
    return out


@dataclass(frozen=True)
class SweepRun:
    """What :func:`run_sweep` did: cells in the grid, found already stored, computed now."""

    total: int
    skipped: int
    computed: int
    seconds: float


def run_sweep(spec: Spec, store: ResultStore, *, executor=None, cell_fn: Callable | None = None,
              progress=None, chunksize: int | None = None) -> SweepRun:
    """Run every cell of ``spec`` not yet in ``store``, storing results as they arrive.

    Parameters
    ----------
    spec : Spec
    store : ResultStore
        Bound to ``spec.hash(cell_name(cell_fn))``; cells already in it are skipped (resume).
    executor : LocalExecutor or DaskExecutor, optional
        Default: in this process (``LocalExecutor(1)``).
    cell_fn : callable, optional
        ``cell_fn(env, learner_name, params, budget, replicate, seed) -> dict`` of plain-JSON
        metrics; default :func:`analysis.evaluate.run_cell`. Must be importable by the workers.
    progress : object with ``update(n)``, optional
        ``progress.update(n)`` after each batch of ``n`` stored cells.
    chunksize : int, optional
        Cells per task; default :func:`analysis.executors.default_chunksize`.

    Raises
    ------
    CellError
        If a cell function raises (every cell finished before is stored).
    """
    t0 = time.perf_counter()
    cell_fn = resolve_cell() if cell_fn is None else cell_fn
    if store.spec_hash != spec.hash(cell_name(cell_fn)):
        raise ValueError("store: bound to another spec or cell function; open it with "
                         "spec.hash(cell_name(cell_fn))")
    executor = LocalExecutor(1) if executor is None else executor
    cells = spec.cells()
    done = store.done_keys()
    tasks = [(c.key, (c.env, c.learner.name, c.learner.kwargs, c.budget, c.replicate, spec.seed))
             for c in cells if c.key not in done]
    size = chunksize or default_chunksize(len(tasks), executor.n_workers)
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    args_of = dict(tasks)
    computed = 0
    for results in executor.as_completed(functools.partial(run_cells, cell_fn), chunks):
        finished = [r for r in results if r[1] is not None]
        store.put_many(finished)  # one transaction for the cells that arrived together
        computed += len(finished)
        if progress is not None:
            progress.update(len(finished))
        if len(finished) < len(results):
            key, _, error = results[-1]
            call = f"{cell_name(cell_fn)}{args_of[key]!r}"
            raise CellError(f"cell {key} failed with {error} (rerun it alone: {call}); "
                            f"the {len(store)} finished cells are stored, rerun the sweep to "
                            "resume")
    return SweepRun(len(cells), len(cells) - len(tasks), computed, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- reporting


def summarize(spec: Spec, store: ResultStore, metric: str = "relative") -> list[dict]:
    """Mean and standard error of ``metric`` per environment × learner × budget, spec order.

    SE is the sample standard deviation (ddof = 1) over replicates divided by sqrt(n); it is NaN
    for a single replicate. Cells without a value of ``metric`` (missing or ``None``, e.g. a
    budget below the learner's minimum) are left out; ``n`` counts the cells that have one, and
    ``min_budget`` is the learner's minimum where the budget was below it (else ``None``).
    """
    values: dict[tuple, list[float]] = {}
    minimum: dict[tuple, int] = {}  # cells below the learner's minimum budget
    for (env, lkey, budget, _), metrics, _secs in store.rows():
        if metrics.get("feasible") is False:
            minimum[(env, lkey, budget)] = int(metrics.get("min_budget", -1))
        if metrics.get(metric) is not None:  # None: an infeasible or undefined cell
            values.setdefault((env, lkey, budget), []).append(float(metrics[metric]))
    rows = []
    for env in spec.environments:
        for lr in spec.learners:
            for b in spec.budgets:
                v = np.asarray(values.get((env, lr.key, b), []), dtype=np.float64)
                se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else math.nan
                rows.append({"env": env, "learner": lr.key, "budget": b, "n": int(v.size),
                             "mean": float(v.mean()) if v.size else math.nan, "se": float(se),
                             "min_budget": minimum.get((env, lr.key, b))})
    return rows


def format_summary(rows: list[dict], metric: str = "relative ACR") -> str:
    """The summary as a Markdown table."""
    lines = [f"| environment | learner | budget | n | {metric} (mean ± SE) |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        se = "–" if math.isnan(r["se"]) else f"{r['se']:.4f}"
        if r["n"] == 0 and r.get("min_budget") is not None:
            cell = f"infeasible (minimum budget {r['min_budget']})"
        else:
            cell = "–" if math.isnan(r["mean"]) else f"{r['mean']:.4f} ± {se}"
        env = Path(r["env"]).name if r["env"].endswith(".npz") else r["env"]
        lines.append(f"| {env} | {r['learner']} | {r['budget']} | {r['n']} | {cell} |")
    return "\n".join(lines)
