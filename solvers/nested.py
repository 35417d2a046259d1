"""Nested DDRM: DDRM as the inner process of Nested Diffusion (Elata, Kawar, Michaeli, Elad 2023).

An outer DDIM loop (Alg. 2 of the Nested Diffusion paper) whose x0-prediction at outer time t is
a whole inner DDRM run that starts from the outer state x_t at t (no fresh initialisation) and
goes to clean in `inner_steps` network calls. Each inner result x0_hat is an anytime output that
already satisfies the measurement; the outer DDIM step then re-noises towards the next outer time
(Song et al. 2021, DDIM eq. 12). The last outer step's x0_hat is the result, so the total cost is
outer_steps x inner_steps network calls, and NestedDDRM(outer_steps=1, inner_steps=K) is exactly
DDRM(steps=K).

Time grids: the outer loop starts where a plain DDRM run of the same total cost starts
(950 for 20 calls) and its times are evenly spaced down to t_start / outer_steps; each inner run
spaces its calls evenly from its outer time down to 0 (see solvers.schedule).
"""

from __future__ import annotations

import torch

from solvers.base import Prior, Record, StepCalls
from solvers.ddrm import DDRM, SpectralMeasurement
from solvers.noise import Generators, randn
from solvers.schedule import CLEAN, ddrm_start, linear_times, outer_times


class NestedDDRM(DDRM):
    """Anytime DDRM: `outer_steps` previews, each the result of `inner_steps` DDRM calls.

    eta, eta_b: the inner DDRM's (defaults of DDRM: 0.85, 1.0); outer_eta: DDIM's eta of the
    outer loop (0 = deterministic, as in the released code). yield_inner: also yield the inner
    runs' per-call x0 predictions (kind "inner") between the outer results (kind "outer").

    Default split 4 x 5: first preview after 5 calls at 20 in total (see README, "Choosing the
    split", for the measurements behind it)."""

    def __init__(
        self,
        prior: Prior,
        operator,
        outer_steps: int = 4,
        inner_steps: int = 5,
        eta: float = 0.85,
        eta_b: float = 1.0,
        outer_eta: float = 0.0,
        yield_inner: bool = False,
    ):
        if outer_steps < 1 or inner_steps < 1:
            raise ValueError(f"outer_steps and inner_steps must be >= 1, got {outer_steps}, {inner_steps}")
        if not 0.0 <= outer_eta <= 1.0:
            raise ValueError(f"outer_eta must lie in [0, 1], got {outer_eta}")
        super().__init__(prior, operator, steps=outer_steps * inner_steps, eta=eta, eta_b=eta_b)
        self.outer_steps, self.inner_steps = outer_steps, inner_steps
        self.outer_eta, self.yield_inner = outer_eta, yield_inner
        self.outer = outer_times(ddrm_start(self.schedule.T, self.steps), outer_steps)
        self.inner = [linear_times(t, inner_steps) for t in self.outer]

    @property
    def times(self) -> list[int]:
        """Every network call's time, outer run after outer run, then CLEAN."""
        return [t for times in self.inner for t in times[:-1]] + [CLEAN]

    def outer_step(
        self, x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, t_next: int, generator: Generators
    ) -> torch.Tensor:
        """DDIM step t -> t_next with x0_hat as the x0-prediction (DDIM eq. 12). No network call."""
        a, a_next = self.schedule.alpha_bar(t), self.schedule.alpha_bar(t_next)
        eps_hat = (x_t - a**0.5 * x0_hat) / (1 - a) ** 0.5
        c = self.outer_eta * ((1 - a_next) / (1 - a)) ** 0.5 * (1 - a / a_next) ** 0.5
        x_next = a_next**0.5 * x0_hat + (1 - a_next - c**2) ** 0.5 * eps_hat
        if c > 0:
            x_next = x_next + c * randn(x_t.shape[1:], x_t.shape[0], generator, x_t.device, x_t.dtype)
        return x_next

    @property
    def anytime_steps(self) -> int:
        return self.outer_steps

    def calls_before(self, j: int) -> int:
        return j * self.inner_steps

    def advance(self, x: torch.Tensor, j: int, meas: SpectralMeasurement, generator: Generators) -> StepCalls:
        """Outer step j (Alg. 2): an inner DDRM run from the outer state x at outer[j] to clean
        (yielding its per-call x0 predictions, kind "inner", then its result x0_hat, kind "outer"),
        then the outer DDIM step to outer[j + 1]; returns that next outer state (x0_hat after the
        last outer step)."""
        times, t_outer = self.inner[j], self.outer[j]
        inner_x, nfe = x, self.calls_before(j)  # the inner process starts from the outer state
        for t, t_next in zip(times[:-1], times[1:]):
            inner_x, x0 = self.step(inner_x, t, t_next, meas, generator)
            nfe += 1
            if t_next != CLEAN:
                yield Record(nfe, x0, t, "inner")
        last = j == self.outer_steps - 1
        yield Record(nfe, inner_x, t_outer, "outer", final=last)
        return inner_x if last else self.outer_step(x, inner_x, t_outer, self.outer[j + 1], generator)
