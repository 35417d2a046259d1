"""Priors and how the network runs: the model families and loading (registry, family, families/,
prior, wrapper, checkpoint), architectures, padding and tiling at any size (network), precision
and compilation (precision), a run's network (loading)."""

from restore.models.prior import (
    DiffusersPrior,
    Prior,
    PriorNotFound,
    celebahq_schedule,
    load_prior,
)

__all__ = ["DiffusersPrior", "Prior", "PriorNotFound", "celebahq_schedule", "load_prior"]
