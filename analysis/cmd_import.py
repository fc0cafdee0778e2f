"""``iapo import LOGFILE --out ENVFILE``: an environment file from a log of sampled completions.

The log has one row per completion (see :mod:`sim.samples` for the columns); the result is an
``.npz`` environment file that every ``iapo`` subcommand accepts in place of a built-in name.
Warnings (pairs with fewer samples than N_max, dropped queries) are printed as
``iapo import: warning: ...`` lines on stderr; an error is one line and exit code 2, and then
nothing is written (an existing output file is left untouched).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import sim
from sim.samples import FORMATS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import",
        description="Build an .npz environment from a CSV / TSV / JSON Lines / Parquet log with "
                    "one row per completion (prompt, query, answer + gold or score_* columns, "
                    "tokens).")
    p.add_argument("log", metavar="LOGFILE", help="the sample log (.csv, .tsv, .jsonl, .ndjson, "
                   ".parquet; optionally .gz)")
    p.add_argument("--out", required=True, metavar="ENVFILE", help="environment file to write "
                   "(.npz); written only if the whole import succeeds")
    p.add_argument("--kind", choices=("mv", "bon"), default=None,
                   help="majority vote or best of N (default: inferred from the columns)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default=None,
                   help="log format (default: from the file suffix)")
    for col in ("prompt", "query", "answer", "gold", "tokens"):
        p.add_argument(f"--{col}-col", default=col, metavar="NAME",
                       help=f"{col} column (default {col!r})")
    p.add_argument("--sample-col", default="sample", metavar="NAME",
                   help="optional completion-id column; repeated (prompt, query, sample) rows are "
                        "an error (default 'sample'; '' to ignore such a column)")
    p.add_argument("--objectives", default=None, metavar="COL,COL,...",
                   help="best of N: comma-separated objective columns, in order (default: every "
                        "column starting with --objective-prefix)")
    p.add_argument("--objective-prefix", default="score_", metavar="PREFIX",
                   help="best of N: prefix of the objective columns (default 'score_')")
    p.add_argument("--casefold", action="store_true",
                   help="majority vote: compare answers case-insensitively")
    p.add_argument("--alpha", type=float, default=0.0,
                   help="additive smoothing pseudo-count per category (default 0)")
    p.add_argument("--cost-scale", type=float, default=None, metavar="PER_TOKEN",
                   help="cost of one completion = PER_TOKEN x mean tokens (default: scaled so the "
                        "most expensive prompt costs 0.01, as the released environments)")
    p.add_argument("--n-max", type=int, default=32, help="largest N (default 32)")
    p.add_argument("--drop-incomplete", action="store_true",
                   help="drop queries not covered by every prompt instead of refusing")
    p.add_argument("--seed", type=int, default=0, help="seed of the 80/20 train/test split "
                   "(default 0)")
    p.add_argument("--name", default=None, help="environment name (default: the log's stem)")
    p.set_defaults(func=run_import)


def run_import(args) -> int:
    out = Path(args.out)
    if out.suffix != ".npz":
        raise ValueError(f"--out: environment files end in .npz; got {args.out!r}")
    objectives = None
    if args.objectives is not None:
        objectives = [c.strip() for c in args.objectives.split(",") if c.strip()]
        if not objectives:
            raise ValueError(f"--objectives must name at least one column; got {args.objectives!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = sim.from_samples(
            args.log, kind=args.kind, fmt=args.fmt, prompt_col=args.prompt_col,
            query_col=args.query_col, answer_col=args.answer_col, gold_col=args.gold_col,
            tokens_col=args.tokens_col, sample_col=args.sample_col or None,
            objective_cols=objectives, objective_prefix=args.objective_prefix,
            casefold=args.casefold, alpha=args.alpha,
            cost_scale=args.cost_scale, n_max=args.n_max, drop_incomplete=args.drop_incomplete,
            name=args.name, rng=args.seed,
        )
    for w in caught:
        sys.stderr.write(f"iapo import: warning: {w.message}\n")
    sim.save_env(env, out)
    width = env.probs.shape[2]
    what = "answer categories" if env.kind == "mv" else "outcomes"
    print(f"wrote {out}: {env.kind}, {env.n_prompts} prompts x {env.n_queries} queries "
          f"(train {env.train.size} / test {env.test.size}), up to {width} {what} per query, "
          f"{env.n_contexts} contexts, n_max {env.n_max}")
    print(f"cost per completion: {env.cost.min():.4g} .. {env.cost.max():.4g}; "
          f"try: iapo curves {out}")
    return 0
