"""What a sampler and its run exchange: the prior protocol, one Record per network call, and the
stepwise protocol a `solvers.Run` drives (solvers.base.Sampler implements it).

Prior protocol: any object callable as `prior(x_t, t) -> eps` with x_t (B, C, H, W) on the
[-1, 1] scale, t an int64 tensor of shape (B,), eps the predicted noise (same shape), and an
attribute `alphas_cumprod` (1-D float tensor of length T). Nothing else is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generator, Protocol

import torch


class Prior(Protocol):
    alphas_cumprod: torch.Tensor

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...


@dataclass
class Record:
    """One output of a sampler, made by one network call.

    nfe:   network calls made so far (cumulative).
    x0:    the current image estimate, (B, C, H, W) on [-1, 1] (not clamped).
    t:     the time at which this estimate was made (-1 for a clean sample).
    kind:  "prediction" (a single network x0 prediction, DDRM's anytime output), "outer" (a Nested
           Diffusion x0_hat, i.e. the result of a whole inner run) or "inner" (an x0 prediction
           inside an inner run).
    final: True on the last record, whose x0 is the sampler's result.
    """

    nfe: int
    x0: torch.Tensor
    t: int
    kind: str
    final: bool = False

    @property
    def anytime(self) -> bool:
        """Whether this record ends an anytime step (a usable restoration, not an inner guess)."""
        return self.kind != "inner"


#: what `advance` returns: a generator of one Record per network call, returning the next state
StepCalls = Generator[Record, None, torch.Tensor]


class Stepwise(Protocol):
    """A sampler as `solvers.Run` sees it: a fixed sequence of `anytime_steps` steps (the protocol
    in solvers.base's docstring)."""

    name: str
    nfe_total: int
    anytime_steps: int

    def check(self, y: torch.Tensor, sigma_y: float) -> None: ...

    def measure(self, y: torch.Tensor, sigma_y: float) -> Any: ...

    def begin(self, meas: Any, generator) -> torch.Tensor: ...

    def advance(self, x: torch.Tensor, j: int, meas: Any, generator) -> StepCalls: ...

    def calls_before(self, j: int) -> int: ...

    def state_time(self, j: int) -> int: ...
