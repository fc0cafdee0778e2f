"""``iapo bench``: the performance table (timed after compilation; best of several repeats).

Each benchmark returns rows ``(name, seconds, baseline_name, baseline_seconds, floor_seconds,
note)``: the ratio columns are our time over the plain-numpy baseline and over the
random-number-generation floor (the time numpy needs just to draw the randomness the job
consumes). Timed assertions do not belong in tests; this command is where numbers come from.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import stats

import sim


def best_time(fn, repeat: int = 5) -> float:
    """Best wall time of ``repeat`` calls of ``fn()`` (after one warm-up call)."""
    fn()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _binom_tables(r: np.ndarray, n_max: int) -> np.ndarray:
    """``out[i, s, k] = P(Binomial(s, r[i]) = k)`` (zero for ``k > s``), by scipy."""
    s = np.arange(n_max + 1)
    return stats.binom.pmf(s[None, None, :], s[None, :, None], r[:, None, None])


def _numpy_plurality(probs: np.ndarray, correct: np.ndarray, n_max: int) -> np.ndarray:
    """Plain-numpy baseline: the same DP as :mod:`sim.exact`, vectorised over rows only."""
    rows = probs.shape[0]
    q = probs[np.arange(rows), correct]
    mask = np.ones_like(probs, dtype=bool)
    mask[np.arange(rows), correct] = False
    wrong = probs[mask].reshape(rows, -1)
    m = wrong.shape[1]
    cum = np.cumsum(wrong, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(cum > 0, wrong / cum, 0.0)
    tabs = np.stack([_binom_tables(ratio[:, j], n_max) for j in range(m)])
    bq = _binom_tables(q, n_max)
    credit = 1.0 / (1.0 + np.arange(m + 1))
    out = np.zeros((rows, n_max))
    for c in range(1, n_max + 1):
        r_max = n_max - c
        g = np.zeros((rows, r_max + 1, m + 1))
        s = np.arange(r_max + 1)
        g[:, s[s < c], 0] = 1.0
        if c <= r_max:
            g[:, c, 1] = 1.0
        for j in range(1, m):
            new = np.zeros_like(g)
            for k in range(min(c, r_max) + 1):
                b = tabs[j][:, k : r_max + 1, k]  # (rows, r_max + 1 - k)
                if k == c:
                    new[:, k:, 1:] += b[..., None] * g[:, : r_max + 1 - k, :-1]
                else:
                    new[:, k:, :] += b[..., None] * g[:, : r_max + 1 - k, :]
            g = new
        w = (g * credit).sum(axis=2)  # (rows, r_max + 1)
        ns = np.arange(c, n_max + 1)
        out[:, ns - 1] += bq[:, ns, c] * w[:, ns - c]
    return out


def bench_exact_q_table(quick: bool = False):
    """Exact Q table of MATH: 3 contexts × 25 prompts × N <= 32 over all 316 queries."""
    env = sim.load_env("math")

    def ours():
        env._cache.clear()
        env.q_table("all")

    t = best_time(ours, repeat=2 if quick else 5)
    flat = env.probs.reshape(-1, env.probs.shape[-1])
    corr = np.broadcast_to(env.correct, env.probs.shape[:2]).reshape(-1)
    t0 = time.perf_counter()
    base = _numpy_plurality(flat, corr, env.n_max)
    t_np = time.perf_counter() - t0
    exact = env.query_curves().reshape(-1, env.n_max)
    note = f"max |numba - numpy| = {np.abs(base - exact).max():.1e}"
    return [("exact Q table, MATH (3×25×32, 316 queries)", t, "numpy DP", t_np, None, note)]


def bench_bon_q_table(quick: bool = False):
    """Exact Q table of a fresh Synth-Categorical env: 27 contexts × 32 prompts × N <= 32."""
    envs = [sim.load_env("synth-categorical", seed=s) for s in range(2 if quick else 4)]
    envs[0].q_table("all")  # compile
    ns = np.arange(1, envs[0].n_max + 1)

    def ours():
        for env in envs[1:]:
            env._cache.clear()
            env.q_table("all")

    def numpy_path():
        for env in envs[1:]:
            np.stack([sim.bon_expected_max(s, env.probs, ns) for s in env.scalarized_values()])

    k = len(envs) - 1
    t = best_time(ours, repeat=2 if quick else 3) / k
    t_np = best_time(numpy_path, repeat=1) / k
    return [("exact Q table, Synth-Categorical (27×32×32, 512 queries)", t,
             "numpy bon_expected_max", t_np, None, "outcome sort + F^N for all N per row")]


def bench_mv_throughput(quick: bool = False):
    """Monte Carlo majority-vote throughput on MATH laws (N = 32)."""
    env = sim.load_env("math")
    probs = env.probs.reshape(-1, env.probs.shape[-1])[:2000]
    corr = np.broadcast_to(env.correct, env.probs.shape[:2]).reshape(-1)[:2000]
    n, trials = 32, 25 if quick else 100
    draws = probs.shape[0] * trials * n
    gen = np.random.default_rng(0)

    def ours():
        sim.mv_simulate(probs, corr, n, trials, rng=gen)

    def numpy_baseline():
        counts = gen.multinomial(n, probs, size=(trials, probs.shape[0]))
        top = counts.max(axis=2, keepdims=True)
        is_top = counts == top
        t = is_top.sum(axis=2)
        hit = np.take_along_axis(is_top, np.broadcast_to(corr[None, :, None],
                                                         (trials, probs.shape[0], 1)), 2)[..., 0]
        return (hit / t).mean(axis=0)

    def floor():
        gen.random(draws)

    t = best_time(ours)
    t_np = best_time(numpy_baseline)
    t_floor = best_time(floor)
    note = f"{draws / t / 1e6:.0f} M completions/s"
    return [("MC majority vote, N=32, 2000 laws", t, "numpy counts + vote", t_np, t_floor, note)]


def bench_pull_kernel(quick: bool = False):
    """Per-completion pull kernel with block reuse (what learners use), MATH, N = 32."""
    env = sim.load_env("math")
    sampler = sim.Sampler(env)
    stats = sim.Stats(env.n_contexts, env.n_prompts, env.n_max)
    pulls = 1000 if quick else 5000
    gen = np.random.default_rng(0)

    def ours():
        sampler.accumulate(stats, 0, 32, pulls, rng=gen)

    def floor():
        gen.random((pulls, 33))

    t = best_time(ours)
    t_floor = best_time(floor)
    note = f"{pulls * 32 / t / 1e6:.0f} M completions/s, all 32 sub-scales credited"
    return [("pull + block reuse, MATH, N=32", t, None, None, t_floor, note)]


def bench_sweep(quick: bool = False):
    """Sweep engine (issue 6): 1,000 cells of PSST on MATH (200 replicates × 5 budgets).

    Engine overhead, with one worker (in this process, results stored in SQLite on disk): the
    share of the sweep's run time not spent inside the cell function (run time minus the sum of
    the cells' own times, measured in the same run, so robust to other load on the machine);
    and, for comparison, the sweep against a plain loop calling ``run_cell`` on the same cells
    in the same order, in wall and CPU time (noisier: separate runs). Then the same sweep on 2
    local worker processes and on a 2-worker Dask ``LocalCluster``, each started and warmed up
    (imports, MATH's exact curves) before timing; the note gives that start-up time, and how
    busy the engine kept the workers (sum of cell times / (2 × run time): the speed-up the
    engine allows when both cores are free, whatever else runs on the machine). Best of three
    (one if quick).
    """
    import tempfile
    from pathlib import Path

    from analysis.evaluate import run_cell
    from analysis.executors import DaskExecutor, LocalExecutor
    from analysis.store import ResultStore
    from analysis.sweep import LearnerSpec, Spec, run_sweep

    spec = Spec("bench", 0, ("math",), (LearnerSpec("psst"),), (1000, 2000, 5000, 10000, 20000),
                20 if quick else 200)
    cells = spec.cells()
    for b in spec.budgets:  # compile, and load MATH's exact curves, before timing
        run_cell("math", "psst", {}, b, 0, spec.seed)
    warm = [("math", "psst", {}, 1000, r, spec.seed) for r in range(4)]

    def loop():
        t0, c0 = time.perf_counter(), time.process_time()
        for c in cells:
            run_cell(c.env, c.learner.name, c.learner.kwargs, c.budget, c.replicate, spec.seed)
        return time.perf_counter() - t0, time.process_time() - c0

    def sweep(ex):
        """Wall and CPU time of the sweep, and the sum of its cells' own times."""
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            with ResultStore(Path(tmp) / "r.sqlite", spec.hash()) as store:
                run_sweep(spec, store, executor=ex)
                t1, c1 = time.perf_counter(), time.process_time()
                cell_seconds = sum(secs for _, _, secs in store.rows())
                assert len(store) == len(cells)
            return t1 - t0, c1 - c0, cell_seconds

    def started(make):
        t0 = time.perf_counter()
        ex = make()
        list(ex.map(run_cell, *zip(*warm, strict=True)))
        return ex, time.perf_counter() - t0

    repeat = 1 if quick else 3
    runs_loop, runs_one = [], []
    for _ in range(repeat):  # interleaved, so that a burst of other load hits both alike
        runs_loop.append(loop())
        runs_one.append(sweep(LocalExecutor(1)))
    t_loop, c_loop = map(min, zip(*runs_loop, strict=True))
    t_one, c_one, _ = map(min, zip(*runs_one, strict=True))
    own = min(1 - secs / t for t, _, secs in runs_one)  # same-run share of the engine
    ex, t_start = started(lambda: LocalExecutor(2))
    with ex:
        t_two, _, busy_two = min(sweep(ex) for _ in range(repeat))
    n = len(cells)
    rows = [
        (f"sweep, {n} cells PSST on MATH, 1 worker", t_one, "plain run_cell loop", t_loop, None,
         f"engine overhead {100 * own:.1f}% (run time - sum of cell times); vs the loop: "
         f"{100 * (t_one - t_loop) / t_one:+.1f}% wall, {100 * (c_one - c_loop) / c_one:+.1f}% "
         "CPU"),
        (f"sweep, {n} cells PSST on MATH, 2 processes", t_two, "1 worker", t_one, None,
         f"speed-up ×{t_one / t_two:.2f} from 1 to 2 workers; workers busy "
         f"{100 * busy_two / (2 * t_two):.0f}% of the time (+{t_start:.1f} s pool start-up)"),
    ]
    try:
        import distributed  # noqa: F401
    except ImportError:
        return rows
    ex, t_start = started(lambda: DaskExecutor(n_workers=2))
    with ex:
        t_dask, _, busy_dask = min(sweep(ex) for _ in range(repeat))
    rows.append((f"sweep, {n} cells PSST on MATH, Dask 2 workers", t_dask, "1 worker", t_one,
                 None, f"speed-up ×{t_one / t_dask:.2f}; workers busy "
                       f"{100 * busy_dask / (2 * t_dask):.0f}% of the time (+{t_start:.1f} s "
                       "cluster start-up)"))
    return rows


class _NumpyPerPull:
    """Baseline for PSST: the same block-reuse accounting in plain numpy, one pull at a time."""

    def __init__(self, env):
        self.env = env
        self.cdf = np.cumsum(env.probs, axis=-1)
        self.answers = np.arange(env.probs.shape[-1])

    def accumulate(self, stats, p, n, n_pulls, *, rng):
        env = self.env
        w, cw = env.contexts.weights[:, 0], env.contexts.cost_weight
        for _ in range(n_pulls):
            x = env.train[min(int(rng.random() * env.train.size), env.train.size - 1)]
            ans = np.minimum(np.searchsorted(self.cdf[p, x], rng.random(n), side="right"),
                             self.answers[-1])
            for k in range(1, n + 1):
                b = n // k
                counts = (ans[: b * k].reshape(b, k, 1) == self.answers).sum(axis=1)
                top = counts.max(axis=1)
                ties = (counts == top[:, None]).sum(axis=1)
                credit = np.where(counts[:, env.correct[x]] == top, 1.0 / ties, 0.0).sum()
                stats.sums[:, p, k - 1] += w * credit - cw * k * env.cost[p] * b
                stats.counts[p, k - 1] += b


def bench_learners(quick: bool = False):
    """Learners on MATH at T = 50,000 (issue 3 target: one PSST run < 20 ms after compilation).

    PSST's baseline is the same algorithm (``sim.learners.psst.run_rounds``) drawing and voting
    each pull in plain numpy. Sequential bandits run their whole loop in one Numba kernel.
    """
    from sim import Stats
    from sim.learners import Ledger, make, tie_keys
    from sim.learners.base import n_rounds
    from sim.learners.psst import run_rounds

    env = sim.load_env("math", seed=0)
    budget = 50_000
    repeat = 3 if quick else 10
    rows = []

    def numpy_psst():
        gen = np.random.default_rng(1)
        active = np.ones((env.n_contexts, env.n_prompts, env.n_max), dtype=bool)
        run_rounds(_NumpyPerPull(env), Stats(env.n_contexts, env.n_prompts, env.n_max),
                   Ledger(budget, env.n_prompts, env.n_max), active, budget,
                   n_rounds(env.n_prompts * env.n_max), fresh=False,
                   keys=tie_keys(env.n_prompts, env.n_max, gen), rng=gen)

    for name in ("psst", "psst-k4", "ucb", "egreedy", "softmax", "uniform"):
        learner = make(name)
        pol = learner.fit(env, budget, rng=0)
        t = best_time(lambda learner=learner: learner.fit(env, budget, rng=1), repeat=repeat)
        base = ("numpy, one pull at a time", best_time(numpy_psst, repeat=1)) if name == "psst" \
            else (None, None)
        speed = f", {base[1] / t:.0f}× faster than the baseline" if base[1] else ""
        rows.append((f"{learner.key} fit, MATH, T=50,000", t, base[0], base[1], None,
                     f"{pol.pulls.sum()} pulls, {pol.spent} completions{speed}"))
    return rows


def bench_learner_grid(quick: bool = False):
    """All learners × 8 budgets × 200 replicates on MATH, 2 worker processes (issue 3 target:
    under 2 minutes on 2 cores), scored exactly."""
    from analysis.evaluate import run_replicates
    from sim.learners import NAMES

    budgets = [1000, 2000, 5000, 10_000, 20_000, 30_000, 40_000, 50_000]
    runs = 20 if quick else 200
    run_replicates("math", list(NAMES), budgets[:1], 1)  # compile in this process first
    t0 = time.perf_counter()
    run_replicates("math", list(NAMES), budgets, runs, workers=2)
    t = time.perf_counter() - t0
    n = len(NAMES) * len(budgets) * runs
    return [(f"{len(NAMES)} learners × 8 budgets × {runs} replicates, MATH, 2 processes", t,
             None, None, None, f"{n} runs, {n / t:.0f} runs/s")]


def bench_learner_memory(quick: bool = False):
    """Peak traced memory of one PSST fit on MATH as the budget grows (flat: statistics are
    sums and counts; pulls are drawn in bounded chunks)."""
    import tracemalloc

    from sim.learners import make

    env = sim.load_env("math", seed=0)
    psst = make("psst")
    budgets = (5_000, 50_000, 500_000) if not quick else (5_000, 50_000)
    peaks = []
    for b in budgets:
        psst.fit(env, b, rng=0)
        tracemalloc.start()
        psst.fit(env, b, rng=0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    t = best_time(lambda: psst.fit(env, budgets[-1], rng=1), repeat=1 if quick else 3)
    note = "peak traced memory " + " / ".join(f"{p / 1e6:.2f}" for p in peaks) + \
        " MB at T = " + " / ".join(f"{b:,}" for b in budgets)
    return [(f"psst fit, MATH, T={budgets[-1]:,}", t, None, None, None, note)]


#: Benchmarks in the order of the table.
BENCHMARKS = [bench_exact_q_table, bench_bon_q_table, bench_mv_throughput, bench_pull_kernel,
              bench_sweep, bench_learners, bench_learner_grid, bench_learner_memory]


def format_table(rows) -> str:
    head = "| benchmark | time | baseline | baseline time | × baseline | × RNG floor | note |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for name, t, bname, tb, tf, note in rows:
        vs_b = f"{t / tb:.2f}" if tb else "–"
        vs_f = f"{t / tf:.2f}" if tf else "–"
        tb_s = f"{tb * 1e3:.1f} ms" if tb else "–"
        lines.append(f"| {name} | {t * 1e3:.1f} ms | {bname or '–'} | {tb_s} | {vs_b} | {vs_f} "
                     f"| {note} |")
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser("bench")
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = []
    for bench in BENCHMARKS:
        rows.extend(bench(quick=args.quick))
    print(format_table(rows))
    return 0
