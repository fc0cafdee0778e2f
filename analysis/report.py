"""``REPORT.md``: the numbers behind every figure of ``iapo figures``, as markdown tables.

:func:`write_report` takes the dict :func:`analysis.figures.make_all` collects and writes the
report atomically (temporary file, then rename).
"""

from __future__ import annotations

import math

__all__ = ["render", "write_report"]


def _num(x, fmt: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return format(x, fmt)


def _pct(x, fmt: str = ".1f") -> str:
    return "—" if x is None else f"{format(x, fmt)}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _budget(x) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _flip_table(ctxs: list[dict]) -> str:
    rows = []
    for c in ctxs:
        rows.append([
            c["context"], f"{c['n1_prompt']} ({_num(c['n1_value'])})",
            f"{c['best_prompt']}, N={c['best_n']} ({_num(c['best_value'])})",
            f"{c['disjoint_prompt']}, N={c['disjoint_n']} ({_num(c['disjoint_value'])})",
            f"{_num(c['disjoint_loss'])} ({_pct(100 * c['disjoint_rel'], '.2f')})",
            f"{_num(c['prompt_only_loss'])} ({_pct(100 * c['prompt_only_rel'], '.2f')})",
            "—" if c["crossover_n1_vs_best"] is None else str(c["crossover_n1_vs_best"]),
            str(c["n_flips"]), "yes" if c["deceives"] else "no",
        ])
    return _table(["context", "best at N=1 (Q)", "joint optimum (Q)", "disjoint choice (Q)",
                   "disjoint loss (rel.)", "prompt-only loss (rel.)",
                   "crossover N (N=1 winner vs optimum prompt)", "flipping pairs",
                   "N=1 winner deceives"], rows)


def _section_fig1(f: dict) -> str:
    s = ["## Figure 1 — rank flip on real MATH (`fig1_rank_flip.*`)\n",
         "Exact Q(c, p, N) on all 316 queries (the shipped environment, Llama-3.3-70B-Instruct, "
         "128 samples per prompt–query pair). *Disjoint* = best prompt at N = 1 by the "
         "cost-aware objective, then its best N; *prompt-only* = best prompt at N = 1, deployed "
         "at N = 1. Losses are against the joint optimum, relative in parentheses.\n",
         _flip_table(f["fig1"]["contexts"]),
         "\nThe same analysis on CommonsenseQA (no figure):\n",
         _flip_table(f["fig1_cqa"]["contexts"])]
    return "\n".join(s)


def _section_deceive(f: dict) -> str:
    d = f["deceive"]
    rows = []
    for name, e in d.items():
        rows.append([name, f"{e['contexts_deceived']} / {e['n_contexts']}",
                     ", ".join(e["deceivers"]) or "none",
                     _pct(100 * e["max_disjoint_rel"], ".2f"),
                     _pct(100 * e["max_prompt_only_rel"], ".2f"), str(e["limit_pairs"])])
    s = ["## Which prompts deceive\n",
         "A prompt *deceives* in a context when it has the best cost-aware utility at N = 1 but "
         "the joint optimum (prompt, N) uses another prompt and is strictly better than the "
         "deceiver at its best N. Exact, all queries; synthetic environments generated with "
         f"seed {f['seed']}. *Limit pairs*: ordered pairs (a, b) per context with a ahead at "
         "N = 1 and strictly behind as N → ∞ without cost (MV: mass of queries whose correct "
         "answer is the strict mode, + 1/t for t-way ties; BoN: mean top of the support).\n",
         _table(["environment", "contexts where the N=1 winner deceives", "deceiving prompts",
                 "max disjoint loss", "max prompt-only loss", "limit pairs"], rows)]
    for name in ("synth-bernoulli", "synth-categorical"):
        s += [f"\nPer context, {name}:\n", _flip_table(d[name]["contexts"])]
    return "\n".join(s)


def _section_fig2(f: dict) -> str:
    g = f["fig2"]
    return "\n".join([
        "## Figure 2 — Bernoulli heat maps (`fig2_bernoulli_heatmaps.*`)\n",
        "Majority vote with fair-coin ties, Acc(θ, 2m+1) = I_θ(m+1, m+1), Acc(θ, 2m) = "
        "Acc(θ, 2m−1); best-of-N with a binary reward 1 − (1 − θ)^N; no cost; N ≤ "
        f"{g['n_max']}.\n",
        _table(["θ", *(f"MV at N={n}" for n in g["shown_n"])],
               [[t, *(_num(v) for v in vals)] for t, vals in g["mv_at"].items()]),
        "\n" + _table(["θ", *(f"BoN at N={n}" for n in g["shown_n"])],
                      [[t, *(_num(v) for v in vals)] for t, vals in g["bon_at"].items()]),
        "\nThe paper's two-query example (prompt 1 succeeds 40% / 90%, prompt 2 62% / 62%): "
        f"at N = 1 {g['toy_prompt1_n1']:.2f} vs {g['toy_prompt2_n1']:.2f}; with majority vote at "
        f"N = 10 {g['toy_prompt1_n10']:.4f} vs {g['toy_prompt2_n10']:.4f} (paper: ≈ 0.63 vs "
        "≈ 0.77) — the ranking flips.\n",
    ])


def _acr_table(e: dict) -> str:
    budgets = e["budgets"]
    rows = []
    for ln, per in e["learners"].items():
        cells = []
        for p in per:
            if p["acr"] is None:
                cells.append("—")
                continue
            star = "" if p["p_vs_psst"] is None else (" *" if p["p_vs_psst"] < 0.05 else "")
            se = "" if p["se"] is None else f" ± {p['se']:.4f}"
            cells.append(f"{p['acr']:.4f}{se}{star}")
        rows.append([ln, *cells])
    return _table(["learner", *(f"T = {b:,}" for b in budgets)], rows)


def _section_fig3(f: dict) -> str:
    s = ["## Figure 3 — learning curves (`fig3_learning_curves.*`)\n",
         f"Exact test-split ACR (mean ± standard error over {f['runs']} replicates); `*` = "
         "differs from PSST at the same budget (paired two-sided Wilcoxon signed-rank test, "
         "p < 0.05; pairs share the replicate's split or generated environment). `—` = the "
         "budget is below the learner's minimum (plain SH and Successive Rejects over every "
         "(prompt, N) arm of every context, without sharing, need hundreds of thousands of "
         "completions on these environments; see `min_budget`).\n"]
    for name, e in f["fig3"].items():
        s += [f"\n### {name}\n", _acr_table(e)]
    return "\n".join(s)


def _section_fig4(f: dict) -> str:
    g = f["fig4"]
    rows = []
    for key, m in g["max"].items():
        aware, agn = key.split("_over_")
        rows.append([aware, agn, _pct(m["gain_pct"]), m["env"] or "—", _budget(m["budget"])])
    s = ["## Figure 4 — inference-aware against inference-agnostic (`fig4_inference_aware.*`)\n",
         "Gain = 100 (ACR_aware − ACR_agnostic) / |ACR_agnostic| of the mean ACRs at the same "
         "budget. *Disjoint* = the `disjoint` learner (prompt at N = 1 by the cost-aware "
         "objective, then N); *prompt-only* = TRIPLE-SH (N = 1). Largest gain over environments "
         "and budgets:\n",
         _table(["IAPO learner", "against", "largest gain", "environment", "budget"], rows),
         "\nThe exact ceiling (no learning error): ACR of the joint optimum against the ACR of "
         "the exact disjoint choice and of the exact prompt-only choice (best N = 1 prompt at "
         "N = 1), on all queries:\n",
         _table(["environment", "optimum over disjoint", "optimum over prompt-only"],
                [[name, _pct(e["acr_gain_over_disjoint"], ".2f"),
                  _pct(e["acr_gain_over_prompt_only"], ".2f")]
                 for name, e in f["deceive"].items()]),
         "\nPer environment and budget (PSST):\n"]
    for name, per in g["per_env"].items():
        s.append(f"\n{name}:\n")
        s.append(_table(["budget", "over disjoint", "over PSST+K1", "over prompt-only (N=1)",
                         "over TRIPLE (N=random)"],
                        [[_budget(r["budget"]), _pct(r["psst_over_disjoint"]),
                          _pct(r["psst_over_psst-k1"]), _pct(r["psst_over_triple-n1"]),
                          _pct(r["psst_over_triple-nrandom"])] for r in per]))
    return "\n".join(s)


def _section_fig5(f: dict) -> str:
    g = f["fig5"]
    rows = [
        ["MV, exact at N = " + str(g["n_max"]), _pct(100 * g["mv_deceive_share_n"]),
         _pct(100 * g["mv_agree_n"])],
        ["MV, exact at N = " + str(g["n_large"]), _pct(100 * g["mv_deceive_share_large"]),
         _pct(100 * g["mv_agree_large"])],
        ["MV, theory (N → ∞)", _pct(100 * g["mv_deceive_share_theory"]), "—"],
        [f"BoN Gaussian, exact at N = {g['n_max']}", _pct(100 * g["bon_deceive_share_theory"]),
         _pct(100 * g["bon_agree_gauss"])],
        [f"BoN scores clipped to [0, 4], exact at N = {g['n_max']}",
         _pct(100 * g["bon_deceive_share_clipped"]), _pct(100 * g["bon_agree_clipped"])],
    ]
    return "\n".join([
        "## Figure 5 — deceiving-prompt phase diagrams (`fig5_phase_diagrams.*`)\n",
        f"Grid {g['grid']} × {g['grid']}. MV: probit latent accuracy q = Φ(μ + τZ), reference "
        f"B = (μ, τ) = {tuple(g['mv_ref'])}; exact curves by quadrature; theory: A deceives B iff "
        "μ_A/√(1+τ_A²) > μ_B/√(1+τ_B²) and μ_A/τ_A < μ_B/τ_B. BoN: reference B = (μ, σ) = "
        f"{tuple(g['bon_ref'])}; theory (location-scale, E[BoN_N] = μ + σ e_N): A deceives B "
        f"iff μ_A > μ_B, σ_A < σ_B and e_N > (μ_A − μ_B)/(σ_B − σ_A) by N = {g['n_max']}.\n",
        _table(["panel", "share of the plane where A deceives B",
                "agreement with the theory region"], rows),
        "\nAt N = 32 the exact MV region is smaller than the N → ∞ theory region (crossovers "
        "near the boundary come late); at N = 1001 they agree almost everywhere. Clipping the "
        "scores to [0, 4] bounds the best-of-N gain of high-spread prompts, which shrinks the "
        "region slightly.\n",
    ])


def _section_fig6(f: dict) -> str:
    g = f["fig6"]
    budgets = g["budgets"]
    rows = []
    for name, m in g["error"].items():
        cells = {int(b): f"{r:.3f} [{lo:.3f}, {hi:.3f}]"
                 for b, r, lo, hi in zip(m["budget"], m["rate"], m["lo"], m["hi"], strict=True)}
        rows.append([name, *(cells.get(int(b), "—") for b in budgets)])
    reach_rows = []
    for name, r in g["reach"].items():
        ratio = g["ratio"][name]
        r = math.inf if r is None else r  # JSON stores "never reached" (inf) as null
        base = g["reach"].get("psst")
        if ratio is not None:
            ratio_txt = f"{ratio:.2f}"
        elif not math.isfinite(r) and base is not None and math.isfinite(base):
            ratio_txt = f"> {g['max_budget'] / base:.1f}"
        else:
            ratio_txt = "—"
        reach_rows.append([name, _budget(r) if math.isfinite(r) else
                           f"> max budget ({g['max_budget']:,})", ratio_txt])
    return "\n".join([
        "## Figure 6 — sample complexity (`fig6_sample_complexity.*`)\n",
        f"Clear-gap instance `{g['env_file']}` (written next to the figure): {g['n_prompts']} "
        f"prompts × N ≤ {g['n_max']}, {g['n_contexts']} contexts, every query with the same "
        "answer law (so train and test Q tables coincide and the error is pure best-arm error); "
        "prompt p0 is best at N = 1 but its correct answer is not the mode (deceiver), p1 is "
        "optimal in every context. Error = the policy is suboptimal in some context; "
        f"{g['runs']} runs per budget; {int(100 * (1 - g['alpha']))}% Clopper–Pearson "
        "intervals.\n",
        _table(["learner", *(f"T = {b:,}" for b in budgets)], rows),
        f"\nBudget to reach error ≤ δ = {g['delta']} (log-budget interpolation) and ratio to "
        "PSST:\n",
        _table(["learner", "budget", "ratio to PSST"], reach_rows),
        f"\nTheorem 1: H1 = {g['h1']:.4g}, H2 = {g['h2']:.4g}, R = {g['rounds']}; the bound "
        f"3|C|R exp(−T/(R min(2|P|H1, 8|C|H2))) reaches {g['delta']} at T = "
        f"{g['theorem1_budget']:.3g}. Karnin's SH bound without sharing (classic H2 = "
        f"{g['classic_h2']:.4g}, T/(|C| N_max) unit samples per context) reaches it at "
        f"T = {g['plain_sh_budget']:.3g}.{_looseness(g)}\n",
    ])


def _looseness(g: dict) -> str:
    r = g["reach"].get("psst")
    if r is None or not math.isfinite(r):
        return ""
    return (f" PSST's measured error reaches {g['delta']} at T ≈ {r:,.0f}, so the Theorem 1 "
            f"budget is {g['theorem1_budget'] / r:,.0f} times larger than needed here: the "
            "bound has the right form but loose constants, and the measurement, not the bound, "
            "is the comparison between learners.")


def _section_fig7(f: dict) -> str:
    g = f["fig7"]
    rows = [[c["prompt"], f"{c['w']:.1f}", str(c["best_n"]), _num(c["best_q"]), _num(c["q_n1"])]
            for c in g["curves"]]
    return "\n".join([
        "## Figure 7 — best-of-N trade-off curves (`fig7_bon_tradeoff.*`)\n",
        f"synth-categorical generated with seed {g['env_seed']}, budget regime '{g['regime']}' "
        f"(cost weight {g['cost_weight']:g}); context (w, 1 − w). Prompts "
        f"{g['prompts'][0]} and {g['prompts'][1]}: the pair whose preference reverses most "
        "between w = 0.9 and w = 0.1.\n",
        _table(["prompt", "w", "best N", "Q at best N", "Q at N = 1"], rows),
    ])


def _section_runs(f: dict) -> str:
    secs = dict(f["seconds"])
    rows = []
    for k, v in secs.items():
        rows.append([k, f"{v:.1f}"])
        if k == "runs_curves":
            rows += [[f"runs_curves: {name}", f"{t:.1f}"]
                     for name, t in f.get("env_seconds", {}).items()]
    mode = "quick (smoke run; too few replicates for conclusions)" if f["quick"] else "default"
    return "\n".join([
        "## How this was produced\n",
        f"`iapo figures` in {mode} mode: {f['runs']} replicates per learner and budget for "
        f"figures 3–4 (budgets {', '.join(f'{b:,}' for b in f['budgets'])}), "
        f"{f['complexity_runs']} for figure 6 (budgets "
        f"{', '.join(f'{b:,}' for b in f['complexity_budgets'])}); sweep seed {f['seed']}; "
        f"{f['workers']} worker process(es). Real environments: each replicate reshuffles "
        "train ∪ test 80/20; synthetic environments: each replicate is an independently "
        "generated environment (as the paper's 200 generated environments), its split drawn "
        "from the same seed. Every ACR is exact (test-split Q table), no Monte Carlo "
        "evaluation noise.\n",
        _table(["step", "seconds (wall)"],
               rows + [["total (wall)", f"{f['wall_seconds']:.1f}"]]),
    ])


def render(facts: dict) -> str:
    """The markdown text of the report."""
    parts = ["# iapo-sim: figures and the numbers behind them\n",
             "Produced by `iapo figures`; every table below is regenerated with the figures. "
             "Relative losses and gains are in percent of the reference's utility.\n",
             _section_runs(facts), _section_fig1(facts), _section_deceive(facts),
             _section_fig2(facts), _section_fig3(facts), _section_fig4(facts),
             _section_fig5(facts), _section_fig6(facts), _section_fig7(facts)]
    return "\n".join(parts)


def write_report(path, facts: dict):
    """Write :func:`render` ``(facts)`` to ``path`` atomically."""
    from .figures import write_text

    return write_text(path, render(facts))
