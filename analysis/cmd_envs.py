"""``iapo envs`` and ``iapo curves ENV``: what environments exist and their exact utility curves."""

from __future__ import annotations

import numpy as np

import sim


def add_parser(sub) -> None:
    p = sub.add_parser("envs")
    p.set_defaults(func=run_envs)
    p = sub.add_parser("curves")
    p.add_argument("env", help="built-in name or path to an .npz environment file")
    p.add_argument("--seed", type=int, default=None, help="reshuffle the split from this seed")
    p.add_argument("--split", default="all", choices=("train", "test", "all"))
    p.add_argument("--n", default="1,2,4,8,16,32", help="comma-separated N values to show")
    p.set_defaults(func=run_curves)


def run_envs(args) -> int:
    print(f"{'name':<20}{'kind':<6}{'prompts':>8}{'queries':>9}{'contexts':>10}{'n_max':>7}")
    for name in sim.ENV_NAMES:
        env = sim.load_env(name, seed=0)
        print(f"{name:<20}{env.kind:<6}{env.n_prompts:>8}{env.n_queries:>9}"
              f"{env.n_contexts:>10}{env.n_max:>7}")
    return 0


def _parse_ns(text: str, n_max: int) -> np.ndarray:
    try:
        ns = np.array([int(t) for t in text.split(",") if t.strip()])
    except ValueError:
        raise ValueError(
            f"--n must be comma-separated integers in [1, {n_max}]; got {text!r}") from None
    if ns.size == 0 or ns.min() < 1 or ns.max() > n_max:
        raise ValueError(f"--n must be comma-separated integers in [1, {n_max}]; got {text!r}")
    return ns


def run_curves(args) -> int:
    env = sim.load_env(args.env, seed=args.seed)
    ns = _parse_ns(args.n, env.n_max)
    q = env.q_table(args.split)
    for c, cname in enumerate(env.contexts.names):
        best = np.unravel_index(q[c].argmax(), q[c].shape)
        print(f"context {cname}: best arm prompt {env.prompt_names[best[0]]}, N = {best[1] + 1}"
              f" (Q = {q[c].max():.4f})")
        print("  prompt  " + "".join(f"{'N=' + str(n):>9}" for n in ns))
        for p in range(env.n_prompts):
            print(f"  {env.prompt_names[p]:<7} " + "".join(f"{q[c, p, n - 1]:9.4f}" for n in ns))
    return 0
