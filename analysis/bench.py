"""``iapo bench``: the performance table (timed after compilation; best of several repeats).

Each benchmark returns rows ``(name, seconds, baseline_name, baseline_seconds, floor_seconds,
note)``: the ratio columns are our time over the plain-numpy baseline and over the
random-number-generation floor (the time numpy needs just to draw the randomness the job
consumes). Timed assertions do not belong in tests; this command is where numbers come from.
"""

from __future__ import annotations

import time

import numpy as np

import sim
from sim import kernels
from sim.exact import _binom_table


def best_time(fn, repeat: int = 5) -> float:
    """Best wall time of ``repeat`` calls of ``fn()`` (after one warm-up call)."""
    fn()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


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
    tabs = np.stack([np.stack([_binom_table(r, n_max) for r in ratio[:, j]]) for j in range(m)])
    bq = np.stack([_binom_table(v, n_max) for v in q])
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


#: Benchmarks in the order of the table.
BENCHMARKS = [bench_exact_q_table, bench_bon_q_table, bench_mv_throughput, bench_pull_kernel]


def format_table(rows) -> str:
    head = f"| benchmark | time | baseline | baseline time | × baseline | × RNG floor | note |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for name, t, bname, tb, tf, note in rows:
        vs_b = f"{t / tb:.2f}" if tb else "–"
        vs_f = f"{t / tf:.2f}" if tf else "–"
        tb_s = f"{tb * 1e3:.1f} ms" if tb else "–"
        lines.append(f"| {name} | {t * 1e3:.1f} ms | {bname or '–'} | {tb_s} | {vs_b} | {vs_f} "
                     f"| {note} |")
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="print the performance table of all benchmarks")
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = []
    for bench in BENCHMARKS:
        rows.extend(bench(quick=args.quick))
    print(format_table(rows))
    return 0
