"""Argument checking shared by the public functions of :mod:`sim`.

Every public function validates its input here and raises a :class:`ValueError` that names the
parameter and states the valid range; the ``@njit`` kernels behind them assume valid input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Tolerance on ``|sum(probs) - 1|`` for a probability vector (absolute, per row).
PROB_SUM_TOL = 1e-8

TIE_RULES = ("random", "pessimistic")


def as_rng(rng) -> np.random.Generator:
    """Return a Generator from anything :func:`numpy.random.default_rng` accepts."""
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"rng must be None, an int, a SeedSequence, a BitGenerator or a Generator; got {rng!r}"
        ) from exc


def check_probs(probs, name: str = "probs", *, min_ndim: int = 1) -> np.ndarray:
    """Check that the last axis of ``probs`` holds probability vectors.

    Entries must be finite and non-negative and each vector must sum to 1 within
    :data:`PROB_SUM_TOL`; the returned copy is renormalised so that it sums to 1 exactly
    (up to rounding).
    """
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim < min_ndim or arr.shape[-1] < 1:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s) and a non-empty last axis; "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative; min is {arr.min():.3g}")
    sums = arr.sum(axis=-1)
    bad = np.abs(sums - 1.0) > PROB_SUM_TOL
    if np.any(bad):
        worst = sums[bad].ravel()[0]
        raise ValueError(
            f"{name} must sum to 1 along its last axis (tolerance {PROB_SUM_TOL:g}); "
            f"found a sum of {worst:.10g}"
        )
    return arr / sums[..., None]


def check_n(n, name: str = "n", *, n_max: int | None = None) -> tuple[np.ndarray, bool]:
    """Check a number of samples or a sequence of them.

    Returns the values as a 1-d int64 array and whether the input was a scalar.
    """
    scalar = np.ndim(n) == 0
    values = np.atleast_1d(np.asarray(n))
    if values.size == 0 or values.ndim != 1:
        raise ValueError(f"{name} must be an int or a non-empty 1-d sequence of ints")
    if not np.issubdtype(values.dtype, np.integer):
        if not (np.issubdtype(values.dtype, np.floating) and np.all(values == np.round(values))):
            raise ValueError(f"{name} must be integer-valued; got {n!r}")
    values = values.astype(np.int64)
    upper = "" if n_max is None else f" and <= n_max = {n_max}"
    if np.any(values < 1) or (n_max is not None and np.any(values > n_max)):
        raise ValueError(f"{name} must be >= 1{upper}; got {n!r}")
    return values, bool(scalar)


def check_int(value, name: str, *, low: int, high: int | None = None) -> int:
    """Check an integer scalar in ``[low, high]``."""
    rng_txt = f"[{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int {rng_txt}; got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int {rng_txt}; got {value}")
    return int(value)


def check_real(value, name: str, *, low: float, high: float, closed: str = "both") -> float:
    """Check a finite real scalar in an interval; ``closed`` is 'both', 'left', 'right', 'none'."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number; got {value!r}") from None
    left_ok = x >= low if closed in ("both", "left") else x > low
    right_ok = x <= high if closed in ("both", "right") else x < high
    if not (np.isfinite(x) and left_ok and right_ok):
        lb = "[" if closed in ("both", "left") else "("
        rb = "]" if closed in ("both", "right") else ")"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{rb}; got {value!r}")
    return x


def check_tie(tie: str) -> int:
    """Map a tie rule name to its kernel code (0 = random, 1 = pessimistic)."""
    if tie not in TIE_RULES:
        raise ValueError(f"tie must be one of {TIE_RULES}; got {tie!r}")
    return TIE_RULES.index(tie)


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")
    return value
