"""Deceiving prompts: rank flips between N = 1 and the joint optimum, crossovers, disjoint loss.

A prompt *deceives* when it looks best with one completion but another prompt, scaled to its best
N, is strictly better (paper Sec. "Prompt-inference interdependence", Fig. 2; theory.md Sec. 3).
Everything here is exact: it reads the exact Q table of an environment
(:meth:`sim.Environment.q_table`, paper Eq. 3) or closed forms / quadrature for the synthetic
latent families.

Two levels:

* **Environment level** (:func:`analyze_context`, :func:`analyze`): for each context the exact
  utility curve ``Q(c, p, N)`` per prompt, the prompt best at N = 1, the best (prompt, N), every
  pair of prompts whose order flips as N grows with its first crossover N, and the loss of the
  *disjoint* choice (best prompt at N = 1 by the cost-aware objective, then the best N for it)
  and of the *prompt-only* choice (best prompt at N = 1, deployed at N = 1) against the joint
  optimum.
* **Theory** (synthetic families): N -> infinity limits of majority voting (mass of queries whose
  correct answer is the strict mode, plus ``1/t`` for ``t``-way exact ties) and of best-of-N (the
  top of the support); the deceiving region of the probit latent family (theory.md Sec. 3) and of
  location-scale best-of-N (theory.md Sec. 6), and phase diagrams of that region computed from the
  exact curves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import ndtr

from sim import Environment
from sim._validate import check_int, check_probs, check_tie
from sim.env import TIE_TOL
from sim.exact import bon_expected_max, bon_expected_max_continuous, mv_accuracy_binary

__all__ = [
    "ContextAnalysis",
    "Flip",
    "analyze",
    "analyze_context",
    "bon_limit",
    "bon_ls_crossover",
    "bon_ls_deceives",
    "bon_phase",
    "limit_deceptions",
    "mv_limit",
    "mv_phase",
    "normal_max",
    "probit_curve",
    "probit_deceives",
    "probit_limits",
]


# ---------------------------------------------------------------------------- environment level
@dataclass(frozen=True)
class Flip:
    """A pair of prompts whose order flips: ``winner1`` beats ``loser1`` at N = 1, but
    ``loser1`` is strictly better at N = ``crossover`` (the first such N)."""

    winner1: int
    loser1: int
    crossover: int
    #: largest advantage of ``loser1`` over ``winner1`` over N (utility units)
    margin: float
    #: whether ``loser1`` is still ahead at N = n_max
    holds_at_nmax: bool


@dataclass(frozen=True)
class ContextAnalysis:
    """Exact rank-flip analysis of one context (all utilities are exact Q values).

    Attributes
    ----------
    name : str
        Context name.
    q : ndarray, shape (P, n_max)
        ``Q(c, p, N)``.
    n1_prompt : int
        Prompt with the best cost-aware utility at N = 1 (lowest index on ties).
    best : tuple of int
        Joint optimum ``(prompt, N)``.
    disjoint : tuple of int
        The disjoint choice: ``n1_prompt`` with its best N.
    flips : list of Flip
        Every ordered pair whose order flips, by decreasing margin.
    """

    name: str
    q: np.ndarray
    n1_prompt: int
    best: tuple[int, int]
    disjoint: tuple[int, int]
    flips: list

    @property
    def best_value(self) -> float:
        return float(self.q[self.best[0], self.best[1] - 1])

    @property
    def disjoint_value(self) -> float:
        return float(self.q[self.disjoint[0], self.disjoint[1] - 1])

    @property
    def prompt_only_value(self) -> float:
        """Utility of the best N = 1 prompt deployed at N = 1 (inference-agnostic choice)."""
        return float(self.q[self.n1_prompt, 0])

    @property
    def deceives(self) -> bool:
        """The N = 1 winner is not the prompt of the joint optimum (strictly worse)."""
        return self.disjoint_value < self.best_value - TIE_TOL

    @property
    def disjoint_loss(self) -> float:
        return self.best_value - self.disjoint_value

    @property
    def prompt_only_loss(self) -> float:
        return self.best_value - self.prompt_only_value

    def relative(self, loss: float) -> float:
        """``loss / |best_value|`` (NaN when the optimum is 0)."""
        return loss / abs(self.best_value) if abs(self.best_value) > TIE_TOL else float("nan")


def _first_max(a: np.ndarray) -> int:
    """Index of the maximum, ties to the lowest index (within :data:`TIE_TOL`)."""
    return int(np.flatnonzero(a >= a.max() - TIE_TOL)[0])


def analyze_context(q, name: str = "") -> ContextAnalysis:
    """Rank flips, crossovers and disjoint loss of one exact utility table ``q[p, N - 1]``.

    Parameters
    ----------
    q : array_like, shape (P, n_max)
        Exact ``Q(c, p, N)`` of one context (paper Eq. 3), N = 1..n_max.
    name : str

    Notes
    -----
    A pair (a, b) flips when ``Q(a, 1) > Q(b, 1)`` and ``Q(b, N) > Q(a, N)`` for some N; its
    crossover is the first such N. The disjoint choice is ``argmax_p Q(p, 1)`` followed by
    ``argmax_N Q(p, N)`` (two-stage optimisation, mission.md Sec. 3, PSST+K1); ties go to the
    lowest index, as in :meth:`sim.Environment.optimal_arms`.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or min(q.shape) < 1 or not np.all(np.isfinite(q)):
        raise ValueError(f"q must be a finite (P, n_max) table; got shape {q.shape}")
    n1 = _first_max(q[:, 0])
    flat = _first_max(q.ravel())
    best = (flat // q.shape[1], flat % q.shape[1] + 1)
    disjoint = (n1, _first_max(q[n1]) + 1)
    diff = q[:, None, :] - q[None, :, :]  # diff[a, b, N] = Q(a, N) - Q(b, N)
    flips = []
    for a, b in zip(*np.nonzero(diff[:, :, 0] > TIE_TOL), strict=True):
        behind = diff[a, b] < -TIE_TOL
        if behind.any():
            flips.append(Flip(int(a), int(b), int(np.argmax(behind)) + 1,
                              float(-diff[a, b].min()), bool(behind[-1])))
    flips.sort(key=lambda f: (-f.margin, f.winner1, f.loser1))
    return ContextAnalysis(name, q, n1, (int(best[0]), int(best[1])), disjoint, flips)


def analyze(env: Environment, split: str = "all") -> list[ContextAnalysis]:
    """:func:`analyze_context` for every context of ``env`` on ``split`` (exact Q table)."""
    q = env.q_table(split)
    return [analyze_context(q[c], env.contexts.names[c]) for c in range(env.n_contexts)]


# ---------------------------------------------------------------------------- N -> infinity limits
def mv_limit(probs, correct, tie: str = "random") -> np.ndarray:
    """Limit of plurality-vote accuracy as N -> infinity, per answer law.

    The correct answer wins with probability -> 1 when it is the strict mode of the law, -> 0
    when another answer has strictly more mass, and -> ``1/t`` when it is one of ``t`` answers
    tied exactly at the top (``tie="random"``; 0 under ``"pessimistic"`` when ``t > 1``). See
    theory.md Sec. 1.2 (plurality large deviations) and Sec. 3 (``F(inf) = mu(q > 1/2) +
    mu(q = 1/2)/2`` in the binary case).

    Parameters
    ----------
    probs : array_like, shape (..., C)
    correct : int or array_like of int, broadcastable to ``probs.shape[:-1]``
    tie : {"random", "pessimistic"}
    """
    p = check_probs(probs, "probs")
    tie_code = check_tie(tie)
    corr = np.broadcast_to(np.asarray(correct), p.shape[:-1])
    if not np.issubdtype(corr.dtype, np.integer) or np.any(corr < 0) or np.any(
            corr >= p.shape[-1]):
        raise ValueError(f"correct must be integer answer indices in [0, {p.shape[-1] - 1}]")
    top = p.max(axis=-1, keepdims=True)
    leaders = p >= top - TIE_TOL
    t = leaders.sum(axis=-1)
    is_leader = np.take_along_axis(leaders, corr[..., None].astype(np.int64), axis=-1)[..., 0]
    credit = 1.0 / t if tie_code == 0 else (t == 1).astype(np.float64)
    return np.where(is_leader, credit, 0.0)


def bon_limit(values, probs) -> np.ndarray:
    """Limit of the expected best-of-N reward as N -> infinity: the top of the support.

    ``E[max of N draws] -> max{y : P(y) > 0}`` (the law of the maximum is ``F^N``, theory.md
    Sec. 6). ``values`` are scalarised rewards, shape (..., M); ``probs`` the same shape.
    """
    v = np.asarray(values, dtype=np.float64)
    p = check_probs(probs, "probs")
    if v.shape != p.shape:
        raise ValueError(f"probs must have the shape of values {v.shape}; got {p.shape}")
    return np.where(p > 0, v, -np.inf).max(axis=-1)


def env_limits(env: Environment, split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Task utility at N = 1 and its N -> infinity limit per (context, prompt), without cost.

    Returns ``(u1, uinf)`` of shape (CX, P): MV ``w_c * mean_x Acc``, BoN ``mean_x E[max]`` of
    the context-weighted reward (the cost term ``-w_cost N cost`` diverges and is left out, as in
    paper Fig. 3 with ``w_{K+1} = 0``).
    """
    idx = env.split_indices(split)
    curves = env.query_curves()
    if env.kind == "mv":
        u1 = env.contexts.weights[:, :1] * curves[:, idx, 0].mean(axis=1)[None]
        lim = mv_limit(env.probs[:, idx], env.correct[idx][None, :], env.tie).mean(axis=1)
        uinf = env.contexts.weights[:, :1] * lim[None]
    else:
        u1 = curves[:, :, idx, 0].mean(axis=2)
        sv = env.scalarized_values()[:, :, idx]
        uinf = bon_limit(sv, np.broadcast_to(env.probs[:, idx], sv.shape)).mean(axis=2)
    return u1, uinf


def limit_deceptions(env: Environment, split: str = "all") -> list[tuple[int, int, int]]:
    """Pairs deceiving in the N -> infinity sense (no cost): ``(context, a, b)`` with ``a`` ahead
    of ``b`` at N = 1 but strictly behind in the limit (theory.md Sec. 3 existence condition)."""
    u1, uinf = env_limits(env, split)
    out = []
    for c in range(u1.shape[0]):
        ahead = u1[c][:, None] > u1[c][None, :] + TIE_TOL
        behind = uinf[c][:, None] < uinf[c][None, :] - TIE_TOL
        out += [(c, int(a), int(b)) for a, b in zip(*np.nonzero(ahead & behind), strict=True)]
    return out


# ---------------------------------------------------------------------------- probit MV family
def probit_limits(mu, tau) -> tuple[np.ndarray, np.ndarray]:
    """``F(1) = Phi(mu / sqrt(1 + tau^2))`` and ``F(inf) = Phi(mu / tau)`` of the probit family.

    Per-query correctness ``q = Phi(mu + tau Z)``, binary majority vote (theory.md Sec. 3);
    ``F(inf) = P(q > 1/2) + P(q = 1/2)/2``, which for ``tau = 0`` is 1, 1/2 or 0 by the sign of mu.
    """
    mu, tau = np.broadcast_arrays(np.asarray(mu, float), np.asarray(tau, float))
    if np.any(tau < 0) or not (np.all(np.isfinite(mu)) and np.all(np.isfinite(tau))):
        raise ValueError("mu must be finite and tau finite and >= 0")
    f1 = ndtr(mu / np.sqrt(1.0 + tau**2))
    with np.errstate(divide="ignore", invalid="ignore"):
        finf = np.where(tau > 0, ndtr(mu / np.where(tau > 0, tau, 1.0)),
                        0.5 * (1.0 + np.sign(mu)))
    return f1, finf


def probit_deceives(mu_a, tau_a, mu_b, tau_b) -> np.ndarray:
    """Theory: prompt A deceives B iff ``F_A(1) > F_B(1)`` and ``F_A(inf) < F_B(inf)``.

    Under the probit law this is ``mu_A/sqrt(1+tau_A^2) > mu_B/sqrt(1+tau_B^2)`` and
    ``mu_A/tau_A < mu_B/tau_B`` (theory.md Sec. 3, "Deceiving prompts - existence condition").
    """
    f1a, fia = probit_limits(mu_a, tau_a)
    f1b, fib = probit_limits(mu_b, tau_b)
    return (f1a > f1b) & (fia < fib)


#: Half-width of the quadrature grid in s = mu + tau z: Phi(8.5) is within 1e-17 of 1.
_S_MAX = 8.5
_S_POINTS = 8501
#: Parameter points per block in :func:`probit_curve` (memory ~ _CHUNK x _S_POINTS floats).
_CHUNK = 512


@functools.lru_cache(maxsize=1)
def _simpson_weights() -> np.ndarray:
    """Composite Simpson weights of the ``s`` grid (odd number of points)."""
    h = 2 * _S_MAX / (_S_POINTS - 1)
    w = np.full(_S_POINTS, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w * h / 3.0


@functools.lru_cache(maxsize=64)
def _binary_mv_on_grid(n: int) -> np.ndarray:
    s = np.linspace(-_S_MAX, _S_MAX, _S_POINTS)
    return mv_accuracy_binary(ndtr(s), n)


def probit_curve(mu, tau, n) -> np.ndarray:
    """Exact binary majority-vote accuracy ``F(N) = E[Acc(Phi(mu + tau Z), N)]`` by quadrature.

    Parameters
    ----------
    mu, tau : array_like (broadcast together), ``tau >= 0``
    n : int or sequence of int
        Numbers of votes N >= 1 (fair-coin ties, so ``F(2m) = F(2m - 1)``).

    Returns
    -------
    ndarray, shape ``broadcast(mu, tau).shape + (len(n),)`` (no trailing axis for scalar n).

    Notes
    -----
    ``F(N) = int Acc(Phi(s), N) phi((s - mu)/tau)/tau ds``: the accuracy on a fixed grid of
    ``s`` (8501 points on [-8.5, 8.5]) convolved with the normal density by Simpson's rule; the
    mass outside the grid gets the accuracy at its edge (``Acc(Phi(+-8.5))`` is 1 or 0 to
    1e-17). ``tau = 0`` is evaluated directly. Accurate to ~1e-9 for ``tau >= 0.02``.
    """
    mu, tau = np.broadcast_arrays(np.asarray(mu, float), np.asarray(tau, float))
    if np.any(tau < 0) or not (np.all(np.isfinite(mu)) and np.all(np.isfinite(tau))):
        raise ValueError("mu must be finite and tau finite and >= 0")
    scalar = np.ndim(n) == 0
    ns = np.atleast_1d(np.asarray(n))
    s = np.linspace(-_S_MAX, _S_MAX, _S_POINTS)
    m, t = mu.reshape(-1), tau.reshape(-1)
    pos = t > 0
    tt = np.where(pos, t, 1.0)
    accs = np.stack([_binary_mv_on_grid(int(k)) for k in ns])  # (len(n), S)
    weighted = (_simpson_weights() * accs).T  # (S, len(n))
    out = np.empty((m.size, ns.size))
    for lo in range(0, m.size, _CHUNK):  # bounded memory: _CHUNK x S densities at a time
        sl = slice(lo, lo + _CHUNK)
        z = (s[None, :] - m[sl, None]) / tt[sl, None]
        dens = np.exp(-0.5 * z * z) / (np.sqrt(2.0 * np.pi) * tt[sl, None])
        inner = dens @ weighted
        below = ndtr((-_S_MAX - m[sl]) / tt[sl])[:, None]
        above = ndtr((m[sl] - _S_MAX) / tt[sl])[:, None]
        out[sl] = inner + below * accs[:, 0] + above * accs[:, -1]
    if not pos.all():
        out[~pos] = mv_accuracy_binary(ndtr(m[~pos]), ns)
    out = out.reshape(mu.shape + (ns.size,))
    return out[..., 0] if scalar else out


# ---------------------------------------------------------------------------- location-scale BoN
@functools.lru_cache(maxsize=16)
def _normal_max(n_max: int) -> np.ndarray:
    e = bon_expected_max_continuous(stats.norm(), np.arange(1, n_max + 1))
    e[0] = 0.0  # E[max of one standard normal] = 0 exactly
    e.setflags(write=False)
    return e


def normal_max(n_max: int) -> np.ndarray:
    """``e_N = E[max of N standard normals]`` for N = 1..n_max, by quadrature (theory.md Sec. 6).

    0, 0.5642 (1/sqrt(pi)), 0.8463, 1.0294, ... ; 1.5388 at N = 10.
    """
    return _normal_max(check_int(n_max, "n_max", low=1, high=100_000))


def bon_ls_deceives(mu_a, sigma_a, mu_b, sigma_b) -> np.ndarray:
    """Theory: A deceives B iff ``mu_A > mu_B`` and ``sigma_A < sigma_B``.

    Location-scale rewards have ``E[BoN_N] = mu + sigma e_N`` with ``e_N -> inf`` (theory.md
    Sec. 6): A is ahead at N = 1 (``e_1 = 0``) and B eventually overtakes.
    """
    return (np.asarray(mu_a) > np.asarray(mu_b)) & (np.asarray(sigma_a) < np.asarray(sigma_b))


def bon_ls_crossover(mu_a, sigma_a, mu_b, sigma_b, n_max: int) -> np.ndarray:
    """First N <= n_max at which B overtakes A under location-scale BoN; 0 if none.

    B is strictly ahead at N when ``mu_B + sigma_B e_N > mu_A + sigma_A e_N``. For a deceiving
    pair this is the first N with ``e_N > (mu_A - mu_B)/(sigma_B - sigma_A)`` (theory.md Sec. 6).
    Evaluated exactly from ``e_N`` (quadrature), broadcasting the parameters.
    """
    e = normal_max(n_max)
    ma, sa, mb, sb = np.broadcast_arrays(*(np.asarray(x, float) for x in
                                           (mu_a, sigma_a, mu_b, sigma_b)))
    ahead_b = (mb[..., None] + sb[..., None] * e) - (ma[..., None] + sa[..., None] * e) > TIE_TOL
    return np.where(ahead_b.any(axis=-1), ahead_b.argmax(axis=-1) + 1, 0)


def clipped_normal_bon(mu, sigma, n, *, low: float = 0.0, high: float = 4.0,
                       atoms: int = 256) -> np.ndarray:
    """Exact BoN of a bounded score law: ``clip(mu + sigma Z, low, high)`` quantised to ``atoms``
    equiprobable normal quantiles (the bounded-score analogue of the synth-categorical family).

    Returns shape ``broadcast(mu, sigma).shape + (len(n),)``; exact discrete order statistics
    (:func:`sim.bon_expected_max`).
    """
    mu, sigma = np.broadcast_arrays(np.asarray(mu, float), np.asarray(sigma, float))
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))) or np.any(sigma < 0):
        raise ValueError("mu must be finite and sigma finite and >= 0")
    if not low < high:
        raise ValueError(f"low must be < high; got low={low}, high={high}")
    check_int(atoms, "atoms", low=1)
    z = stats.norm.ppf((np.arange(atoms) + 0.5) / atoms)
    vals = np.clip(mu[..., None] + sigma[..., None] * z, low, high)
    probs = np.full(vals.shape, 1.0 / atoms)
    return bon_expected_max(vals, probs, np.atleast_1d(n))


# ---------------------------------------------------------------------------- phase diagrams
#: Region codes of a phase diagram (prompt A against the reference prompt B).
REGIONS = ("B ahead at both N", "A ahead at both N", "A deceives (ahead at N=1, behind at N)",
           "A overtakes (behind at N=1, ahead at N)")


def _regions(u1_a, un_a, u1_b, un_b) -> np.ndarray:
    a1 = u1_a > u1_b + TIE_TOL
    an = un_a > un_b + TIE_TOL
    bn = un_a < un_b - TIE_TOL
    b1 = u1_a < u1_b - TIE_TOL
    code = np.full(np.shape(u1_a), -1)
    code[~a1 & ~an] = 0
    code[a1 & an] = 1
    code[a1 & bn] = 2
    code[b1 & an] = 3
    return code


def mv_phase(mu_grid, tau_grid, ref: tuple[float, float], n: int) -> dict:
    """Phase diagram of the probit MV family over the (centering mu, spread tau) plane.

    For each (mu_A, tau_A) on the grid and the reference prompt B = ``ref`` = (mu_B, tau_B):
    exact ``F(1)`` and ``F(n)`` of both (:func:`probit_curve`), the region code (see
    :data:`REGIONS`) from the exact curves, and the theory region (:func:`probit_deceives`,
    the N -> infinity condition).

    Returns a dict of arrays with shape (len(tau_grid), len(mu_grid)).
    """
    n = check_int(n, "n", low=1)
    mu_b, tau_b = ref
    mm, tt = np.meshgrid(np.asarray(mu_grid, float), np.asarray(tau_grid, float))
    fa = probit_curve(mm, tt, [1, n])
    fb = probit_curve(mu_b, tau_b, [1, n])
    return {
        "mu": mm, "tau": tt, "f1": fa[..., 0], "fn": fa[..., 1],
        "ref_f1": float(fb[0]), "ref_fn": float(fb[1]),
        "region": _regions(fa[..., 0], fa[..., 1], fb[0], fb[1]),
        "theory_deceives": probit_deceives(mm, tt, mu_b, tau_b),
    }


def bon_phase(mu_grid, sigma_grid, ref: tuple[float, float], n: int, *, low: float = 0.0,
              high: float = 4.0) -> dict:
    """Phase diagram of best-of-N over the (centering mu, spread sigma) plane.

    Exact curves of two reward families: Gaussian (``mu + sigma e_N``, quadrature) and scores
    clipped to ``[low, high]`` (:func:`clipped_normal_bon`, exact discrete). The theory region is
    :func:`bon_ls_deceives` restricted to a crossover by ``n`` (:func:`bon_ls_crossover`).

    Returns a dict of arrays with shape (len(sigma_grid), len(mu_grid)).
    """
    n = check_int(n, "n", low=1, high=100_000)
    mu_b, s_b = ref
    mm, ss = np.meshgrid(np.asarray(mu_grid, float), np.asarray(sigma_grid, float))
    e_n = normal_max(n)[-1]
    gauss = _regions(mm, mm + ss * e_n, mu_b, mu_b + s_b * e_n)
    ca = clipped_normal_bon(mm, ss, [1, n], low=low, high=high)
    cb = clipped_normal_bon(mu_b, s_b, [1, n], low=low, high=high)
    cross = bon_ls_crossover(mm, ss, mu_b, s_b, n)
    return {
        "mu": mm, "sigma": ss, "e_n": float(e_n), "region_gauss": gauss,
        "region_clipped": _regions(ca[..., 0], ca[..., 1], cb[0], cb[1]),
        "theory_deceives": bon_ls_deceives(mm, ss, mu_b, s_b) & (cross > 0),
        "crossover": cross,
    }
