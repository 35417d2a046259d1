"""What every sampler shares: the stepwise protocol, network calls, the one-shot loop, progress
(the prior protocol and the records: solvers.records).

Stepwise protocol: a sampler's run is a fixed sequence of `anytime_steps` steps, each ending in
an anytime output (Nested DDRM: one per outer step; DDRM: one per network call). A subclass
provides
    measure(y, sigma_y)                 -> the measurement in the form its steps use
    begin(meas, generator)              -> the initial state x
    advance(x, j, meas, generator)      -> a generator that makes step j: it yields one Record per
                                           network call (the last one is the anytime output) and
                                           returns the state for step j + 1
    calls_before(j)                     -> network calls made before step j
    state_time(j)                       -> the diffusion time of the state step j starts from
and is pure: no counters or buffers change while sampling, so one sampler may serve several runs
at once. `solvers.run.Run` drives the protocol (one loop for `sample`, `restore` and every front
end).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from degradations.noise import Generators
from solvers.diffusion import eps_from_x0, x0_from_eps
from solvers.records import Prior, Record, StepCalls
from solvers.run import Run
from solvers.schedule import NoiseSchedule


class Sampler:
    """Base class: holds the prior and the operator, makes network calls, offers the loop.

    Subclasses implement the stepwise protocol (module docstring) and `nfe_total`. The device and
    dtype are those of `y`; the operator is moved there once per run."""

    #: whether `sample` also yields the per-call "inner" records (Nested DDRM's option)
    yield_inner: bool = False
    #: clip the network's x0 prediction to the data range [-1, 1] (and recompute eps from it)
    clip_x0: bool = False

    def __init__(self, prior: Prior, operator):
        self.prior = prior
        self.operator = operator
        self.schedule = NoiseSchedule(prior.alphas_cumprod)

    @property
    def name(self) -> str:
        """The solver's name in saved runs and tables (Nested: "Nested" + the inner solver's)."""
        return type(self).__name__

    # -- the stepwise protocol ----------------------------------------------------------------
    @property
    def nfe_total(self) -> int:
        raise NotImplementedError

    @property
    def anytime_steps(self) -> int:
        raise NotImplementedError

    def calls_before(self, j: int) -> int:
        raise NotImplementedError

    def state_time(self, j: int) -> int:
        raise NotImplementedError

    def measure(self, y: torch.Tensor, sigma_y: float) -> Any:
        raise NotImplementedError

    def begin(self, meas: Any, generator: Generators) -> torch.Tensor:
        raise NotImplementedError

    def advance(self, x: torch.Tensor, j: int, meas: Any, generator: Generators) -> StepCalls:
        raise NotImplementedError

    # -- shared pieces ------------------------------------------------------------------------
    def predict(self, x_t: torch.Tensor, t: int, eps: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """One network call: (eps, x0) at time t, x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)
        (Ho et al. 2020, eq. 15; solvers.diffusion). eps=False: a solver that uses only x0 (the network's eps is
        then returned as is, not recomputed from a clipped x0)."""
        with torch.no_grad():
            noise = self.prior(x_t, self.schedule.t_batch(t, x_t.shape[0], x_t.device))
        noise = noise if noise.dtype == x_t.dtype else noise.to(x_t.dtype)
        a = self.schedule.alpha_bar(t)
        x0 = x0_from_eps(x_t, noise, a)
        if self.clip_x0:  # as DDPM / DDIM's clip_denoised: eps then follows from the clipped x0
            x0 = x0.clamp_(-1, 1)
            if eps:
                noise = eps_from_x0(x_t, x0, a)
        return noise, x0

    @contextmanager
    def autograd(self, x_t: torch.Tensor) -> Iterator[torch.Tensor]:
        """x_t as a leaf that requires grad, for a step that differentiates through the network
        (DPS, PiGDM), whatever the caller's grad mode: under torch.no_grad() and inside
        torch.inference_mode() too (an inference tensor is copied out of inference mode first)."""
        with torch.inference_mode(False), torch.enable_grad():
            yield (x_t.clone() if x_t.is_inference() else x_t.detach()).requires_grad_(True)

    def check(self, y: torch.Tensor, sigma_y: float) -> None:
        """Validate a measurement batch and move the operator to its device and dtype."""
        if y.ndim != 2 or y.shape[1] != self.operator.m:
            raise ValueError(
                f"y must have shape (B, {self.operator.m}) for {self.operator!r}, got {tuple(y.shape)}"
            )
        if sigma_y < 0:
            raise ValueError(f"sigma_y must be >= 0 (a std on the [0, 1] pixel scale), got {sigma_y}")
        self.operator.to(y.device, y.dtype)

    # -- the one-shot interface ---------------------------------------------------------------
    def sample(
        self, y: torch.Tensor, sigma_y: float = 0.0, generator: Generators = None
    ) -> Iterator[Record]:
        """Anytime restoration of measurements y (B, m): yields `Record`s, the last one final.

        sigma_y: measurement noise std on the [0, 1] pixel scale (2 sigma_y on [-1, 1]).
        generator: one torch.Generator, a list with one per image (results then do not depend
        on the batch), or None (torch's global generator). For stepping, steering, candidates
        and saving, use `solvers.Run` directly."""
        run = Run(self, y, sigma_y, generator)
        return (r for r in run.records() if self.yield_inner or r.anytime)

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
