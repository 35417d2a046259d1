"""RED-diff: regularisation by denoising diffusion, a variational sampler (Mardani, Song, Kautz,
Vahdat; ICLR 2024, arXiv:2305.04391), Alg. 1, with its released code's weights.

RED-diff fits one clean image mu to the measurement and to the prior, by stochastic optimisation
over the diffusion times t, from high noise to low (Alg. 1; the variational bound of eq. 7 with
the score-matching regulariser of eq. 10 and its stop-gradient form, eq. 12):
  eps    ~ N(0, I);  x_t = sqrt(a_t) mu + sqrt(1 - a_t) eps                  (Alg. 1, lines 3-4)
  loss   = ||y - H mu||^2 / (2 m) + lambda_t sg[eps_theta(x_t, t) - eps]^T mu / n   (eq. 12)
  mu     <- Adam(mu, grad loss)                                              (line 6)
with lambda_t = lambda sigma_t, sigma_t = sqrt(1 - a_t) / sqrt(a_t) (the inverse square root
of the SNR: the released code's "linear" weighting), lambda = 0.25, Adam's betas (0.9, 0.99) as
released and lr 0.1 (the released image configs'; InverseBench's 0.5 lost 1.4 to 2.3 dB at 20
calls on two held-out images at 64 px, sr4 and deblur_gauss with sigma_y 0.05); m and n (the sizes of y and of mu) are the released code's two
means (m counts what H measures, so a y padded with zeros, deepinv's masked image, weighs as without them), and its observation weight 1 replaces the paper's 1 / sigma_v^2 (the noise level does not
enter). The gradient is written in closed form,
  grad = -H^T (y - H mu) / m + lambda_t (eps_theta(x_t, t) - eps) / n,
so the network is called once per step and never differentiated (no autograd at all: it runs
under torch.inference_mode()). mu starts at 0, as InverseBench's RED-diff (the paper starts at
H^+ y: with noise, H^+ y of a blur is mostly amplified noise, 8 dB against 16 from 0 in the same
check), and the times are DDRM's grid, 950, 900, ..., 0 for 20 calls (the code's skip-spaced descent).

As a StepSolver: the state between calls is x_t' = sqrt(a_t') mu + sqrt(1 - a_t') eps' with a
fresh eps' (the next call's noise, drawn one call early), so a call reads eps back from x_t and
mu (eps = (x_t - sqrt(a_t) mu) / sqrt(1 - a_t), solvers.diffusion.eps_from_x0). mu and Adam's
moments are the run's state: kept beside the measurement (`meas.keep`, `_Variational`) for the tensor the last
call made. A call from any other state (a run's first x_t, Nested's outer state) starts a new
optimisation: mu = 0 when x_t is the run's first state (`initial_state` keeps it), else mu = the network's x0 at x_t (Tweedie's formula: the inner process starts
from the outer x_t, as every nested solver does) with fresh Adam moments. The shown estimate of a
call is mu after its Adam step; the result is the last mu.
Departures: the released code runs 1000 steps; here 20 to 100. Resuming a saved run between
two calls restarts the optimisation from the saved state (not bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradations.measurement import Measurement
from degradations.noise import Generators
from solvers.diffusion import eps_from_x0, renoise
from solvers.options import NonNegative, Positive, declare, option
from solvers.records import Prior
from solvers.step import StepSolver

BETAS = (0.9, 0.99)  # the released code's Adam
ADAM_EPS = 1e-8  # torch.optim.Adam's


@dataclass
class _Variational:
    """mu, Adam's moments and step count of a run: kept beside the measurement (meas.keep) for
    the state tensor its last call made."""

    mu: torch.Tensor
    m1: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    k: int = 0


class REDDiff(StepSolver):
    """RED-diff with `steps` network calls (each one Adam step on mu).

    lambda_: the regulariser's weight lambda (0.25); lr: Adam's step size (0.1); obs_weight:
    the measurement term's weight (1)."""

    needs_svd = False

    def __init__(self, prior: Prior, operator, steps: int = 20, lambda_: float = 0.25, lr: float = 0.1,
                 obs_weight: float = 1.0):
        super().__init__(prior, operator, steps)
        if lambda_ < 0 or lr <= 0 or obs_weight < 0:
            raise ValueError(f"lambda_ >= 0, lr > 0 and obs_weight >= 0 needed, got {lambda_}, {lr}, {obs_weight}")
        self.lambda_, self.lr, self.obs_weight = lambda_, lr, obs_weight

    def initial_state(self, meas: Measurement, t: int, generator: Generators) -> torch.Tensor:
        """x_t as StepSolver's (practically pure noise at t = 950), with mu = 0 kept for it (InverseBench's start)."""
        x = super().initial_state(meas, t, generator)
        meas.keep("reddiff", x, _Variational(torch.zeros_like(x)))
        return x

    def gradient(self, mu: torch.Tensor, eps_hat: torch.Tensor, eps: torch.Tensor, t: int,
                 meas: Measurement) -> torch.Tensor:
        """The gradient of eq. 12's loss in mu (module docstring), per image."""
        a = self.schedule.alpha_bar(t)
        n, m = mu[0].numel(), meas.count  # the entries of mu and of y (as measured)
        fit = self.operator.Ht(meas.y - self.operator.H(mu)).view_as(mu)
        return (eps_hat - eps) * (self.lambda_ * ((1 - a) / a) ** 0.5 / n) - fit * (self.obs_weight / m)

    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One call at t: eps_theta(x_t, t), one Adam step on mu, then x_t' from the new mu and fresh noise."""
        state = meas.kept("reddiff", x_t)
        eps_hat, x0 = self.predict(x_t, t)
        if state is None:
            state = _Variational(x0)  # a new optimisation from this state's Tweedie estimate
        a = self.schedule.alpha_bar(t)
        eps = eps_from_x0(x_t, state.mu, a)  # the noise x_t was made with (Alg. 1, line 4)
        g = self.gradient(state.mu, eps_hat, eps, t, meas)
        k = state.k + 1  # Adam (Kingma and Ba 2015, Alg. 1), as torch.optim.Adam computes it
        m1 = g * (1 - BETAS[0]) if state.m1 is None else state.m1 * BETAS[0] + g * (1 - BETAS[0])
        m2 = g * g * (1 - BETAS[1]) if state.m2 is None else state.m2 * BETAS[1] + g * g * (1 - BETAS[1])
        denom = (m2 / (1 - BETAS[1] ** k)).sqrt_().add_(ADAM_EPS)
        mu = state.mu - (self.lr / (1 - BETAS[0] ** k)) * m1 / denom
        x_next = renoise(mu, mu, self.schedule.alpha_bar(t_next), 1.0, generator)  # lines 3-4 of the next call
        meas.keep("reddiff", x_next, _Variational(mu, m1, m2, k))
        return x_next, mu


@dataclass
class Options:
    reg_weight: NonNegative = option(0.25, "RED-diff: lambda, the denoising regulariser's weight (lambda_t = "
                                           "lambda sigma_t)", arg="lambda_")
    adam_lr: Positive = option(0.1, "RED-diff: Adam's step size on mu", arg="lr")
    obs_weight: NonNegative = option(1.0, "RED-diff: the measurement term's weight")


SOLVER = declare("reddiff", "RED-diff", REDDiff, Options, "Mardani et al. 2024")
