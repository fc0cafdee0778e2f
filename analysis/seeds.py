"""Seeds of experiment cells, derived from a sweep seed and the cell's key.

A replicate ``r`` of environment ``env`` shares one split (and, for synthetic environments, one
generated environment) across every learner and budget, so comparisons are paired as in the
paper (Wilcoxon paired tests). Each learner run gets its own stream keyed by
(environment, replicate, learner spec, budget). Keys are hashed with CRC-32, which is stable
across processes and Python versions (unlike ``hash``), so a cell's seed does not depend on the
executor, the number of workers or the order cells run in.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _check_seed(seed) -> int:
    """The sweep seed as an int >= 0 (what :class:`numpy.random.SeedSequence` accepts)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}")
    return int(seed)


def env_seed(seed: int, env_name: str, replicate: int) -> np.random.SeedSequence:
    """Seed of replicate ``replicate`` of environment ``env_name`` (its split / generation)."""
    return np.random.SeedSequence(_check_seed(seed),
                                  spawn_key=(_key(env_name), int(replicate), 0))


def learner_seed(seed: int, env_name: str, replicate: int, learner_key: str,
                 budget: int) -> np.random.SeedSequence:
    """Seed of one learner run: (environment, replicate, learner spec, budget)."""
    return np.random.SeedSequence(
        _check_seed(seed),
        spawn_key=(_key(env_name), int(replicate), 1, _key(learner_key), int(budget)),
    )
