"""``iapo sweep SPEC.toml --out RESULTS``: run a sweep, resumable, locally or on Dask."""

from __future__ import annotations

import argparse
import json
import sys

from .executors import add_executor_options, executor_from_args
from .progress import Progress
from .store import ResultStore
from .sweep import (
    DEFAULT_CELL,
    cell_name,
    format_summary,
    load_spec,
    resolve_cell,
    run_sweep,
    summarize,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        description="Run every cell of a TOML sweep spec, storing each finished cell in an "
                    "SQLite results file. Rerunning the same command resumes after a crash.")
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec (TOML)")
    p.add_argument("--out", required=True, metavar="RESULTS",
                   help="results store (SQLite file), created or resumed")
    add_executor_options(p)
    p.add_argument("--restart", action="store_true",
                   help="discard the results in RESULTS (even of another spec) and start over")
    p.add_argument("--chunksize", type=int, default=None, metavar="N",
                   help="cells per task (default: about 32 tasks per worker, at most 64 cells)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # For tests and cluster smoke tests: another cell function, MODULE:FUNCTION.
    p.add_argument("--cell", default=DEFAULT_CELL, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.chunksize is not None and args.chunksize < 1:
        raise ValueError(f"--chunksize must be an integer >= 1; got {args.chunksize}")
    spec = load_spec(args.spec)
    cell_fn = resolve_cell(args.cell)
    # The executor first: local workers must not inherit the store's file descriptors.
    with executor_from_args(args) as executor, \
            ResultStore(args.out, spec.hash(cell_name(cell_fn)), _spec_text(spec),
                        restart=args.restart) as store:
        total, done = len(spec.cells()), len(store)
        print(f"sweep {spec.name!r}: {total} cells, {done} already in {args.out}, "
              f"running on {executor!r}", file=sys.stderr)
        progress = None if args.quiet else Progress(total, initial=done)
        try:
            result = run_sweep(spec, store, executor=executor, cell_fn=cell_fn,
                               progress=progress, chunksize=args.chunksize)
        finally:
            if progress is not None:
                progress.close()
        print(f"computed {result.computed} cells in {result.seconds:.1f} s "
              f"({result.skipped} resumed from {args.out})", file=sys.stderr)
        print(format_summary(summarize(spec, store)))
    return 0


def _spec_text(spec) -> str:
    return json.dumps({"name": spec.name, **spec.canonical()}, sort_keys=True)
