"""Priors and how the network runs: loading (prior, checkpoint), architectures, padding and
tiling at any size (network), precision and compilation (precision), a run's network (loading)."""

from restore.models.prior import (
    DiffusersPrior,
    PriorNotFound,
    celebahq_schedule,
    load_prior,
)

__all__ = ["DiffusersPrior", "PriorNotFound", "celebahq_schedule", "load_prior"]
