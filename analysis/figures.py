"""The paper's figures, one function per figure, one shared style.

Every ``fig_*`` function takes the output directory (plus its own knobs), writes
``<stem>.png``, ``<stem>.pdf`` and the data behind the figure (``<stem>.csv`` or ``.json``),
each atomically (temporary file, then :func:`os.replace`), and returns a dict of the key numbers
for :mod:`analysis.report`.

1. :func:`fig_rank_flip` — exact utility against N and against total cost on real MATH.
2. :func:`fig_bernoulli_heatmaps` — MV and BoN utility of a Bernoulli(theta) completion model.
3. :func:`fig_learning_curves` — ACR against budget, all learners (paper Fig. 4).
4. :func:`fig_inference_aware` — inference-aware against inference-agnostic (paper Fig. 5).
5. :func:`fig_phase_diagrams` — where a prompt deceives a reference prompt (MV and BoN).
6. :func:`fig_sample_complexity` — error against budget with the Theorem 1 bound.
7. :func:`fig_bon_tradeoff` — BoN trade-off curves for several weights (paper Fig. 2b,c).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

import sim  # noqa: E402
from sim.exact import mv_accuracy_binary  # noqa: E402

from . import deceiving  # noqa: E402

#: The shared style: readable fonts (>= 10 pt), light grid, no top/right spines.
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
}

#: Colours of the highlighted series (colour-blind safe, Okabe-Ito).
C_N1, C_BEST, C_GREY = "#E69F00", "#0072B2", "#BBBBBB"
OKABE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

REGION_COLOURS = ["#DDDDDD", "#9ecae1", "#E69F00", "#009E73"]


# ---------------------------------------------------------------------------- atomic output
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def _atomic(path: Path, mode: str = "w"):
    """Open a temporary file next to ``path``; on success rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    with _atomic(path) as fh:
        fh.write(text)
    return path


def write_csv(path, header, rows) -> Path:
    """Write a CSV (header + rows; floats with 10 significant digits) atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([f"{v:.10g}" if isinstance(v, float | np.floating) else v for v in row])
    return write_text(path, buf.getvalue())


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return x if np.isfinite(x) else None
    return obj


def write_json(path, data) -> Path:
    """Write ``data`` as JSON (non-finite floats become null) atomically."""
    return write_text(path, json.dumps(_jsonable(data), indent=1) + "\n")


def save_figure(fig, out, stem: str) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf`` in ``out`` (atomically) and close it."""
    paths = []
    for ext in ("png", "pdf"):
        path = Path(out) / f"{stem}.{ext}"
        with _atomic(path, "wb") as fh:
            fig.savefig(fh, format=ext)
        paths.append(path)
    plt.close(fig)
    return paths


# ---------------------------------------------------------------------------- figure 1
def fig_rank_flip(out, env_name: str = "math", split: str = "all") -> dict:
    """Figure 1: rank flip on a real environment (paper Fig. 2a), exact.

    Per context (columns): exact ``Q(c, p, N)`` of every prompt against N (top row) and against
    the total cost ``N x cost[p]`` (bottom row). The prompt best at N = 1 and the prompt of the
    joint optimum are highlighted; the star is the joint optimum, the circle the disjoint choice
    (best N = 1 prompt, then its best N). Data: ``fig1_rank_flip.csv``.
    """
    env = sim.load_env(env_name)
    res = deceiving.analyze(env, split)
    ns = np.arange(1, env.n_max + 1)
    cx = env.n_contexts
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, cx, figsize=(4.6 * cx, 8.0), squeeze=False)
        for c, r in enumerate(res):
            cw = env.contexts.cost_weight[c]
            for row, ax in enumerate(axes[:, c]):
                for p in range(env.n_prompts):
                    x = ns if row == 0 else ns * env.cost[p]
                    if p in (r.n1_prompt, r.best[0]):
                        continue
                    ax.plot(x, r.q[p], color=C_GREY, lw=0.8, zorder=1)
                for p, col, lab in ((r.n1_prompt, C_N1, "best at N=1"),
                                    (r.best[0], C_BEST, "joint optimum")):
                    x = ns if row == 0 else ns * env.cost[p]
                    label = f"{env.prompt_names[p]} ({lab})"
                    if r.n1_prompt == r.best[0]:
                        label = f"{env.prompt_names[p]} (best at N=1 and joint)"
                    ax.plot(x, r.q[p], color=col, lw=2.2, zorder=3, label=label)
                bp, bn = r.best
                dp, dn = r.disjoint
                fx = (lambda p, n: n) if row == 0 else (lambda p, n: n * env.cost[p])
                ax.plot(fx(bp, bn), r.best_value, "*", ms=15, color=C_BEST, mec="k", zorder=5,
                        label=f"joint optimum N={bn}")
                ax.plot(fx(dp, dn), r.disjoint_value, "o", ms=8, color=C_N1, mec="k", zorder=5,
                        label=f"disjoint choice N={dn}")
                ax.set_xlabel("N (samples per query)" if row == 0 else
                              "total cost (N × cost per completion)")
                ax.set_ylabel("exact utility Q (accuracy − w·N·cost)")
                if row == 1:
                    ax.set_xscale("log")
                ax.set_title(f"{env.name}, context '{r.name}' (cost weight {cw:g})")
                lo = min(r.q[r.n1_prompt].min(), r.q[r.best[0]].min())
                ax.set_ylim(lo - 0.08 * (r.best_value - lo + 1e-9),
                            r.best_value + 0.05 * (r.best_value - lo + 1e-9))
            axes[0, c].legend(loc="lower right")
        fig.suptitle(f"Rank flip on {env.name}: exact utility of {env.n_prompts} prompts under "
                     "majority voting (grey: other prompts)")
        fig.tight_layout()
        save_figure(fig, out, "fig1_rank_flip")
    rows = []
    for r in res:
        for p in range(env.n_prompts):
            for n in ns:
                rows.append([r.name, env.prompt_names[p], int(n), float(n * env.cost[p]),
                             float(r.q[p, n - 1]), int(p == r.n1_prompt), int(p == r.best[0])])
    write_csv(Path(out) / "fig1_rank_flip.csv",
              ["context", "prompt", "N", "total_cost", "Q", "best_at_N1", "joint_best_prompt"],
              rows)
    return {"env": env.name, "split": split, "contexts": [_context_facts(env, r) for r in res]}


def _context_facts(env, r) -> dict:
    pn = env.prompt_names
    cross = next((f.crossover for f in r.flips if f.winner1 == r.n1_prompt
                  and f.loser1 == r.best[0]), None)
    return {
        "context": r.name, "n1_prompt": pn[r.n1_prompt], "n1_value": r.prompt_only_value,
        "best_prompt": pn[r.best[0]], "best_n": r.best[1], "best_value": r.best_value,
        "disjoint_prompt": pn[r.disjoint[0]], "disjoint_n": r.disjoint[1],
        "disjoint_value": r.disjoint_value, "disjoint_loss": r.disjoint_loss,
        "disjoint_rel": r.relative(r.disjoint_loss), "prompt_only_loss": r.prompt_only_loss,
        "prompt_only_rel": r.relative(r.prompt_only_loss), "deceives": r.deceives,
        "n_flips": len(r.flips), "crossover_n1_vs_best": cross,
    }


# ---------------------------------------------------------------------------- figure 2
def fig_bernoulli_heatmaps(out, n_max: int = 64, n_theta: int = 201) -> dict:
    """Figure 2: expected utility of a Bernoulli(theta) completion model (paper Fig. 3).

    Majority vote (binary, fair-coin ties: ``Acc = I_theta(m+1, m+1)`` for N = 2m+1,
    ``Acc(2m) = Acc(2m-1)``) and best-of-N with a binary reward (``1 - (1 - theta)^N``), with
    ``w_{K+1} = 0``. Data: ``fig2_bernoulli_heatmaps.csv``.
    """
    theta = np.linspace(0.0, 1.0, n_theta)
    ns = np.arange(1, n_max + 1)
    mv = mv_accuracy_binary(theta, ns)  # (theta, N)
    bon = 1.0 - (1.0 - theta[:, None]) ** ns[None, :]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6), sharey=True)
        for ax, z, title in ((axes[0], mv, "majority voting"), (axes[1], bon, "best-of-N")):
            im = ax.imshow(z.T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                           extent=(0, 1, 0.5, n_max + 0.5))
            cs = ax.contour(theta, ns, z.T, levels=[0.25, 0.5, 0.75, 0.9, 0.99], colors="w",
                            linewidths=0.8)
            ax.clabel(cs, fmt="%.2f", fontsize=10)
            ax.set_xlabel("θ (success probability of one completion)")
            ax.set_title(f"{title}: expected utility (no cost)")
            ax.grid(False)
        axes[0].set_ylabel("N (samples per query)")
        fig.colorbar(im, ax=axes, label="expected utility (P(correct))")
        fig.suptitle("Bernoulli completion model: utility over θ × N")
        save_figure(fig, out, "fig2_bernoulli_heatmaps")
    rows = [[float(t), int(n), float(mv[i, j]), float(bon[i, j])]
            for i, t in enumerate(theta) for j, n in enumerate(ns)]
    write_csv(Path(out) / "fig2_bernoulli_heatmaps.csv", ["theta", "N", "mv", "bon"], rows)
    # the paper's two-query example: prompt 1 = (0.4, 0.9), prompt 2 = (0.62, 0.62), N = 10
    p1 = float(mv_accuracy_binary(np.array([0.4, 0.9]), 10).mean())
    p2 = float(mv_accuracy_binary(0.62, 10))
    shown = sorted({1, min(11, n_max), n_max})
    cols = [n - 1 for n in shown]
    at = {t: int(np.argmin(np.abs(theta - t))) for t in (0.1, 0.4, 0.5, 0.6)}
    return {"n_max": n_max, "shown_n": shown, "toy_prompt1_n1": 0.65, "toy_prompt2_n1": 0.62,
            "toy_prompt1_n10": p1, "toy_prompt2_n10": p2,
            "mv_at": {f"{theta[at[t]]:.2f}": mv[at[t], cols].tolist() for t in (0.4, 0.5, 0.6)},
            "bon_at": {f"{theta[at[t]]:.2f}": bon[at[t], cols].tolist() for t in (0.1, 0.4)}}


# ---------------------------------------------------------------------------- figure 5
def fig_phase_diagrams(out, *, quick: bool = False, mv_ref=(0.3, 0.3), bon_ref=(1.5, 0.7),
                       n_max: int = 32, n_large: int = 1001) -> dict:
    """Figure 5: deceiving-prompt phase diagrams over the (centering, spread) plane.

    Top: probit majority vote, prompt A = (mu, tau) against reference B = ``mv_ref``, regions
    from the exact curves at N = n_max and at N = n_large, with the theory boundaries
    ``mu/sqrt(1+tau^2) = mu_B/sqrt(1+tau_B^2)`` (N = 1 tie) and ``mu/tau = mu_B/tau_B``
    (N -> infinity tie). Bottom: best-of-N, A = (mu, sigma) against B = ``bon_ref``, regions at
    N = n_max for Gaussian rewards and for scores clipped to [0, 4], with the theory boundaries
    ``mu = mu_B`` and ``mu = mu_B + (sigma_B - sigma) e_N``. Data: ``fig5_phase_diagrams.json``.
    """
    k = 41 if quick else 121
    mu = np.linspace(-0.5, 2.0, k)
    tau = np.linspace(0.05, 3.0, k)
    mv_n = deceiving.mv_phase(mu, tau, mv_ref, n_max)
    mv_big = deceiving.mv_phase(mu, tau, mv_ref, n_large)
    bmu = np.linspace(0.0, 3.5, k)
    bsig = np.linspace(0.05, 1.5, k)
    bon = deceiving.bon_phase(bmu, bsig, bon_ref, n_max)
    cmap = ListedColormap(REGION_COLOURS)
    h_b = mv_ref[0] / np.sqrt(1 + mv_ref[1] ** 2)
    r_b = mv_ref[0] / mv_ref[1]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(12, 10))
        for ax, ph, n in ((axes[0, 0], mv_n, n_max), (axes[0, 1], mv_big, n_large)):
            ax.pcolormesh(mu, tau, ph["region"], cmap=cmap, vmin=-0.5, vmax=3.5,
                          shading="nearest")
            ax.plot(h_b * np.sqrt(1 + tau**2), tau, "k--", lw=1.5,
                    label="theory: equal at N = 1")
            ax.plot(r_b * tau, tau, "k-", lw=1.5, label="theory: equal as N → ∞")
            ax.plot(*mv_ref, "k*", ms=14, label=f"reference B (μ={mv_ref[0]}, τ={mv_ref[1]})")
            ax.set_xlim(mu[0], mu[-1])
            ax.set_ylim(tau[0], tau[-1])
            ax.set_xlabel("centering μ of prompt A (probit location)")
            ax.set_ylabel("spread τ of prompt A (probit scale)")
            ax.set_title(f"majority vote, exact regions at N = {n}")
        for ax, key, title in ((axes[1, 0], "region_gauss", "Gaussian rewards"),
                               (axes[1, 1], "region_clipped", "scores clipped to [0, 4]")):
            ax.pcolormesh(bmu, bsig, bon[key], cmap=cmap, vmin=-0.5, vmax=3.5,
                          shading="nearest")
            ax.axvline(bon_ref[0], color="k", ls="--", lw=1.5, label="theory: equal at N = 1")
            ax.plot(bon_ref[0] + (bon_ref[1] - bsig) * bon["e_n"], bsig, "k-", lw=1.5,
                    label=f"theory: equal at N = {n_max}")
            ax.plot(*bon_ref, "k*", ms=14, label=f"reference B (μ={bon_ref[0]}, σ={bon_ref[1]})")
            ax.set_xlim(bmu[0], bmu[-1])
            ax.set_ylim(bsig[0], bsig[-1])
            ax.set_xlabel("centering μ of prompt A (mean reward)")
            ax.set_ylabel("spread σ of prompt A (reward s.d.)")
            ax.set_title(f"best-of-N, {title}, exact regions at N = {n_max}")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in REGION_COLOURS]
        lines, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles + lines, list(deceiving.REGIONS) + labels, loc="lower center",
                   ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.06))
        blines, blabels = axes[1, 0].get_legend_handles_labels()
        axes[1, 0].legend(blines, blabels, loc="upper right")
        fig.suptitle("Where prompt A deceives reference prompt B (region colours, exact curves; "
                     "black lines, theory)")
        fig.tight_layout()
        save_figure(fig, out, "fig5_phase_diagrams")
    data = {
        "mv": {"reference": mv_ref, "mu": mu, "tau": tau, "n": [n_max, n_large],
               "region_n": mv_n["region"], "region_large": mv_big["region"],
               "theory_deceives": mv_n["theory_deceives"]},
        "bon": {"reference": bon_ref, "mu": bmu, "sigma": bsig, "n": n_max,
                "region_gauss": bon["region_gauss"], "region_clipped": bon["region_clipped"],
                "theory_deceives": bon["theory_deceives"]},
        "region_codes": list(deceiving.REGIONS),
    }
    write_json(Path(out) / "fig5_phase_diagrams.json", data)
    th = mv_n["theory_deceives"]

    def share(mask):
        return float(np.mean(mask))

    return {
        "grid": k, "mv_ref": mv_ref, "bon_ref": bon_ref, "n_max": n_max, "n_large": n_large,
        "mv_deceive_share_theory": share(th),
        "mv_deceive_share_n": share(mv_n["region"] == 2),
        "mv_deceive_share_large": share(mv_big["region"] == 2),
        "mv_agree_n": share((mv_n["region"] == 2) == th),
        "mv_agree_large": share((mv_big["region"] == 2) == th),
        "bon_deceive_share_theory": share(bon["theory_deceives"]),
        "bon_agree_gauss": share((bon["region_gauss"] == 2) == bon["theory_deceives"]),
        "bon_agree_clipped": share((bon["region_clipped"] == 2) == bon["theory_deceives"]),
        "bon_deceive_share_clipped": share(bon["region_clipped"] == 2),
    }


# ---------------------------------------------------------------------------- figure 7
def _tradeoff_pair(q_hi: np.ndarray, q_lo: np.ndarray) -> tuple[int, int]:
    """Prompts (a, b): a best when the first objective weighs most, b when the second does.

    Maximises ``min(best_a(hi) - best_b(hi), best_b(lo) - best_a(lo))`` over ordered pairs of
    the per-prompt best utilities (``q_*`` are (P, n_max) tables); ties to the lowest indices.
    """
    bh, bl = q_hi.max(axis=1), q_lo.max(axis=1)
    score = np.minimum(bh[:, None] - bh[None, :], bl[None, :] - bl[:, None])
    np.fill_diagonal(score, -np.inf)
    a, b = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(a), int(b)


def fig_bon_tradeoff(out, *, env_seed: int = 0, regime: str = "mid",
                     weights=(0.1, 0.3, 0.5, 0.7, 0.9)) -> dict:
    """Figure 7: best-of-N trade-off curves on synth-categorical (paper Fig. 2b,c).

    Exact ``Q(c, p, N)`` against N for two prompts, one curve per objective weight ``w`` (context
    ``(w, 1 - w)`` in budget regime ``regime``); the star marks each curve's best N. The two
    prompts are the pair whose preference reverses most between ``w = max(weights)`` and
    ``w = min(weights)`` (:func:`_tradeoff_pair`). Data: ``fig7_bon_tradeoff.csv``.
    """
    env = sim.load_env("synth-categorical", seed=env_seed)
    q = env.q_table("all")
    names = env.contexts.names
    idx = {w: names.index(f"w={w:.1f}/{regime}") for w in weights}
    a, b = _tradeoff_pair(q[idx[max(weights)]], q[idx[min(weights)]])
    ns = np.arange(1, env.n_max + 1)
    cols = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(weights)))
    facts = {"env_seed": env_seed, "regime": regime,
             "cost_weight": float(env.contexts.cost_weight[idx[weights[0]]]),
             "prompts": [env.prompt_names[a], env.prompt_names[b]], "curves": []}
    rows = []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6), sharey=True)
        for ax, p in zip(axes, (a, b), strict=True):
            for w, col in zip(weights, cols, strict=True):
                y = q[idx[w], p]
                n_best = int(np.argmax(y)) + 1
                ax.plot(ns, y, color=col, lw=2, label=f"w = {w:.1f}")
                ax.plot(n_best, y[n_best - 1], "*", color=col, mec="k", ms=13)
                facts["curves"].append({"prompt": env.prompt_names[p], "w": w,
                                        "best_n": n_best, "best_q": float(y.max()),
                                        "q_n1": float(y[0])})
                rows += [[env.prompt_names[p], w, regime, int(n), float(y[n - 1])] for n in ns]
            ax.set_xlabel("N (samples per query)")
            ax.set_title(f"prompt {env.prompt_names[p]}")
        axes[0].set_ylabel("exact utility Q (weighted reward − cost)")
        axes[1].legend(title="weight w on\nobjective 1", loc="center left",
                       bbox_to_anchor=(1.01, 0.5))
        fig.suptitle(f"Best-of-N trade-off on synth-categorical (seed {env_seed}, {regime} budget,"
                     " context (w, 1 − w)); ★ = best N")
        fig.tight_layout()
        save_figure(fig, out, "fig7_bon_tradeoff")
    write_csv(Path(out) / "fig7_bon_tradeoff.csv", ["prompt", "w", "regime", "N", "Q"], rows)
    return facts


# ---------------------------------------------------------------------------- learner runs
#: Every learner of the learning curves (sim.learners.NAMES without the oracle, whose ACR is
#: drawn as a line from each run's ``oracle_acr``). ``psst-topk`` is Top-K with K = 4.
CURVE_LEARNERS = ("psst", "psst-topk", "psst-k1", "psst-k8", "uniform", "egreedy", "softmax",
                  "ucb", "triple-n1", "triple-nrandom", "disjoint", "sh", "sr")
#: Inference-aware (IAPO) learners and inference-agnostic ones of figure 4.
AWARE = ("psst", "psst-topk")
AGNOSTIC = ("triple-n1", "triple-nrandom", "psst-k1", "disjoint")
#: Learners of the sample-complexity figure (PSST, Top-K, plain SH, disjoint, prompt-only).
COMPLEXITY_LEARNERS = ("psst", "psst-topk", "sh", "disjoint", "triple-n1")

LABELS = {
    "psst": "PSST", "psst-topk": "PSST + Top-K (K=4)", "psst-k1": "PSST + K1",
    "psst-k4": "PSST + K4", "psst-k8": "PSST + K8", "uniform": "Uniform",
    "egreedy": "ε-greedy (0.15)", "softmax": "Softmax", "ucb": "UCB (c=0.1)",
    "triple-n1": "TRIPLE-SH (N=1)", "triple-nrandom": "TRIPLE-SH (N=random)",
    "disjoint": "Disjoint (prompt, then N)", "sh": "plain SH (no sharing)",
    "sr": "Successive Rejects", "oracle": "oracle",
}
STYLES = {
    "psst": (OKABE[0], "-", "o"), "psst-topk": (OKABE[2], "-", "s"),
    "psst-k1": (OKABE[3], "--", "v"), "psst-k4": (OKABE[2], "--", "^"),
    "psst-k8": (OKABE[4], "--", "^"), "uniform": ("#777777", ":", "x"),
    "egreedy": (OKABE[5], ":", "d"), "softmax": ("#8c564b", ":", "P"),
    "ucb": (OKABE[7], ":", "*"), "triple-n1": (OKABE[1], "-.", "<"),
    "triple-nrandom": ("#bcbd22", "-.", ">"), "disjoint": (OKABE[3], "-", "D"),
    "sh": ("#9467bd", "-", "h"), "sr": ("#17becf", "-", "p"),
}


def _series(res: dict, name: str, metric: str = "acr"):
    """(budgets, mean, se) of learner ``name`` in a run_replicates result (feasible budgets)."""
    for entry in res["learners"].values():
        if entry["name"] == name and not entry["params"]:
            b = np.array(res["budgets"], dtype=float)
            m = np.array([np.nan if v is None else v for v in entry["mean"][metric]])
            s = np.array([0.0 if v is None else v for v in entry["se"][metric]])
            ok = np.isfinite(m)
            return b[ok], m[ok], s[ok]
    raise KeyError(f"learner {name!r} not in the results")


def _values(res: dict, name: str, metric: str) -> list:
    for entry in res["learners"].values():
        if entry["name"] == name and not entry["params"]:
            return entry["values"][metric]
    raise KeyError(f"learner {name!r} not in the results")


def _plot_learners(ax, res, names, metric="acr"):
    for name in names:
        b, m, s = _series(res, name, metric)
        if b.size == 0:
            continue
        col, ls, mk = STYLES[name]
        ax.plot(b, m, ls=ls, marker=mk, color=col, lw=1.8, ms=5, label=LABELS[name])
        ax.fill_between(b, m - s, m + s, color=col, alpha=0.18, lw=0)
    oracle = np.array([np.mean([v for v in col if v is not None]) for col in
                       _values(res, names[0], "oracle_acr")])
    ax.plot(res["budgets"], oracle, color="k", lw=1.2, ls=(0, (6, 3)), label="oracle (exact)")
    _budget_axis(ax, res["budgets"])


def _budget_axis(ax, budgets) -> None:
    """Log budget axis with one plain tick per budget (e.g. "5k")."""
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(budgets))
    ax.set_xticklabels([f"{b / 1000:g}k" if b >= 1000 else str(b) for b in budgets])
    ax.set_xlabel("budget T (completions)")


def run_learners(env_names, learners, budgets, runs, *, seed=0, executor=None, progress=None):
    """:func:`analysis.evaluate.run_replicates` for each environment; dict name -> result.

    ``executor`` (e.g. :class:`analysis.executors.LocalExecutor`) runs the cells; ``None`` runs
    them in this process. Results do not depend on it.
    """
    import time

    from .evaluate import run_replicates

    out = {}
    for name in env_names:
        cb = None if progress is None else progress(name)
        t0 = time.perf_counter()
        out[name] = run_replicates(name, list(learners), list(budgets), runs, seed=seed,
                                   executor=executor, progress=cb)
        out[name]["seconds"] = time.perf_counter() - t0
    return out


def _wilcoxon(a, b) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value (paper's test); 1.0 if all pairs tie."""
    from scipy.stats import wilcoxon

    x = np.array([u - v for u, v in zip(a, b, strict=True) if u is not None and v is not None])
    if x.size == 0 or np.all(x == 0):
        return 1.0
    return float(wilcoxon(x).pvalue)


# ---------------------------------------------------------------------------- figure 3
def fig_learning_curves(out, results: dict) -> dict:
    """Figure 3: ACR against budget with standard-error bands, every learner (paper Fig. 4).

    ``results`` maps environment name -> :func:`analysis.evaluate.run_replicates` output with
    (at least) :data:`CURVE_LEARNERS`. Learners whose minimum budget exceeds every budget of an
    environment have no points there (their minimum is in the data). Data:
    ``fig3_learning_curves.csv`` (mean and SE per env, learner, budget) and
    ``fig3_learning_curves_runs.json`` (every replicate's ACR, for paired tests).
    """
    envs = list(results)
    with plt.rc_context(STYLE):
        cols = min(2, len(envs))
        rows_ = -(-len(envs) // cols)
        fig, axes = plt.subplots(rows_, cols, figsize=(7.2 * cols, 5.0 * rows_), squeeze=False)
        for ax, name in zip(axes.ravel(), envs, strict=False):
            res = results[name]
            present = [n for n in CURVE_LEARNERS if _has(res, n)]
            _plot_learners(ax, res, present)
            ax.set_ylabel("ACR (average contextual return, exact)")
            ax.set_title(f"{name} ({res['runs']} runs, mean ± SE)")
        for ax in axes.ravel()[len(envs):]:
            ax.set_visible(False)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=5, frameon=False,
                   bbox_to_anchor=(0.5, -0.07))
        fig.suptitle("Learning curves: exact ACR of the learned policy against the training budget")
        fig.tight_layout()
        save_figure(fig, out, "fig3_learning_curves")
    rows, facts, raw = [], {}, {}
    for name in envs:
        res = results[name]
        facts[name] = {"runs": res["runs"], "budgets": res["budgets"], "learners": {}}
        raw[name] = {"budgets": res["budgets"], "acr": {}, "error": {}}
        psst_vals = _values(res, "psst", "acr") if _has(res, "psst") else None
        for entry in res["learners"].values():
            ln = entry["name"]
            raw[name]["acr"][ln] = entry["values"]["acr"]
            raw[name]["error"][ln] = entry["values"]["error"]
            per = []
            for bi, b in enumerate(res["budgets"]):
                mean, se = entry["mean"]["acr"][bi], entry["se"]["acr"][bi]
                rel = entry["mean"]["relative"][bi]
                orc = entry["mean"]["oracle_acr"][bi]
                p = (None if psst_vals is None or ln == "psst" or mean is None
                     else _wilcoxon(psst_vals[bi], entry["values"]["acr"][bi]))
                rows.append([name, ln, b, entry["n"][bi], _f(mean), _f(se), _f(rel), _f(orc),
                             _f(p)])
                per.append({"budget": b, "n": entry["n"][bi], "acr": mean, "se": se,
                            "relative": rel, "p_vs_psst": p})
            facts[name]["learners"][ln] = per
    write_csv(Path(out) / "fig3_learning_curves.csv",
              ["env", "learner", "budget", "n", "acr_mean", "acr_se", "relative_mean",
               "oracle_acr_mean", "wilcoxon_p_vs_psst"], rows)
    write_json(Path(out) / "fig3_learning_curves_runs.json", raw)
    return facts


def _has(res, name) -> bool:
    return any(e["name"] == name and not e["params"] for e in res["learners"].values())


def _f(x):
    return "" if x is None else float(x)


# ---------------------------------------------------------------------------- figure 4
def _gain(a, b):
    return None if a is None or b is None or b == 0 else 100.0 * (a - b) / abs(b)


def fig_inference_aware(out, results: dict) -> dict:
    """Figure 4: inference-aware (PSST, Top-K) against inference-agnostic learners (paper Fig. 5).

    Gains in percent of ACR, per environment and budget: "IAPO over disjoint" =
    ``100 (ACR_PSST - ACR_disjoint) / |ACR_disjoint|`` and "IAPO over prompt-only" with
    TRIPLE-SH (N=1) in place of disjoint; the same with Top-K as the IAPO learner, and against
    PSST + K1 and TRIPLE-SH (N=random). Data: ``fig4_inference_aware.csv``.
    """
    envs = list(results)
    names = AWARE + AGNOSTIC
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(envs), figsize=(5.2 * len(envs), 5.0), squeeze=False)
        for ax, name in zip(axes[0], envs, strict=True):
            res = results[name]
            _plot_learners(ax, res, [n for n in names if _has(res, n)])
            b = res["budgets"]
            g_d = _gain(_mean_at(res, "psst", -1), _mean_at(res, "disjoint", -1))
            g_p = _gain(_mean_at(res, "psst", -1), _mean_at(res, "triple-n1", -1))
            ax.text(0.98, 0.04, f"at T = {b[-1]:,}:\nPSST over disjoint {_pct(g_d)}\n"
                    f"PSST over prompt-only {_pct(g_p)}", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=10,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"})
            ax.set_title(f"{name} ({res['runs']} runs)")
        axes[0, 0].set_ylabel("ACR (average contextual return, exact)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False,
                   bbox_to_anchor=(0.5, -0.12))
        fig.suptitle("Inference-aware (PSST, Top-K) against inference-agnostic prompt "
                     "optimisation")
        fig.tight_layout()
        save_figure(fig, out, "fig4_inference_aware")
    rows, facts = [], {"per_env": {}, "max": {}}
    pairs = [(a, o) for a in AWARE for o in AGNOSTIC]
    best = {pair: (-np.inf, None, None) for pair in pairs}
    for name in envs:
        res = results[name]
        facts["per_env"][name] = []
        for bi, b in enumerate(res["budgets"]):
            row = {"budget": b}
            for a, o in pairs:
                g = _gain(_mean_at(res, a, bi), _mean_at(res, o, bi))
                row[f"{a}_over_{o}"] = g
                rows.append([name, b, a, o, _f(_mean_at(res, a, bi)), _f(_mean_at(res, o, bi)),
                             _f(g)])
                if g is not None and g > best[(a, o)][0]:
                    best[(a, o)] = (g, name, b)
            facts["per_env"][name].append(row)
    for (a, o), (g, name, b) in best.items():
        facts["max"][f"{a}_over_{o}"] = {"gain_pct": None if name is None else g, "env": name,
                                         "budget": b}
    write_csv(Path(out) / "fig4_inference_aware.csv",
              ["env", "budget", "aware", "agnostic", "acr_aware", "acr_agnostic", "gain_pct"],
              rows)
    return facts


def _mean_at(res, name, bi):
    for entry in res["learners"].values():
        if entry["name"] == name and not entry["params"]:
            return entry["mean"]["acr"][bi]
    return None


def _pct(g) -> str:
    if g is None:
        return "n/a"
    return f"{g:+.1f}%" if round(g, 1) != 0 else "0.0%"  # no "-0.0%"


# ---------------------------------------------------------------------------- figure 6
def fig_sample_complexity(out, results: dict, env, env_path, *, delta: float = 0.1,
                          alpha: float = 0.05) -> dict:
    """Figure 6: error probability against budget with Clopper-Pearson intervals and the bounds.

    ``results`` is a :func:`analysis.evaluate.run_replicates` output on ``env`` (saved at
    ``env_path``) with :data:`COMPLEXITY_LEARNERS`. Left: measured P(error) (policy suboptimal
    in some context) with exact ``1 - alpha`` intervals. Right, log-log over a wider budget
    range: PSST's measurement against the Theorem 1 bound and Karnin's bound for plain SH
    without sharing (:mod:`analysis.complexity`). Data: ``fig6_sample_complexity.csv``.
    """
    from . import complexity as cx

    thm = cx.theorem1(env.q_table("test"))
    budgets = np.array(results["budgets"], dtype=float)
    measured = {}
    for name in COMPLEXITY_LEARNERS:
        if not _has(results, name):
            continue
        errs = _values(results, name, "error")
        k = np.array([sum(bool(v) for v in col if v is not None) for col in errs])
        n = np.array([sum(v is not None for v in col) for col in errs])
        ok = n > 0
        lo, hi = cx.clopper_pearson(k[ok], n[ok], alpha)
        measured[name] = {"budget": budgets[ok], "k": k[ok], "n": n[ok], "rate": k[ok] / n[ok],
                          "lo": lo, "hi": hi}
    grid = np.logspace(np.log10(budgets[0]), np.log10(max(thm.budget(0.01),
                                                           thm.plain_sh_budget(0.01)) * 1.5), 200)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.0))
        for name, m in measured.items():
            col, ls, mk = STYLES[name]
            yerr = [m["rate"] - m["lo"], m["hi"] - m["rate"]]
            axes[0].errorbar(m["budget"], m["rate"], yerr=yerr, color=col, ls=ls, marker=mk,
                             lw=1.8, ms=5, capsize=3, label=LABELS[name])
        axes[0].axhline(delta, color="0.4", lw=1, ls=":", label=f"δ = {delta}")
        _budget_axis(axes[0], results["budgets"])
        axes[0].set_ylim(-0.03, 1.03)
        axes[0].set_ylabel("P(error): wrong arm in some context")
        axes[0].set_title(f"measured ({results['runs']} runs, {int(100 * (1 - alpha))}% "
                          "Clopper–Pearson)")
        axes[0].legend(loc="lower left")
        ax = axes[1]
        ax.plot(grid, np.minimum(thm.bound(grid), 1.0), color=OKABE[0], lw=2,
                label="Theorem 1 bound (PSST)")
        ax.plot(grid, np.minimum(thm.plain_sh_bound(grid), 1.0), color=STYLES["sh"][0], lw=2,
                ls="--", label="Karnin bound, plain SH (no sharing)")
        for name in ("psst", "sh"):
            if name in measured:
                m = measured[name]
                col, ls, mk = STYLES[name]
                ax.errorbar(m["budget"], np.maximum(m["rate"], 1e-3),
                            yerr=[np.maximum(m["rate"], 1e-3) - np.maximum(m["lo"], 1e-3),
                                  m["hi"] - np.maximum(m["rate"], 1e-3)],
                            color=col, marker=mk, ls="none", capsize=3,
                            label=f"{LABELS[name]}, measured")
        ax.axvline(thm.budget(delta), color=OKABE[0], lw=1, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(1e-3, 1.5)
        ax.set_xlabel("budget T (completions)")
        ax.set_ylabel("P(error) (bounds clipped at 1; 0 drawn at 1e-3)")
        ax.set_title(f"bounds: H1 = {thm.h1:.3g}, H2 = {thm.h2:.3g}, R = {thm.rounds}")
        ax.legend(loc="lower left")
        fig.suptitle(f"Sample complexity on the clear-gap instance ({env.n_prompts} prompts × "
                     f"N ≤ {env.n_max}, {env.n_contexts} contexts)")
        fig.tight_layout()
        save_figure(fig, out, "fig6_sample_complexity")
    rows = []
    for name, m in measured.items():
        for i, b in enumerate(m["budget"]):
            rows.append([name, int(b), int(m["n"][i]), int(m["k"][i]), float(m["rate"][i]),
                         float(m["lo"][i]), float(m["hi"][i]), float(thm.bound(b)),
                         float(thm.plain_sh_bound(b))])
    write_csv(Path(out) / "fig6_sample_complexity.csv",
              ["learner", "budget", "runs", "errors", "error_rate", "cp_low", "cp_high",
               "theorem1_bound", "plain_sh_bound"], rows)
    reach = {name: cx.budget_to_reach(m["budget"], m["rate"], delta)
             for name, m in measured.items()}
    base = reach.get("psst", float("inf"))
    return {
        "env_file": Path(env_path).name, "runs": results["runs"], "budgets": results["budgets"],
        "delta": delta, "alpha": alpha, "h1": thm.h1, "h2": thm.h2, "rounds": thm.rounds,
        "n_prompts": env.n_prompts, "n_contexts": env.n_contexts, "n_max": env.n_max,
        "classic_h2": float(np.max(thm.classic_h2_c)),
        "theorem1_budget": thm.budget(delta), "plain_sh_budget": thm.plain_sh_budget(delta),
        "reach": reach,
        "ratio": {n: (r / base if np.isfinite(r) and np.isfinite(base) else None)
                  for n, r in reach.items()},
        "max_budget": int(budgets[-1]),
        "error": {n: {"budget": m["budget"].tolist(), "rate": m["rate"].tolist(),
                      "lo": m["lo"].tolist(), "hi": m["hi"].tolist()}
                  for n, m in measured.items()},
    }


# ---------------------------------------------------------------------------- everything
#: Environments of the learning-curve figures (the paper's Fig. 4 panels we can build).
CURVE_ENVS = ("math", "commonsenseqa", "synth-bernoulli", "synth-categorical")
#: Default budgets (completions) of figures 3-4 and of figure 6, and replicates.
BUDGETS = (2000, 5000, 10000, 20000, 50000)
COMPLEXITY_BUDGETS = (500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)
RUNS = 200
#: ``--quick``: the same figures from few replicates and budgets (a smoke run, not results).
QUICK = {"runs": 2, "budgets": (2000, 10000), "complexity_budgets": (2000, 20000),
         "complexity_runs": 4}


def make_all(out="figures", *, quick: bool = False, runs: int | None = None,
             workers: int = 1, seed: int = 0, progress=None) -> dict:
    """Build every figure and ``REPORT.md`` in ``out``; returns the key numbers.

    Parameters
    ----------
    out : path
    quick : bool
        Few replicates and budgets (:data:`QUICK`) and coarse phase diagrams.
    runs : int, optional
        Replicates of the learner figures (default :data:`RUNS`, or ``QUICK["runs"]``).
    workers : int
        Processes for the learner runs (results do not depend on it).
    seed : int
        Sweep seed of every learner run (:mod:`analysis.seeds`).
    progress : callable ``label -> (done, total) callback``, optional
    """
    import time

    from . import report
    from .executors import LocalExecutor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_runs = runs if runs is not None else (QUICK["runs"] if quick else RUNS)
    if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 1:
        raise ValueError(f"runs must be an int >= 1; got {n_runs!r}")
    budgets = QUICK["budgets"] if quick else BUDGETS
    c_budgets = QUICK["complexity_budgets"] if quick else COMPLEXITY_BUDGETS
    c_runs = runs if runs is not None else (QUICK["complexity_runs"] if quick else RUNS)
    facts: dict = {"quick": quick, "runs": n_runs, "complexity_runs": c_runs,
                   "budgets": list(budgets), "complexity_budgets": list(c_budgets),
                   "seed": seed, "workers": workers, "seconds": {}}
    clock = time.perf_counter
    t_start = clock()

    def timed(key, fn, *args, **kw):
        t0 = clock()
        res = fn(*args, **kw)
        facts["seconds"][key] = clock() - t0
        return res

    # the engine of ``iapo sweep`` / ``iapo compare``: fork-server workers, in-order lazy map
    executor = LocalExecutor(workers) if workers > 1 else None
    try:
        _make_all(out, facts, timed, budgets, c_budgets, n_runs, c_runs, seed, executor,
                  progress, quick)
    finally:
        if executor is not None:
            executor.close()
    facts["wall_seconds"] = time.perf_counter() - t_start
    write_json(out / "summary.json", facts)
    report.write_report(out / "REPORT.md", facts)
    return facts


def _make_all(out, facts, timed, budgets, c_budgets, n_runs, c_runs, seed, executor, progress,
              quick):
    from . import complexity

    facts["fig1"] = timed("fig1", fig_rank_flip, out)
    facts["fig1_cqa"] = timed("fig1_cqa", _flip_facts, "commonsenseqa")
    facts["fig2"] = timed("fig2", fig_bernoulli_heatmaps, out)
    facts["fig5"] = timed("fig5", fig_phase_diagrams, out, quick=quick)
    facts["fig7"] = timed("fig7", fig_bon_tradeoff, out)
    facts["deceive"] = timed("deceive", deceive_table, seed=seed)
    results = timed("runs_curves", run_learners, CURVE_ENVS, CURVE_LEARNERS, budgets, n_runs,
                    seed=seed, executor=executor, progress=progress)
    facts["env_seconds"] = {name: r["seconds"] for name, r in results.items()}
    facts["fig3"] = timed("fig3", fig_learning_curves, out, results)
    facts["fig4"] = timed("fig4", fig_inference_aware, out, results)
    inst = complexity.complexity_instance()
    env_path = sim.save_env(inst, out / "fig6_clear_gap_env.npz")
    os.chmod(env_path, 0o666 & ~_UMASK)
    c_res = timed("runs_complexity", run_learners, [str(env_path)], COMPLEXITY_LEARNERS,
                  c_budgets, c_runs, seed=seed, executor=executor, progress=progress)
    facts["fig6"] = timed("fig6", fig_sample_complexity, out, c_res[str(env_path)], inst,
                          env_path)


def _flip_facts(env_name: str) -> dict:
    env = sim.load_env(env_name)
    return {"env": env.name, "split": "all",
            "contexts": [_context_facts(env, r) for r in deceiving.analyze(env, "all")]}


def deceive_table(*, seed: int = 0) -> dict:
    """Which prompts deceive, per environment and context (exact, split "all").

    Real environments as shipped; synthetic ones generated from ``seed``. For each context: the
    N = 1 winner, the joint optimum, whether the N = 1 winner deceives (cost-aware), the number of
    flipping pairs; and the number of pairs deceiving in the N -> infinity sense without cost.
    """
    out = {}
    for name in CURVE_ENVS:
        env = sim.load_env(name, seed=None if name in ("math", "commonsenseqa") else seed)
        res = deceiving.analyze(env, "all")
        lim = deceiving.limit_deceptions(env, "all")
        deceivers = sorted({env.prompt_names[r.n1_prompt] for r in res if r.deceives})
        out[name] = {
            "n_prompts": env.n_prompts, "n_contexts": env.n_contexts,
            "contexts_deceived": sum(r.deceives for r in res),
            "deceivers": deceivers,
            "max_disjoint_rel": max(r.relative(r.disjoint_loss) for r in res),
            "max_prompt_only_rel": max(r.relative(r.prompt_only_loss) for r in res),
            "limit_pairs": len(lim),
            "acr_gain_over_disjoint": _acr_gain(env, res, "disjoint_value"),
            "acr_gain_over_prompt_only": _acr_gain(env, res, "prompt_only_value"),
            "contexts": [_context_facts(env, r) for r in res],
        }
    return out


def _acr_gain(env, res, attr: str) -> float:
    """Exact ceiling: 100 (ACR of the joint optimum - ACR of a fixed choice) / |ACR of it|."""
    probs = env.contexts.probs
    best = float(probs @ np.array([r.best_value for r in res]))
    other = float(probs @ np.array([getattr(r, attr) for r in res]))
    return 100.0 * (best - other) / abs(other)
