"""PiGDM: pseudoinverse-guided diffusion models (Song, Vahdat, Mardani, Kautz; ICLR 2023), in the
SVD form of the toolkit's operators.

The paper approximates p(x0 | x_t) by N(x0_hat, r_t^2 I) with r_t^2 = 1 - a_t (its choice for
data of unit variance), so that the likelihood of the measurement is Gaussian,
p(y | x_t) ~ N(H x0_hat, r_t^2 H H^T + sigma^2 I), and guides each DDIM step by its score taken
through the network by one vector-Jacobian product:

  x0_hat = (x_t - sqrt(1 - a_t) eps(x_t, t)) / sqrt(a_t)                     (Ho et al. 2020, eq. 15)
  g      = (d x0_hat / d x_t)^T H^T (H H^T + (sigma^2 / r_t^2) I)^-1 (y - H x0_hat)
         = (d x0_hat / d x_t)^T V diag(s / (s^2 + sigma^2 / r_t^2)) (U^T y - s V^T x0_hat)
  x_t'   = DDIM(x_t, x0_hat; eta) + w sqrt(a_t a_t') g                        (DDIM: Song et al. 2021, eq. 12)

g is r_t^2 times the likelihood's score, so that without noise it is the paper's pseudo-inverse
guidance, (d x0_hat / d x_t)^T H^+ (y - H x0_hat): the noisy variant tends to it as sigma -> 0.
Unmeasured components (s = 0) get no guidance. The weighted residual is the measurement's
(degradations.measurement: closed form for an SVD operator, conjugate gradients on the
measurement side for one known only through H and H^T, so PiGDM takes either). The step and r_t agree with two public
implementations read side by side: azula's PGDMSampler (the step sqrt(a_t a_t') w g) and
InverseBench's PiGDM (in the variance-exploding form, x += g with r_t^2 = sigma_t^2 / (1 +
sigma_t^2), which is 1 - a_t for sigma_t^2 = (1 - a_t) / a_t; mapped to this VP form the
factor is sqrt(a_t a_t')). InverseBench's eta 0.2 is the share of fresh noise in its DDIM step;
ours is DDIM's eta (the `ddim_eta` option), 1 by default (fresh noise as DDPM). The paper's text was not at hand, so its
equation numbers are not cited and the defaults (eta 1, w 1, DDRM's grid) are this toolkit's,
not measured against the paper's. Exactness: for a Gaussian prior of unit
variance the approximation is exact, and g is then r_t^2 times the true score of p(y | x_t)
(tests/test_inner_solvers.py checks it against the closed form).

Cost: one forward and one backward pass through the network per call, as DPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradations.measurement import Measurement
from degradations.noise import Generators
from solvers.diffusion import ddim
from solvers.options import NonNegative, Share, declare, option
from solvers.records import Prior
from solvers.step import StepSolver


class PiGDM(StepSolver):
    """PiGDM with `steps` network calls on DDRM's grid (950, 900, ..., 0 for 20).

    eta: DDIM's eta (1: fresh noise as DDPM); zeta: the guidance weight w (1)."""

    needs_svd = False

    def __init__(self, prior: Prior, operator, steps: int = 20, eta: float = 1.0, zeta: float = 1.0):
        super().__init__(prior, operator, steps)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must lie in [0, 1], got {eta}")
        if zeta < 0:
            raise ValueError(f"zeta must be >= 0, got {zeta}")
        self.eta, self.zeta = eta, zeta

    def guidance(self, x_t: torch.Tensor, t: int, meas: Measurement) -> tuple[torch.Tensor, torch.Tensor]:
        """(g, x0_hat) at x_t: the guidance (module docstring) and the network's x0 estimate."""
        a = self.schedule.alpha_bar(t)
        with self.autograd(x_t) as x:
            eps = self.prior(x, self.schedule.t_batch(t, x.shape[0], x.device)).to(x.dtype)
            x0_hat = (x - (1 - a) ** 0.5 * eps) / a**0.5
            direction = meas.weighted_residual(x0_hat.detach(), meas.sigma_0**2 / (1 - a))  # H^T (H H^T + c I)^-1 (y - H x0_hat)
            (g,) = torch.autograd.grad(x0_hat, x, grad_outputs=direction)  # one backward pass (a VJP)
        return g, x0_hat.detach()

    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One step t -> t_next (one network call and its backward pass). Returns (x_{t_next}, x0_hat)."""
        g, x0_hat = self.guidance(x_t, t, meas)
        a, a_next = self.schedule.alpha_bar(t), self.schedule.alpha_bar(t_next)
        return ddim(x_t, x0_hat, a, a_next, self.eta, generator) + self.zeta * (a * a_next) ** 0.5 * g, x0_hat


@dataclass
class Options:
    ddim_eta: Share = option(1.0, "PiGDM: DDIM's eta in its steps (0 deterministic, 1 fresh noise as DDPM)",
                             arg="eta")
    guidance: NonNegative = option(1.0, "PiGDM: the guidance weight w (1)", arg="zeta", aliases=("zeta",))


SOLVER = declare("pigdm", "PiGDM", PiGDM, Options, "Song et al. 2023")
