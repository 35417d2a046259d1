"""What every sampler shares: the prior protocol, network-call counting, records, progress.

Prior protocol: any object callable as `prior(x_t, t) -> eps` with x_t (B, C, H, W) on the
[-1, 1] scale, t an int64 tensor of shape (B,), eps the predicted noise (same shape), and an
attribute `alphas_cumprod` (1-D float tensor of length T). Nothing else is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import torch
from tqdm.auto import tqdm

from solvers.noise import Generators
from solvers.schedule import NoiseSchedule


class Prior(Protocol):
    alphas_cumprod: torch.Tensor

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...


@dataclass
class Record:
    """One anytime output of a sampler.

    nfe:   network calls made so far (cumulative).
    x0:    the current image estimate, (B, C, H, W) on [-1, 1] (not clamped).
    t:     the time at which this estimate was made (-1 for a clean sample).
    kind:  "prediction" (a single network x0 prediction), "outer" (a Nested Diffusion x0_hat,
           i.e. the result of a whole inner run) or "inner" (an x0 prediction inside an inner run).
    final: True on the last record, whose x0 is the sampler's result.
    """

    nfe: int
    x0: torch.Tensor
    t: int
    kind: str
    final: bool = False


class Sampler:
    """Base class: holds the prior and the operator, counts network calls, runs the loop.

    Subclasses implement `_records(y, sigma_y, generator)` (a generator of `Record`) and
    `nfe_total`. The device and dtype are those of `y`; the operator is moved there once."""

    def __init__(self, prior: Prior, operator):
        self.prior = prior
        self.operator = operator
        self.schedule = NoiseSchedule(prior.alphas_cumprod)
        self.nfe = 0

    @property
    def nfe_total(self) -> int:
        raise NotImplementedError

    def predict(self, x_t: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One network call: (eps, x0) at time t, x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
        (Ho et al. 2020, eq. 15)."""
        t_batch = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
        with torch.no_grad():
            eps = self.prior(x_t, t_batch).to(x_t.dtype)
        self.nfe += 1
        a = self.schedule.alpha_bar(t)
        return eps, torch.add(x_t, eps, alpha=-((1 - a) ** 0.5)).div_(a**0.5)

    def sample(
        self, y: torch.Tensor, sigma_y: float = 0.0, generator: Generators = None
    ) -> Iterator[Record]:
        """Anytime restoration of measurements y (B, m): yields `Record`s, the last one final.

        sigma_y: measurement noise std on the [0, 1] pixel scale (2 sigma_y on [-1, 1]).
        generator: one torch.Generator, a list with one per image (results then do not depend
        on the batch), or None (torch's global generator)."""
        if y.ndim != 2 or y.shape[1] != self.operator.m:
            raise ValueError(
                f"y must have shape (B, {self.operator.m}) for {self.operator!r}, got {tuple(y.shape)}"
            )
        if sigma_y < 0:
            raise ValueError(f"sigma_y must be >= 0 (a std on the [0, 1] pixel scale), got {sigma_y}")
        if isinstance(generator, (list, tuple)) and len(generator) != y.shape[0]:
            raise ValueError(f"got {len(generator)} generators for {y.shape[0]} images")
        self.operator.to(y.device, y.dtype)
        self.nfe = 0
        return self._records(y, float(sigma_y), generator)

    def _records(self, y: torch.Tensor, sigma_y: float, generator: Generators) -> Iterator[Record]:
        raise NotImplementedError

    def restore(
        self,
        y: torch.Tensor,
        sigma_y: float = 0.0,
        generator: Generators = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Run to the end and return the final image (B, C, H, W) on [-1, 1] (not clamped)."""
        bar = tqdm(total=self.nfe_total, unit="NFE", desc=type(self).__name__, disable=not progress)
        record = None
        for record in self.sample(y, sigma_y, generator):
            bar.update(record.nfe - bar.n)
        bar.close()
        return record.x0
