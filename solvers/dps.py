"""DPS: diffusion posterior sampling (Chung, Kim, Mccann, Klasky, Ye; ICLR 2023,
arXiv:2209.14687), Alg. 1 (Gaussian measurement noise).

Each step (one network call, plus one backward pass through the network):
  x0_hat = (x_t - sqrt(1 - a_t) eps(x_t, t)) / sqrt(a_t), clipped to [-1, 1]   (Alg. 1, line 4)
  x'     = the DDPM posterior sample x_t' ~ q(x_t' | x_t, x0_hat)               (lines 5-6)
  x_t'   = x' - zeta grad_{x_t} ||y - H x0_hat||                                (line 7)
with the released code's step size: the gradient of the residual's norm (not its square) times
zeta = 1.0 (the paper's FFHQ setting; its zeta_i = zeta' / ||y - A(x0_hat)||). On a strided
grid t -> t' the posterior is the DDPM one with beta = 1 - a_t / a_t' (DDIM with eta = 1).
The measurement noise sigma_y enters only through y: DPS's step does not use its value. It needs
only H (and autograd through it), so it takes an operator without an SVD as well (degradations.linear).

Cost: the gradient needs a backward pass through the network at every call, about 2 to 3
times a forward call's time and the activations' memory (scripts/bench.py peers measures it).
The paper uses 1000 calls; at the 20 to 100 calls compared here it is far from its best.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradations.measurement import Measurement
from degradations.noise import Generators
from solvers.diffusion import posterior
from solvers.options import NonNegative, declare, option
from solvers.records import Prior
from solvers.step import StepSolver


class DPS(StepSolver):
    """DPS with `steps` network calls evenly spaced from T - 1 = 999 down to 0.

    zeta: step size of the measurement gradient (1.0)."""

    needs_svd = False

    def __init__(self, prior: Prior, operator, steps: int = 20, zeta: float = 1.0):
        super().__init__(prior, operator, steps)
        if zeta < 0:
            raise ValueError(f"zeta must be >= 0, got {zeta}")
        self.zeta = zeta

    def start(self, calls: int) -> int:
        return self.schedule.T - 1

    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One step t -> t_next (one network call and its backward pass). Returns (x_{t_next}, x0_hat)."""
        a = self.schedule.alpha_bar(t)
        with self.autograd(x_t) as x:
            eps = self.prior(x, self.schedule.t_batch(t, x.shape[0], x.device)).to(x.dtype)
            x0_hat = ((x - (1 - a) ** 0.5 * eps) / a**0.5).clamp(-1, 1)  # line 4
            residual = (meas.y - self.operator.H(x0_hat)).flatten(1).norm(dim=1)
            (grad,) = torch.autograd.grad(residual.sum(), x)  # rows are independent: per-image gradients
        x0_hat = x0_hat.detach()
        x_next = posterior(x_t, x0_hat, a, self.schedule.alpha_bar(t_next), generator)  # lines 5-6
        return x_next.sub_(grad, alpha=self.zeta), x0_hat  # line 7


@dataclass
class Options:
    step_size: NonNegative = option(1.0, "DPS: zeta, the step size of the measurement gradient (its Alg. 1; 1.0 "
                                         "as its FFHQ configs)", arg="zeta", aliases=("zeta",))


SOLVER = declare("dps", "DPS", DPS, Options, "Chung et al. 2023")
