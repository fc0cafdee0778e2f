"""Synthetic per-query response laws: the centering and variance knobs of a prompt.

A prompt is a distribution over queries of per-query response laws (theory.md Sec. 3). For
majority-vote tasks the law of query ``x`` is categorical over C answers with the correct answer
at index 0 and probability ``q(x)``; ``q`` is drawn from a latent family whose **centering**
(mean / location) and **variance** (concentration / spread) are the knobs. The wrong-answer mass
``1 - q`` is split over the C - 1 distractors by ``wrong_shape``: 0 spreads it evenly, 1 puts it all
on one distractor (a "disturbed peak").

For best-of-N tasks the law of ``(p, x)`` is a discrete law over M outcome vectors in
``[0, o_max]^K`` built from a Gaussian latent with per-objective centering and spread and a
correlation between objectives, rounded to the integer score levels (as a categorical reward
model).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ._validate import as_rng, check_int, check_real

__all__ = [
    "beta_latent_q",
    "probit_latent_q",
    "mv_laws",
    "bon_laws",
]


def beta_latent_q(mean: float, concentration: float, n_queries: int, *, rng=None) -> np.ndarray:
    """Per-query correctness ``q ~ Beta(mean * kappa, (1 - mean) * kappa)``.

    ``mean`` (in (0, 1)) is the centering: E[q], the single-shot accuracy. ``concentration``
    ``kappa > 0`` is the inverse variance: Var[q] = mean (1 - mean) / (kappa + 1).
    """
    m = check_real(mean, "mean", low=0.0, high=1.0, closed="none")
    k = check_real(concentration, "concentration", low=0.0, high=np.inf, closed="none")
    n = check_int(n_queries, "n_queries", low=1)
    return as_rng(rng).beta(m * k, (1.0 - m) * k, size=n)


def probit_latent_q(mu: float, tau: float, n_queries: int, *, rng=None) -> np.ndarray:
    """Per-query correctness ``q = Phi(mu + tau Z)``, ``Z ~ N(0, 1)`` (theory.md Sec. 3).

    ``mu`` is the centering, ``tau >= 0`` the spread. Single-shot accuracy
    ``Phi(mu / sqrt(1 + tau^2))``; binary majority-vote limit ``Phi(mu / tau)``.
    """
    m = check_real(mu, "mu", low=-np.inf, high=np.inf, closed="none")
    t = check_real(tau, "tau", low=0.0, high=np.inf, closed="left")
    n = check_int(n_queries, "n_queries", low=1)
    return stats.norm.cdf(m + t * as_rng(rng).standard_normal(n))


def mv_laws(q, n_answers: int = 2, wrong_shape: float = 0.0) -> np.ndarray:
    """Categorical answer laws from per-query correctness; the correct answer is index 0.

    Parameters
    ----------
    q : array_like, shape (X,)
        Probability of the correct answer on each query.
    n_answers : int
        C >= 2 answers per query.
    wrong_shape : float in [0, 1]
        Share of the wrong mass beyond an even split that goes to the first distractor:
        distractor shares are ``wrong_shape + (1 - wrong_shape)/(C - 1)`` for the first and
        ``(1 - wrong_shape)/(C - 1)`` for the others.

    Returns
    -------
    ndarray, shape (X, C)
    """
    qq = np.asarray(q, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(qq)) or np.any((qq < 0) | (qq > 1)):
        raise ValueError("q must be in [0, 1]")
    c = check_int(n_answers, "n_answers", low=2)
    s = check_real(wrong_shape, "wrong_shape", low=0.0, high=1.0)
    share = np.full(c - 1, (1.0 - s) / (c - 1))
    share[0] += s
    out = np.empty((qq.size, c))
    out[:, 0] = qq
    out[:, 1:] = (1.0 - qq)[:, None] * share[None, :]
    return out


def bon_laws(
    centers,
    spreads,
    n_queries: int,
    *,
    query_spread=0.5,
    correlation: float = 0.0,
    n_outcomes: int = 8,
    o_max: float = 4.0,
    rng=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Discrete outcome-vector laws for one prompt (a categorical reward model).

    Query ``x`` has latent means ``m_xk = centers_k + query_spread_k * Z_xk``; its M outcomes are
    ``o_jk = clip(round(m_xk + spreads_k * E_jk), 0, o_max)`` with equal probability ``1/M``;
    ``Z`` and ``E`` are standard bivariate normals with correlation ``correlation`` between
    objectives. ``centers`` is the per-objective centering, ``spreads`` the within-query spread
    that best-of-N exploits.

    Returns
    -------
    values : ndarray, shape (X, M, K)
    probs : ndarray, shape (X, M)
    """
    ctr = np.atleast_1d(np.asarray(centers, dtype=np.float64))
    spr = np.broadcast_to(np.asarray(spreads, dtype=np.float64), ctr.shape)
    qsp = np.broadcast_to(np.asarray(query_spread, dtype=np.float64), ctr.shape)
    if ctr.ndim != 1 or not np.all(np.isfinite(ctr)):
        raise ValueError("centers must be a finite 1-d array (one centering per objective)")
    if np.any(spr < 0) or np.any(qsp < 0) or not np.all(np.isfinite(spr)):
        raise ValueError("spreads and query_spread must be finite and >= 0")
    rho = check_real(correlation, "correlation", low=-1.0, high=1.0)
    n_x = check_int(n_queries, "n_queries", low=1)
    m = check_int(n_outcomes, "n_outcomes", low=1)
    top = check_real(o_max, "o_max", low=0.0, high=np.inf, closed="none")
    k = ctr.size
    if k > 1 and rho < -1.0 / (k - 1):
        raise ValueError(f"correlation must be in [{-1.0 / (k - 1):g}, 1] for {k} objectives "
                         f"(the equicorrelation matrix must be positive semi-definite); got {rho}")
    cov = np.full((k, k), rho)
    np.fill_diagonal(cov, 1.0)
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(k))
    gen = as_rng(rng)
    z = gen.standard_normal((n_x, k)) @ chol.T
    e = gen.standard_normal((n_x, m, k)) @ chol.T
    latent = ctr + qsp * z
    values = np.clip(np.round(latent[:, None, :] + spr * e), 0.0, top)
    probs = np.full((n_x, m), 1.0 / m)
    return values, probs
