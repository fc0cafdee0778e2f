"""``iapo compare ENV --learners ... --budgets ... --runs R``: learning curves, exactly scored.

Prints one row per learner and one column per budget: mean ± standard error over replicates of
the chosen metric (default: ACR relative to the oracle), ``–`` where the budget is below the
learner's minimum. Cells run on the sweep engine's executors (``--workers N`` local processes,
``--dask-workers N`` or ``--scheduler ADDRESS`` for Dask); results do not depend on which.
``--json PATH`` also writes the full :func:`analysis.evaluate.run_replicates` result
(including every replicate's value).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sim.learners import NAMES

from .evaluate import METRICS, run_replicates
from .executors import add_executor_options, executor_from_args
from .progress import Progress


def _parse_learner(text: str):
    """``name`` or ``name:key=value:key=value`` (values parsed as int, float, bool or str)."""
    name, *items = text.split(":")
    params = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--learners: expected name:key=value, got {text!r}")
        k, v = item.split("=", 1)
        params[k] = _value(v)
    return name, params


def _value(v: str):
    if v in ("True", "true"):
        return True
    if v in ("False", "false"):
        return False
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _split(values):
    return [v for item in values for v in item.split(",") if v]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", description="Learning curves of learners on an environment, scored exactly "
        "from the test split's Q table: mean ± standard error over replicates per learner and "
        "budget ('–' where a budget is below the learner's minimum).")
    p.add_argument("env", help="built-in name or path to an .npz environment file")
    p.add_argument("--learners", nargs="+", default=["psst", "psst-k4", "ucb", "uniform"],
                   help=f"names or name:key=value (names: {', '.join(NAMES)}); 'all' for all")
    p.add_argument("--budgets", nargs="+", default=["1000", "5000", "20000"],
                   help="training budgets in completions (space or comma separated)")
    p.add_argument("--runs", type=int, default=20, help="replicates per cell (default 20)")
    p.add_argument("--seed", type=int, default=0, help="sweep seed (default 0)")
    add_executor_options(p, workers_default="1")
    p.add_argument("--metric", default="relative", choices=METRICS)
    p.add_argument("--json", type=Path, default=None, help="also write the full result here")
    p.set_defaults(func=run)


def format_table(result: dict, metric: str) -> str:
    budgets = result["budgets"]
    width = max(len(k) for k in result["learners"])
    head = f"{'learner':<{width}}" + "".join(f"{'T=' + str(b):>20}" for b in budgets)
    lines = [head]
    for key, rec in result["learners"].items():
        cells = []
        for mean, se in zip(rec["mean"][metric], rec["se"][metric], strict=True):
            if mean is None:
                cells.append(f"{'–':>20}")
            else:
                se_txt = f" ± {se:.4f}" if se is not None else ""
                cells.append(f"{mean:.4f}{se_txt}".rjust(20))
        lines.append(f"{key:<{width}}" + "".join(cells))
    return "\n".join(lines)


def run(args) -> int:
    names = _split(args.learners)
    learners = list(NAMES) if names == ["all"] else [_parse_learner(t) for t in names]
    try:
        budgets = [int(b) for b in _split(args.budgets)]
    except ValueError:
        raise ValueError(f"--budgets must be integers; got {args.budgets}") from None
    if args.json is not None and args.json.is_dir():
        raise ValueError(f"--json: {str(args.json)!r} is a directory; give a file path")
    t0 = time.perf_counter()

    with executor_from_args(args, default_workers=1) as executor:
        result = run_replicates(args.env, learners, budgets, args.runs, seed=args.seed,
                                executor=executor,
                                progress=Progress(label="runs"))
    print(f"{args.env}: mean {args.metric} ± standard error over {args.runs} replicates "
          f"(seed {args.seed}, {time.perf_counter() - t0:.1f} s)")
    print(format_table(result, args.metric))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0
