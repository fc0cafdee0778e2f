"""iapo-sim core: response laws, exact aggregator math, Monte Carlo kernels, environments.

The public API is re-exported here; ``sim`` never imports ``analysis``.
"""

from .contexts import Contexts, bon_contexts, mv_budget_contexts
from .datasets import ENV_NAMES, load_env, save_env, synth_bernoulli, synth_categorical
from .env import Environment
from .exact import (
    CONTINUOUS_FAMILIES,
    bon_expected_max,
    bon_expected_max_continuous,
    mv_accuracy,
    mv_accuracy_binary,
)
from .laws import beta_latent_q, bon_laws, mv_laws, probit_latent_q
from .sampler import Sampler, Stats, bon_simulate, mv_simulate, simulate_pulls
from .samples import from_samples

__all__ = [
    "CONTINUOUS_FAMILIES",
    "ENV_NAMES",
    "Contexts",
    "Environment",
    "Sampler",
    "Stats",
    "beta_latent_q",
    "bon_contexts",
    "bon_expected_max",
    "bon_expected_max_continuous",
    "bon_laws",
    "bon_simulate",
    "from_samples",
    "load_env",
    "mv_accuracy",
    "mv_accuracy_binary",
    "mv_budget_contexts",
    "mv_laws",
    "mv_simulate",
    "probit_latent_q",
    "save_env",
    "simulate_pulls",
    "synth_bernoulli",
    "synth_categorical",
]
