"""Environments from sample logs ("bring your own samples").

A sample log has one row per LLM completion. Its columns (names configurable; defaults shown):

=============  ==========================================================================
``prompt``     prompt id
``query``      query id
``answer``     majority vote: the answer extracted from the completion (may be empty)
``gold``       majority vote: the gold answer of the query (the same on every row of a query)
``score_*``    best of N: one column per objective score (a list of names, or a prefix)
``tokens``     the completion's token count (a non-negative number)
``sample``     optional: a completion id, unique within its (prompt, query) pair
=============  ==========================================================================

Supported files: CSV (``.csv``), tab-separated (``.tsv``), JSON Lines (``.jsonl``, ``.ndjson``),
each optionally gzip-compressed (``.gz``), and Parquet (``.parquet``, ``.pq``) when ``pyarrow``
is installed. :func:`from_samples` estimates the response law of every (prompt, query) pair and
returns an :class:`~sim.env.Environment`; :func:`sim.save_env` writes it to an ``.npz`` file that
every ``iapo`` subcommand accepts in place of a built-in name.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ._validate import TIE_RULES, check_choice, check_int, check_real
from .contexts import MV_BUDGET_COST_WEIGHTS, Contexts, bon_contexts, mv_budget_contexts
from .env import KINDS, Environment

__all__ = ["FORMATS", "REFERENCE_MAX_COST", "default_contexts", "from_samples", "read_log"]

#: Log formats, by name; ``fmt=None`` infers one from the file suffix.
FORMATS = ("csv", "tsv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".parquet": "parquet", ".pq": "parquet"}

#: Per-completion cost of the most expensive prompt when ``cost_scale=None``: the convention of
#: the released MATH and CommonsenseQA environments (their largest ``cost_per_prompt`` is 0.01).
REFERENCE_MAX_COST = 0.01

#: How many missing pairs / dropped queries an error or warning lists before "and k more".
_SHOW = 5


def _fail(label: str, where: str | None, problem: str) -> ValueError:
    """The one-line error of a bad log: file, line (if known) and problem."""
    return ValueError(f"{label}: {where}: {problem}" if where else f"{label}: {problem}")


def _listing(items, show: int = _SHOW) -> str:
    items = list(items)
    head = ", ".join(items[:show])
    return head if len(items) <= show else f"{head} and {len(items) - show} more"


# ---------------------------------------------------------------------------------- readers
def _log_format(path: Path, fmt: str | None) -> tuple[str, bool]:
    gz = path.suffix == ".gz"
    if fmt is not None:
        return check_choice(fmt, "fmt", FORMATS), gz
    suffix = Path(path.stem).suffix if gz else path.suffix
    if suffix.lower() not in _SUFFIXES:
        raise ValueError(
            f"fmt: cannot infer the format of {str(path)!r} from its suffix; name it .csv, .tsv, "
            f".jsonl, .ndjson or .parquet (optionally + .gz) or pass fmt (--format), one of "
            f"{FORMATS}"
        )
    return _SUFFIXES[suffix.lower()], gz


def _open_text(path: Path, gz: bool):
    if gz:
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed by the caller)


def _read_delimited(path: Path, gz: bool, label: str, delimiter: str):
    """Yield ``(columns, header_line)`` once, then ``(where, row dict)`` per data row."""
    with _open_text(path, gz) as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        header = None
        try:
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # blank line
                where = f"line {reader.line_num}"
                if header is None:
                    header = [h.strip() for h in record]
                    named = [h for h in header if h]
                    dup = sorted({h for h in named if named.count(h) > 1})
                    if dup:
                        raise _fail(label, where, f"duplicate column name(s) {dup}")
                    yield header, where
                    continue
                if len(record) != len(header):
                    raise _fail(label, where, f"expected {len(header)} fields, found "
                                f"{len(record)} (truncated or malformed row)")
                yield where, dict(zip(header, record, strict=True))
        except csv.Error as exc:
            raise _fail(label, f"line {reader.line_num}",
                        f"malformed CSV ({exc}); truncated row?") from None
        if header is None:
            raise _fail(label, None, "empty file (no header and no rows)")


def _read_jsonl(path: Path, gz: bool, label: str):
    with _open_text(path, gz) as fh:
        first = True
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _fail(label, f"line {i}", f"not valid JSON ({exc.msg} at column "
                            f"{exc.colno}); truncated line?") from None
            if not isinstance(obj, dict):
                raise _fail(label, f"line {i}",
                            f"expected one JSON object per line, found {type(obj).__name__}")
            if first:
                yield list(obj), f"line {i}"
                first = False
            yield f"line {i}", obj
        if first:
            raise _fail(label, None, "empty file (no rows)")


def _read_parquet(path: Path, label: str):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise _fail(label, None, "reading Parquet needs pyarrow (pip install pyarrow); or "
                    "convert the log to CSV or JSON Lines") from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(label, None, f"not a readable Parquet file ({msg})") from None
    if table.num_rows == 0:
        raise _fail(label, None, "empty file (no rows)")
    yield list(table.column_names), None
    for i, row in enumerate(table.to_pylist(), 1):
        yield f"row {i}", row


def _read_mappings(rows: Iterable, label: str):
    first = True
    for i, row in enumerate(rows, 1):
        if not isinstance(row, Mapping):
            raise _fail(label, f"row {i}", f"expected a mapping, found {type(row).__name__}")
        if first:
            yield list(row), f"row {i}"
            first = False
        yield f"row {i}", row
    if first:
        raise _fail(label, None, "no rows")


def _guarded(label: str, rows):
    """Re-raise decoding and decompression failures as one-line errors naming the file."""
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise _fail(label, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile, a truncated .gz, an unreadable file
        raise _fail(label, None, f"cannot read the file ({type(exc).__name__}: {exc})") from None


def read_log(source, *, fmt: str | None = None):
    """Open a sample log: ``(label, rows)``.

    ``rows`` is an iterator whose first item is ``(columns, where)`` (the column names and where
    they were read) and whose next items are ``(where, row)`` with ``where`` like ``"line 7"``
    (``"row 7"`` for Parquet and in-memory rows) and ``row`` a mapping column -> value.

    Parameters
    ----------
    source : path-like or iterable of mappings
        A log file, or in-memory rows (e.g. ``DataFrame.to_dict("records")``).
    fmt : {"csv", "tsv", "jsonl", "parquet"} or None
        Format of a file; ``None`` infers it from the suffix.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        label = str(path)
        kind, gz = _log_format(path, fmt)
        if not path.is_file():
            raise _fail(label, None, "no such file")
        if kind == "parquet":
            return label, _read_parquet(path, label)
        if kind == "jsonl":
            return label, _guarded(label, _read_jsonl(path, gz, label))
        return label, _guarded(label, _read_delimited(path, gz, label,
                                                      "," if kind == "csv" else "\t"))
    if isinstance(source, Mapping) or not isinstance(source, Iterable):
        raise ValueError("source must be a path to a log file or an iterable of row mappings; "
                         f"got {type(source).__name__}")
    return "<rows>", _read_mappings(source, "<rows>")


# ---------------------------------------------------------------------------------- fields
def _text(value, col: str, where: str, label: str, casefold: bool = False) -> str:
    """A value as a normalised string: stripped; JSON-style for numbers; optionally casefolded."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        raise _fail(label, where, f"column {col!r}: expected a string or a number, found "
                    f"{type(value).__name__}")
    return text.casefold() if casefold else text


def _field(row, col: str, where: str, label: str):
    try:
        return row[col]
    except KeyError:
        raise _fail(label, where, f"missing column {col!r}") from None


def _number(value, col: str, where: str, label: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        x = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            x = float(value.strip())
        except ValueError:
            raise _fail(label, where,
                        f"column {col!r}: {value.strip()!r} is not a number") from None
    else:
        shown = "an empty value" if value is None or value == "" else repr(value)
        raise _fail(label, where, f"column {col!r}: expected a number, found {shown}")
    if not math.isfinite(x):
        raise _fail(label, where, f"column {col!r}: {value!r} is not a finite number")
    return x


def _resolve_columns(columns, where, label, kind, cols, objective_cols, objective_prefix):
    """The task kind and the objective columns, or an error naming the missing columns."""
    present = set(columns)
    if objective_cols is not None:
        objectives = [str(c) for c in objective_cols]
        if not objectives:
            raise ValueError("objective_cols must name at least one column")
    else:
        objectives = [c for c in columns if objective_prefix and c.startswith(objective_prefix)]
    has_mv = cols["answer"] in present
    has_bon = bool(objectives) and (objective_cols is None or bool(set(objectives) & present))
    if kind is None:
        if has_mv and has_bon:
            raise _fail(label, where, f"both an answer column {cols['answer']!r} and objective "
                        f"columns {objectives} are present; pass kind='mv' or kind='bon'")
        if not (has_mv or has_bon):
            what = (objectives if objective_cols is not None
                    else f"columns starting with {objective_prefix!r}")
            raise _fail(label, where, f"no answer column {cols['answer']!r} (majority vote) and "
                        f"no objective columns ({what}) (best of N); found columns {columns}")
        kind = "mv" if has_mv else "bon"
    check_choice(kind, "kind", KINDS)
    need = [cols["prompt"], cols["query"], cols["tokens"]]
    need += [cols["answer"], cols["gold"]] if kind == "mv" else objectives
    missing = [c for c in need if c not in present]
    if kind == "bon" and not objectives:
        missing.append(f"{objective_prefix}*")
    if missing:
        raise _fail(label, where, f"missing column(s) {missing}; found columns {columns}")
    return kind, objectives


# ---------------------------------------------------------------------------------- contexts
def default_contexts(kind: str, objective_names=()) -> Contexts:
    """The contexts :func:`from_samples` uses unless given others.

    Majority vote and best of N with one objective: :func:`mv_budget_contexts` (weight 1 on the
    objective; cost weights 0, 0.2, 1 for low / mid / high). Two objectives:
    :func:`bon_contexts` (the paper's 27 contexts, weights ``(w, 1 - w)`` for w = 0.1..0.9 × the
    three budget regimes). K >= 3 objectives: for each budget regime, equal weights ``1/K`` and,
    for each objective k, ``1/2`` on k and ``1/(2(K-1))`` on each other one: ``3 (K + 1)``
    uniform contexts.
    """
    check_choice(kind, "kind", KINDS)
    k = 1 if kind == "mv" else len(objective_names)
    if k < 1:
        raise ValueError("objective_names must name at least one objective")
    if k == 1:
        return mv_budget_contexts()
    if k == 2:
        return bon_contexts()
    rows = [np.full(k, 1.0 / k)] + [
        np.where(np.arange(k) == j, 0.5, 0.5 / (k - 1)) for j in range(k)
    ]
    labels = ["equal"] + [f"{name}+" for name in objective_names]
    weights, costs, names = [], [], []
    for regime, cw in MV_BUDGET_COST_WEIGHTS.items():
        for row, lab in zip(rows, labels, strict=True):
            weights.append(row)
            costs.append(cw)
            names.append(f"{lab}/{regime}")
    n = len(names)
    return Contexts(np.array(weights), np.array(costs), np.full(n, 1.0 / n), tuple(names))


# ---------------------------------------------------------------------------------- import
def _pair(prompt_ids, query_ids, p, x) -> str:
    return f"({prompt_ids[p]!r}, {query_ids[x]!r})"


def from_samples(source, *, kind: str | None = None, fmt: str | None = None,
                 prompt_col: str = "prompt", query_col: str = "query",
                 answer_col: str = "answer", gold_col: str = "gold",
                 tokens_col: str = "tokens", sample_col: str | None = "sample",
                 objective_cols=None, objective_prefix: str = "score_",
                 casefold: bool = False, alpha: float = 0.0, cost_scale: float | None = None,
                 n_max: int = 32, drop_incomplete: bool = False, contexts: Contexts | None = None,
                 train_fraction: float = 0.8, tie: str = "random", name: str | None = None,
                 rng=None) -> Environment:
    """Build an environment from a log of sampled completions (one row per completion).

    Parameters
    ----------
    source : path-like or iterable of mappings
        A CSV / TSV / JSON Lines / Parquet log (see :mod:`sim.samples`), or in-memory rows.
    kind : {"mv", "bon"} or None
        Majority vote or best of N. ``None``: "mv" if the answer column exists, "bon" if
        objective columns exist (an error if both or neither).
    fmt : {"csv", "tsv", "jsonl", "parquet"} or None
        File format; ``None`` infers it from the suffix (``.gz`` is decompressed).
    prompt_col, query_col, answer_col, gold_col, tokens_col : str
        Column names (defaults ``prompt``, ``query``, ``answer``, ``gold``, ``tokens``).
    sample_col : str or None
        Optional completion-id column (default ``sample``), used only if present (``None``
        ignores it): two rows with the same (prompt, query, sample) are duplicates and an error.
        Without it rows are not checked for duplicates: identical rows are legitimate samples
        (two completions may well give the same answer with the same token count).
    objective_cols : sequence of str or None
        Best of N: the objective score columns, in objective order. ``None``: every column whose
        name starts with ``objective_prefix`` (default ``score_``), in file order.
    casefold : bool
        Majority vote: compare answers case-insensitively (``str.casefold``). Answers and gold are
        always compared as stripped strings; JSON numbers are written as JSON (``42`` and ``42.0``
        are different answers, as are ``"42"`` and ``"42.0"``).
    alpha : float >= 0
        Additive smoothing: each category of a query (MV: the observed answers of any prompt plus
        the gold answer; BoN: the observed outcome vectors of any prompt) gets ``alpha`` pseudo-
        counts in every prompt's law.
    cost_scale : float > 0 or None
        Cost of one completion = ``cost_scale`` × mean token count of the prompt. ``None``
        (default) scales the mean token counts so that the most expensive prompt costs
        :data:`REFERENCE_MAX_COST` = 0.01, the convention of the released MATH / CommonsenseQA
        environments whose cost weights (0, 0.2, 1) the default contexts use.
    n_max : int >= 1
        Largest N considered (default 32). A warning names the pairs with fewer samples.
    drop_incomplete : bool
        If some (prompt, query) pairs have no sample: ``False`` refuses (the error lists them),
        ``True`` drops the queries not covered by every prompt (with a warning).
    contexts : Contexts or None
        Default: :func:`default_contexts`.
    train_fraction : float in (0, 1)
        Share of queries in the train split (default 0.8, as the paper), drawn from ``rng``.
    tie : {"random", "pessimistic"}
        MV tie rule of the environment.
    name : str or None
        Environment name; default the file's stem.
    rng : None, int, SeedSequence or Generator
        Seed of the train/test split.

    Returns
    -------
    Environment
        MV: ``probs[p, x, c]`` is the estimated law of answer ``c`` (the gold answer is
        ``c = 0``, the others sorted; queries with fewer categories are padded with
        zero-probability ones), ``correct = 0``. BoN: ``values[p, x, m]`` the outcome vectors
        observed on query ``x`` (sorted; padding repeats the first with probability 0) and
        ``probs[p, x, m]`` their empirical law. Prompts and queries keep their first-appearance
        order; ``prompt_names`` are the prompt ids.

    Raises
    ------
    ValueError
        One line naming the file, the line and the problem: missing columns, an empty file,
        a non-numeric score or token count, a negative token count, a query with two different
        gold answers, an empty gold answer or id, a duplicate (prompt, query, sample), a line that
        does not parse (truncated JSON, a CSV row with the wrong number of fields); or missing
        (prompt, query) pairs without ``drop_incomplete``.

    Notes
    -----
    The estimate of each pair is the empirical law of its completions (plus ``alpha``); the
    exact Q table of the result (paper Eq. 3, :meth:`Environment.q_table`) converges to the true
    one as the samples per pair grow, with error at most ``N · TV`` for accuracies in [0, 1]
    (coupling of ``N`` i.i.d. draws). The cost of a prompt averages its per-pair mean token
    counts over the kept queries (a pull draws the query uniformly), which equals the mean over
    its completions when every pair has as many samples.
    """
    if kind is not None:
        check_choice(kind, "kind", KINDS)
    check_choice(tie, "tie", TIE_RULES)
    alpha = check_real(alpha, "alpha", low=0.0, high=np.inf, closed="left")
    if cost_scale is not None:
        cost_scale = check_real(cost_scale, "cost_scale", low=0.0, high=np.inf, closed="none")
    n_max = check_int(n_max, "n_max", low=1)
    check_real(train_fraction, "train_fraction", low=0.0, high=1.0, closed="none")
    if contexts is not None and not isinstance(contexts, Contexts):
        raise ValueError("contexts must be a sim.Contexts or None")
    cols = {"prompt": prompt_col, "query": query_col, "answer": answer_col, "gold": gold_col,
            "tokens": tokens_col}
    label, rows = read_log(source, fmt=fmt)
    columns, header_where = next(rows)
    kind, objectives = _resolve_columns(columns, header_where, label, kind, cols, objective_cols,
                                        objective_prefix)
    use_sample = sample_col is not None and sample_col in columns

    prompt_idx: dict[str, int] = {}
    query_idx: dict[str, int] = {}
    gold: dict[int, tuple[str, str]] = {}
    seen: dict[tuple[int, int, str], str] = {}
    counts: dict[tuple[int, int], dict] = {}
    tokens: dict[tuple[int, int], float] = {}
    n_rows = 0
    for where, row in rows:
        pid = _text(_field(row, prompt_col, where, label), prompt_col, where, label)
        qid = _text(_field(row, query_col, where, label), query_col, where, label)
        for col, val in ((prompt_col, pid), (query_col, qid)):
            if not val:
                raise _fail(label, where, f"column {col!r}: empty id")
        tok = _number(_field(row, tokens_col, where, label), tokens_col, where, label)
        if tok < 0:
            raise _fail(label, where, f"column {tokens_col!r}: negative token count {tok:g}")
        p = prompt_idx.setdefault(pid, len(prompt_idx))
        x = query_idx.setdefault(qid, len(query_idx))
        if use_sample:
            sid = _text(_field(row, sample_col, where, label), sample_col, where, label)
            if not sid:
                raise _fail(label, where, f"column {sample_col!r}: empty id")
            if (p, x, sid) in seen:
                raise _fail(label, where, f"duplicate row: prompt {pid!r}, query {qid!r}, "
                            f"{sample_col} {sid!r} already at {seen[(p, x, sid)]}")
            seen[(p, x, sid)] = where
        if kind == "mv":
            g = _text(_field(row, gold_col, where, label), gold_col, where, label, casefold)
            if not g:
                raise _fail(label, where, f"column {gold_col!r}: empty gold answer")
            if x not in gold:
                gold[x] = (g, where)
            elif gold[x][0] != g:
                raise _fail(label, where, f"query {qid!r} has gold answer {g!r} but "
                            f"{gold[x][1]} gave {gold[x][0]!r}")
            outcome = _text(_field(row, answer_col, where, label), answer_col, where, label,
                            casefold)
        else:
            outcome = tuple(_number(_field(row, c, where, label), c, where, label)
                            for c in objectives)
        law = counts.setdefault((p, x), {})
        law[outcome] = law.get(outcome, 0) + 1
        tokens[(p, x)] = tokens.get((p, x), 0.0) + tok
        n_rows += 1

    if n_rows == 0:
        raise _fail(label, None, "no data rows (only a header)")
    prompt_ids, query_ids = list(prompt_idx), list(query_idx)
    n_p, n_x = len(prompt_ids), len(query_ids)
    missing = [(p, x) for p in range(n_p) for x in range(n_x) if (p, x) not in counts]
    keep = list(range(n_x))
    if missing:
        bad_x = sorted({x for _, x in missing})
        if not drop_incomplete:
            shown = _listing(_pair(prompt_ids, query_ids, p, x) for p, x in missing)
            raise _fail(label, None, f"{len(missing)} of {n_p * n_x} (prompt, query) pairs have "
                        f"no samples: {shown}; pass drop_incomplete=True (--drop-incomplete) "
                        f"to drop the {len(bad_x)} queries not covered by every prompt")
        keep = [x for x in range(n_x) if x not in set(bad_x)]
        if not keep:
            raise _fail(label, None, "no query is covered by every prompt; nothing to import")
        warnings.warn(f"{label}: dropped {len(bad_x)} of {n_x} queries not covered by every "
                      f"prompt: {_listing(repr(query_ids[x]) for x in bad_x)}", stacklevel=2)
    if len(keep) < 2:
        raise _fail(label, None, f"a train/test split needs at least 2 queries; found "
                    f"{len(keep)}")

    n_samples = np.array([[sum(counts[(p, x)].values()) for x in keep] for p in range(n_p)])
    if n_samples.min() < n_max:
        few = np.argwhere(n_samples < n_max)
        fp, fx = np.unravel_index(n_samples.argmin(), n_samples.shape)
        warnings.warn(f"{label}: {len(few)} of {n_samples.size} (prompt, query) pairs have fewer "
                      f"than n_max = {n_max} samples (fewest: {n_samples.min()}, pair "
                      f"{_pair(prompt_ids, query_ids, fp, keep[fx])}); their laws at large N "
                      f"rest on few samples", stacklevel=2)

    laws = [[counts[(p, x)] for x in keep] for p in range(n_p)]
    if kind == "mv":
        support = []
        for j, x in enumerate(keep):
            others = set().union(*(laws[p][j] for p in range(n_p))) - {gold[x][0]}
            support.append([gold[x][0]] + sorted(others))
    else:
        support = [sorted(set().union(*(laws[p][j] for p in range(n_p))))
                   for j in range(len(keep))]
    width = max(len(s) for s in support)
    probs = np.zeros((n_p, len(keep), width))
    for j, cats in enumerate(support):
        where_cat = {c: i for i, c in enumerate(cats)}
        for p in range(n_p):
            for outcome, k in laws[p][j].items():
                probs[p, j, where_cat[outcome]] = k
            probs[p, j, :len(cats)] += alpha
    probs /= probs.sum(axis=-1, keepdims=True)

    mean_tokens = np.array([[tokens[(p, x)] for x in keep] for p in range(n_p)]) / n_samples
    per_prompt = mean_tokens.mean(axis=1)
    if cost_scale is None:
        top = per_prompt.max()
        cost = per_prompt * (REFERENCE_MAX_COST / top) if top > 0 else np.zeros(n_p)
    else:
        cost = per_prompt * cost_scale

    extra = {}
    if kind == "mv":
        extra["correct"] = np.zeros(len(keep), dtype=np.int64)
    else:
        values = np.empty((n_p, len(keep), width, len(objectives)))
        for j, vecs in enumerate(support):
            padded = np.array(vecs + [vecs[0]] * (width - len(vecs)))
            values[:, j] = padded[None]
        extra["values"] = values
    if contexts is None:
        contexts = default_contexts(kind, objectives)
    stem = Path(label).name.split(".")[0] if label != "<rows>" else "samples"
    env = Environment(
        name=name or stem, kind=kind, probs=probs, cost=cost, contexts=contexts, n_max=n_max,
        train=np.arange(len(keep)), test=np.arange(len(keep)), tie=tie,
        prompt_names=tuple(prompt_ids),
        description=(f"imported from {Path(label).name}: {n_rows} completions, {n_p} prompts x "
                     f"{len(keep)} queries"), **extra,
    )
    return env.resplit(rng=rng, train_fraction=train_fraction)
