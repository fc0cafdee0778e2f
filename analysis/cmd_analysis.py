"""``iapo deceive ENV``, ``iapo complexity ENV`` and ``iapo figures``.

``deceive``
    Exact rank-flip analysis per context: the prompt best at N = 1, the joint optimum, the loss of
    the disjoint and prompt-only choices, and the prompt pairs whose order flips (with their
    first crossover N); plus the N -> infinity limits without cost.
``complexity``
    Theorem 1 complexities and bound from the exact gaps, Karnin's bound for plain SH, and (with
    ``--runs`` > 0) the measured error probability against budget with Clopper-Pearson intervals
    and the budget each learner needs to reach ``--delta``, as a ratio to PSST.
``figures``
    Every figure of :mod:`analysis.figures` and ``REPORT.md`` into ``--out``.
"""

from __future__ import annotations

import math
import time

import numpy as np

import sim
from sim.datasets import SYNTH_ENVS

from . import complexity as cx
from . import deceiving
from .progress import Progress


def _load(name: str, seed):
    """``sim.load_env``; synthetic environments default to seed 0 (reproducible output)."""
    if seed is None and name in SYNTH_ENVS:
        seed = 0
    return sim.load_env(name, seed=seed)


def _ints(values, flag: str) -> list[int]:
    try:
        out = [int(v) for item in values for v in str(item).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be positive integers; got {' '.join(values)}") from None
    if not out or min(out) < 1:
        raise ValueError(f"{flag} must be positive integers; got {' '.join(values)}")
    return sorted(set(out))


def add_parser(sub) -> None:
    p = sub.add_parser(
        "deceive",
        description="Exact rank-flip analysis per context: the prompt best at "
                    "N=1, the joint optimum, the loss of the disjoint and prompt-only "
                    "choices, the prompt pairs whose order flips (first crossover N), and "
                    "the N -> infinity limits without cost.")
    p.add_argument("env", help="built-in name or path to an .npz environment file")
    p.add_argument("--seed", type=int, default=None,
                   help="reshuffle the split (real) / generate (synthetic, default 0) from this")
    p.add_argument("--split", default="all", choices=("train", "test", "all"))
    p.add_argument("--top", type=int, default=5, help="flipping pairs shown per context")
    p.set_defaults(func=run_deceive)

    p = sub.add_parser(
        "complexity",
        description="Theorem 1 complexities H1, H2 and error bound from the "
                    "exact gaps, Karnin's bound for plain SH, and (--runs > 0) the measured "
                    "error probability with Clopper-Pearson intervals and the budget each "
                    "learner needs to reach --delta, as a ratio to PSST.")
    p.add_argument("env", help="built-in name or path to an .npz environment file")
    p.add_argument("--seed", type=int, default=0, help="sweep seed (default 0)")
    p.add_argument("--delta", type=float, default=0.1, help="target error (default 0.1)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="Clopper-Pearson level 1 - alpha (default 0.05)")
    p.add_argument("--runs", type=int, default=50,
                   help="replicates per budget for the measurement; 0 = theory only")
    p.add_argument("--budgets", nargs="+", default=["1000", "5000", "20000", "100000"])
    p.add_argument("--learners", nargs="+", default=["psst", "psst-topk", "sh", "disjoint",
                                                     "triple-n1"])
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(func=run_complexity)

    p = sub.add_parser(
        "figures",
        description="Figures 1-7 (PNG, PDF and their data as CSV/JSON) and "
                    "REPORT.md into --out; every file is written atomically.")
    p.add_argument("--out", default="figures", help="output directory (default figures/)")
    p.add_argument("--quick", action="store_true",
                   help="few replicates and budgets (a smoke run in well under a minute)")
    p.add_argument("--runs", type=int, default=None,
                   help="replicates per learner and budget (default 200; 2 with --quick)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: all available cores)")
    p.add_argument("--seed", type=int, default=0, help="sweep seed (default 0)")
    p.set_defaults(func=run_figures)


# ---------------------------------------------------------------------------- deceive
def run_deceive(args) -> int:
    if args.top < 0:
        raise ValueError(f"--top must be >= 0; got {args.top}")
    env = _load(args.env, args.seed)
    pn = env.prompt_names
    print(f"environment {env.name} ({env.kind}, {env.n_prompts} prompts, {env.n_contexts} "
          f"contexts, N <= {env.n_max}), exact Q on split '{args.split}'")
    for c, r in enumerate(deceiving.analyze(env, args.split)):
        cw = env.contexts.cost_weight[c]
        print(f"\ncontext {r.name} (cost weight {cw:g}): best at N=1 {pn[r.n1_prompt]} "
              f"(Q={r.prompt_only_value:.4f}); joint optimum {pn[r.best[0]]}, N={r.best[1]} "
              f"(Q={r.best_value:.4f})")
        verdict = "deceives" if r.deceives else "does not deceive"
        print(f"  the N=1 winner {pn[r.n1_prompt]} {verdict}; disjoint choice "
              f"{pn[r.disjoint[0]]}, N={r.disjoint[1]}: loss {r.disjoint_loss:.4f} "
              f"({100 * r.relative(r.disjoint_loss):.2f}%); prompt-only {pn[r.n1_prompt]}, "
              f"N=1: loss {r.prompt_only_loss:.4f} "
              f"({100 * r.relative(r.prompt_only_loss):.2f}%)")
        print(f"  {len(r.flips)} ordered prompt pairs flip"
              + (" (largest margins first):" if r.flips and args.top else ""))
        for f in r.flips[: args.top]:
            tail = "still behind" if f.holds_at_nmax else "ahead again"
            print(f"    {pn[f.winner1]} ahead of {pn[f.loser1]} at N=1, behind from "
                  f"N={f.crossover} (largest margin {f.margin:.4f}); {tail} at N={env.n_max}")
    u1, uinf = deceiving.env_limits(env, args.split)
    lim = deceiving.limit_deceptions(env, args.split)
    print(f"\nN -> infinity without cost: {len(lim)} (context, a, b) triples with a ahead at "
          "N=1 and strictly behind in the limit")
    if env.kind == "mv":
        order = np.argsort(-uinf[0], kind="stable")
        print("  prompt   N=1 accuracy   limit (mass where the correct answer is the mode)")
        for p in order:
            print(f"  {pn[p]:<8} {u1[0, p]:12.4f}   {uinf[0, p]:.4f}")
    return 0


# ---------------------------------------------------------------------------- complexity
def run_complexity(args) -> int:
    from sim.learners import make

    from .executors import LocalExecutor

    delta = args.delta
    if not 0 < delta < 1:
        raise ValueError(f"--delta must be in (0, 1); got {delta}")
    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha must be in (0, 1); got {args.alpha}")
    if args.runs < 0:
        raise ValueError(f"--runs must be >= 0; got {args.runs}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1; got {args.workers}")
    if args.runs:  # refuse bad budgets and learners before any output
        _ints(args.budgets, "--budgets")
        for name in args.learners:
            make(name)
    executor = LocalExecutor(args.workers) if args.workers > 1 and args.runs else None
    try:
        return _complexity(args, executor)
    finally:
        if executor is not None:
            executor.close()


def _complexity(args, executor) -> int:
    from .evaluate import replicate_env, run_replicates

    delta = args.delta
    env = replicate_env(args.env, args.seed, 0)
    thm = cx.theorem1(env.q_table("test"))
    print(f"environment {env.name}: |P| = {thm.n_prompts}, N_max = {thm.n_max}, |C| = "
          f"{thm.n_contexts}, |A| = {thm.n_arms} arms per context, R = {thm.rounds} rounds "
          "(Theorem 1 on the test split of replicate 0)")
    print(f"  H1 = {thm.h1:.6g}   H2 = {thm.h2:.6g}   min(2|P|H1, 8|C|H2) = "
          f"{thm.denominator:.6g}")
    for c, name in enumerate(env.contexts.names):
        print(f"  context {name}: H1 = {thm.h1_c[c]:.6g}, H2 = {thm.h2_c[c]:.6g}, classic H2 = "
              f"{thm.classic_h2_c[c]:.6g}")
    print(f"  budget for the Theorem 1 bound to reach {delta:g}: {thm.budget(delta):.4g}")
    print(f"  budget for Karnin's bound on plain SH (no sharing) to reach {delta:g}: "
          f"{thm.plain_sh_budget(delta):.4g}")
    if args.runs == 0:
        return 0
    budgets = _ints(args.budgets, "--budgets")
    res = run_replicates(args.env, args.learners, budgets, args.runs, seed=args.seed,
                         executor=executor, progress=Progress(label="runs", prefix="complexity "))
    print(f"\nmeasured P(error) over {args.runs} runs, {100 * (1 - args.alpha):g}% "
          "Clopper-Pearson interval ('-' = budget below the learner's minimum)")
    print(f"{'learner':<34}" + "".join(f"{'T=' + str(b):>24}" for b in budgets))
    reach = {}
    for key, rec in res["learners"].items():
        cells, bs, rates = [], [], []
        for bi, col in enumerate(rec["values"]["error"]):
            vals = [v for v in col if v is not None]
            if not vals:
                cells.append(f"{'-':>24}")
                continue
            k, n = sum(bool(v) for v in vals), len(vals)
            lo, hi = cx.clopper_pearson(k, n, args.alpha)
            cells.append(f"{k / n:.3f} [{float(lo):.3f}, {float(hi):.3f}]".rjust(24))
            bs.append(budgets[bi])
            rates.append(k / n)
        reach[rec["name"]] = cx.budget_to_reach(bs, rates, delta) if bs else math.inf
        print(f"{key:<34}" + "".join(cells))
    base = reach.get("psst", math.inf)
    print(f"\nbudget to reach P(error) <= {delta:g} (log-budget interpolation), ratio to PSST")
    for name, r in reach.items():
        txt = f"> max budget ({budgets[-1]})" if not math.isfinite(r) else f"{r:,.0f}"
        ratio = f"{r / base:.2f}" if math.isfinite(r) and math.isfinite(base) else "-"
        print(f"  {name:<16} {txt:>24}   {ratio}")
    return 0


# ---------------------------------------------------------------------------- figures
def run_figures(args) -> int:
    from .executors import available_cores
    from .figures import make_all

    workers = available_cores() if args.workers is None else args.workers
    if workers < 1:
        raise ValueError(f"--workers must be >= 1; got {workers}")
    if args.runs is not None and args.runs < 1:
        raise ValueError(f"--runs must be >= 1; got {args.runs}")
    t0 = time.perf_counter()
    facts = make_all(args.out, quick=args.quick, runs=args.runs, workers=workers,
                     seed=args.seed,
                     progress=lambda name: Progress(label="runs", prefix=f"{name} "))
    print(f"wrote figures 1-7 and REPORT.md to {args.out}/ in {time.perf_counter() - t0:.1f} s "
          f"({facts['runs']} replicates, {workers} worker(s))")
    return 0
