"""Built-in environments and the environment file format.

Built-in names (``load_env(name, seed=...)``):

``math``, ``commonsenseqa``
    The real majority-vote environments of the paper (Llama-3.3-70B-Instruct, 128 samples per
    prompt-query pair), shipped in ``sim/data`` (see ``sim/data/PROVENANCE.md``). ``seed=None``
    keeps the authors' train/test split; an integer seed reshuffles train ∪ test 80/20.
``synth-bernoulli``
    Binary majority vote, 32 prompts × 520 queries in easy / medium / hard tiers, |C| = 3.
``synth-categorical``
    Bi-objective best-of-N, 32 prompts × 512 queries, integer scores in [0, 4], |C| = 27.

Synthetic environments are generated from ``seed`` (a fresh environment per seed, as the paper's
200 independently generated environments); their split is drawn from the same seed.

Environment files (``save_env`` / ``load_env(path)``) are ``.npz`` archives with a
``format_version``; the raw layout of the shipped MATH / CommonsenseQA files is also accepted.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from ._validate import as_rng
from .contexts import Contexts, bon_contexts, mv_budget_contexts
from .env import Environment
from .laws import bon_laws, mv_laws

FORMAT_VERSION = 1
REAL_ENVS = {"math": "math_mv.npz", "commonsenseqa": "commonsenseqa_mv.npz"}
SYNTH_ENVS = ("synth-bernoulli", "synth-categorical")
ENV_NAMES = tuple(REAL_ENVS) + SYNTH_ENVS

__all__ = ["ENV_NAMES", "FORMAT_VERSION", "load_env", "save_env", "synth_bernoulli",
           "synth_categorical"]


def _split_seed(seed):
    """Two independent streams from one seed: environment generation and the split."""
    if isinstance(seed, np.random.SeedSequence):
        return seed.spawn(2)
    try:
        return np.random.SeedSequence(seed).spawn(2)
    except (TypeError, ValueError):
        raise ValueError(
            f"seed must be None, an int >= 0 or a SeedSequence; got {seed!r}") from None


def synth_bernoulli(*, rng=None, n_prompts: int = 32, n_queries: int = 520,
                    tier_fractions=(0.4, 0.3, 0.3), n_max: int = 32) -> Environment:
    """Synth-Bernoulli (mission.md Sec. 6): binary majority vote in easy / medium / hard tiers.

    Each query belongs to a tier (fractions ``tier_fractions``). Prompt ``p`` has one mean
    success probability per tier, drawn from U(0.65, 0.95) (easy), U(0.45, 0.65) (medium) and
    U(0.10, 0.45) (hard); on query ``x`` its success probability is that mean plus N(0, 0.05²)
    noise, clipped to [0.01, 0.99]. Cost per completion U(0.005, 0.01); cost weights 0, 0.5, 1
    (the authors' Synth-Bernoulli default).
    """
    gen = as_rng(rng)
    frac = np.asarray(tier_fractions, dtype=np.float64)
    tiers = gen.choice(3, size=n_queries, p=frac / frac.sum())
    lows, highs = np.array([0.65, 0.45, 0.10]), np.array([0.95, 0.65, 0.45])
    tier_mean = gen.uniform(lows, highs, size=(n_prompts, 3))
    theta = tier_mean[:, tiers] + 0.05 * gen.standard_normal((n_prompts, n_queries))
    theta = np.clip(theta, 0.01, 0.99)
    probs = np.stack([mv_laws(t, 2) for t in theta])
    cost = gen.uniform(0.005, 0.01, size=n_prompts)
    n_train = round(0.8 * n_queries)
    perm = gen.permutation(n_queries)
    return Environment(
        name="synth-bernoulli", kind="mv", probs=probs, correct=np.zeros(n_queries, np.int64),
        cost=cost, contexts=mv_budget_contexts({"low": 0.0, "mid": 0.5, "high": 1.0}),
        n_max=n_max, train=np.sort(perm[:n_train]), test=np.sort(perm[n_train:]),
        description="Synthetic binary majority vote, easy/medium/hard tiers",
    )


def synth_categorical(*, rng=None, n_prompts: int = 32, n_queries: int = 512,
                      n_outcomes: int = 8, o_max: float = 4.0, n_max: int = 32) -> Environment:
    """Synth-Categorical (mission.md Sec. 6): bi-objective best-of-N with integer scores.

    Prompt ``p`` draws per-objective centering U(0.5, 3.0), within-query spread U(0.2, 1.5)
    and a correlation between the two objectives U(-0.5, 0.5); outcome laws from
    :func:`sim.laws.bon_laws` (8 equiprobable outcomes per query, query spread 0.5, scores rounded
    to 0..4). Cost per completion U(0.01, 0.04); the 27 contexts of :func:`bon_contexts`.
    """
    gen = as_rng(rng)
    vals, prs = [], []
    for _ in range(n_prompts):
        v, p = bon_laws(gen.uniform(0.5, 3.0, 2), gen.uniform(0.2, 1.5, 2), n_queries,
                        correlation=gen.uniform(-0.5, 0.5), n_outcomes=n_outcomes,
                        o_max=o_max, rng=gen)
        vals.append(v)
        prs.append(p)
    cost = gen.uniform(0.01, 0.04, size=n_prompts)
    n_train = round(0.8 * n_queries)
    perm = gen.permutation(n_queries)
    return Environment(
        name="synth-categorical", kind="bon", probs=np.stack(prs), values=np.stack(vals),
        cost=cost, contexts=bon_contexts(), n_max=n_max, train=np.sort(perm[:n_train]),
        test=np.sort(perm[n_train:]),
        description="Synthetic bi-objective best-of-N, integer scores 0..4",
    )


def _read_npz(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ValueError(f"path: no environment file at {str(path)!r}") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError) as exc:
        raise ValueError(
            f"path: {str(path)!r} is not a readable environment file (.npz); it may be corrupt or "
            f"truncated ({type(exc).__name__}: {exc})"
        ) from None


def _require(data: dict, keys, path) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"path: environment file {str(path)!r} lacks field(s) {missing}")


def _scalar(data: dict, key: str, kind: type, path, default=None):
    """A scalar ``int`` or ``str`` field of an environment file (``default`` when absent)."""
    if key not in data:
        return default
    arr = np.asarray(data[key])
    ok = np.issubdtype(arr.dtype, np.integer) if kind is int else arr.dtype.kind == "U"
    if arr.ndim != 0 or not ok:
        raise ValueError(
            f"path: field {key!r} of {str(path)!r} must be a scalar {kind.__name__}; got "
            f"{arr.dtype} with shape {arr.shape}"
        )
    return kind(arr.item())


def _build(path, make) -> Environment:
    """Run ``make()``; name the file in any error its contents cause."""
    try:
        return make()
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        if msg.startswith("path:"):
            raise
        raise ValueError(f"path: {str(path)!r} holds an invalid environment: {msg}") from None


def _from_raw_mv(data: dict, name: str, path) -> Environment:
    """The layout of the shipped MATH / CommonsenseQA files (see sim/data/PROVENANCE.md)."""
    _require(data, ["probs_train", "answers_train", "probs_test", "answers_test",
                    "cost_per_prompt", "context_names", "cost_weights", "context_probs", "n_max"],
             path)
    n_max = _scalar(data, "n_max", int, path)
    description = _scalar(data, "description", str, path, "")

    def make():
        probs = np.concatenate([data["probs_train"], data["probs_test"]], axis=1)
        correct = np.concatenate([data["answers_train"], data["answers_test"]])
        n_tr = data["answers_train"].shape[0]
        names = tuple(str(s) for s in data["context_names"])
        ctx = Contexts(np.ones((len(names), 1)), data["cost_weights"], data["context_probs"],
                       names)
        return Environment(
            name=name, kind="mv", probs=probs, correct=correct, cost=data["cost_per_prompt"],
            contexts=ctx, n_max=n_max, train=np.arange(n_tr),
            test=np.arange(n_tr, correct.shape[0]), description=description,
        )

    return _build(path, make)


def _from_env_file(data: dict, path) -> Environment:
    _require(data, ["format_version", "kind", "name", "probs", "cost", "ctx_weights",
                    "ctx_cost_weight", "ctx_probs", "ctx_names", "n_max", "train", "test"], path)
    version = _scalar(data, "format_version", int, path)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"path: {str(path)!r} has format_version {version}; this iapo-sim reads version "
            f"{FORMAT_VERSION}"
        )
    kind = _scalar(data, "kind", str, path)
    if kind not in ("mv", "bon"):
        raise ValueError(f"path: field 'kind' of {str(path)!r} must be 'mv' or 'bon'; got {kind!r}")
    _require(data, ["correct"] if kind == "mv" else ["values"], path)
    name = _scalar(data, "name", str, path)
    n_max = _scalar(data, "n_max", int, path)
    tie = _scalar(data, "tie", str, path, "random")
    description = _scalar(data, "description", str, path, "")

    def make():
        ctx = Contexts(data["ctx_weights"], data["ctx_cost_weight"], data["ctx_probs"],
                       tuple(str(s) for s in data["ctx_names"]))
        return Environment(
            name=name, kind=kind, probs=data["probs"], cost=data["cost"], contexts=ctx,
            n_max=n_max, train=data["train"], test=data["test"], correct=data.get("correct"),
            values=data.get("values"), tie=tie,
            prompt_names=tuple(str(s) for s in data.get("prompt_names", ())),
            description=description,
        )

    return _build(path, make)


def save_env(env: Environment, path) -> Path:
    """Write ``env`` to an ``.npz`` environment file atomically (temp file, then rename)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path: environment files end in .npz; got {str(path)!r}")
    fields = dict(
        format_version=np.int64(FORMAT_VERSION), kind=np.str_(env.kind), name=np.str_(env.name),
        probs=env.probs, cost=env.cost, ctx_weights=env.contexts.weights,
        ctx_cost_weight=env.contexts.cost_weight, ctx_probs=env.contexts.probs,
        ctx_names=np.array(env.contexts.names), n_max=np.int64(env.n_max), train=env.train,
        test=env.test, tie=np.str_(env.tie), prompt_names=np.array(env.prompt_names),
        description=np.str_(env.description),
    )
    if env.kind == "mv":
        fields["correct"] = env.correct
    else:
        fields["values"] = env.values
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as exc:
        raise ValueError(f"path: cannot write {str(path)!r} ({exc.strerror})") from None
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **fields)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_env(name_or_path, *, seed=None) -> Environment:
    """Load a built-in environment by name or an environment file by path.

    Parameters
    ----------
    name_or_path : str or path-like
        One of :data:`ENV_NAMES`, or a path to an ``.npz`` environment file.
    seed : None, int or SeedSequence
        Real environments and files: ``None`` keeps the stored split, otherwise train ∪ test is
        reshuffled 80/20 from ``seed``. Synthetic environments: generation and split both derive
        from ``seed`` (``None`` draws fresh entropy).

    Raises
    ------
    ValueError
        For an unknown name, a missing, corrupt or truncated file, or invalid contents.
    """
    key = str(name_or_path)
    if key in REAL_ENVS:
        ref = resources.files("sim") / "data" / REAL_ENVS[key]
        with resources.as_file(ref) as p:
            env = _from_raw_mv(_read_npz(p), key, p)
    elif key in SYNTH_ENVS:
        gen_seed, _ = _split_seed(seed)
        make = synth_bernoulli if key == "synth-bernoulli" else synth_categorical
        return make(rng=gen_seed)
    elif key.endswith(".npz") or os.path.exists(key):
        data = _read_npz(key)
        if "probs_train" in data:
            env = _from_raw_mv(data, Path(key).stem, key)
        else:
            env = _from_env_file(data, key)
    else:
        raise ValueError(
            f"name_or_path: unknown environment {key!r}; use one of {ENV_NAMES} or a path to an "
            ".npz environment file"
        )
    if seed is not None:
        env = env.resplit(rng=_split_seed(seed)[1])
    return env
