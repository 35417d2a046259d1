"""DDRM: Denoising Diffusion Restoration Models (Kawar, Elad, Ermon, Song; NeurIPS 2022,
arXiv:2201.11793).

The "efficient generalized" sampler, in the spectral domain of an `SVDOperator` H = U diag(s) V^T:
with x_bar = V^T x / sqrt(alpha_bar) (the variance-exploding scale, sigma_t = sqrt(1 - a_t) /
sqrt(a_t)) and y_bar = U^T y / s, each spectral component follows its own conditional
p(x_bar_t' | x_t, x0, y) (sec. 3.3), in three cases:
  no measurement (s_i = 0):           x0_i + sqrt(1 - eta^2) sigma' (x_t,i - x0_i) / sigma_t   + eta sigma' z
  y noisier (s_i sigma' < sigma_y):   x0_i + sqrt(1 - eta^2) sigma' (y_i - x0_i) s_i / sigma_y + eta sigma' z
  y less noisy (s_i sigma' >= sigma_y): (1 - eta_b) x0_i + eta_b y_i + sqrt(sigma'^2 - eta_b^2 sigma_y^2 / s_i^2) z
and p(x_bar_T | y) starts it: y_i plus the missing noise where s_i sigma_T >= sigma_y, pure noise
elsewhere. sigma_y is on the [-1, 1] scale here (meas.sigma_0). (The paper's equation numbers
could not be checked against its text on this machine, so its section is cited.)

Where this differs from the official code, on purpose:
- A measured component whose noise level equals the measurement's (s_i sigma' == sigma_y) takes
  the measurement branch (>=, the official code uses >). With sigma_y = 0 this happens at the
  last step for every measured component, so the result satisfies H x = y exactly, rather than
  being the network's x0 prediction at t = 0 as in the official code.
- The initial state is scaled by sqrt(alpha_bar_t) = 1 / sqrt(1 + sigma_t^2) (the official code
  divides by sigma_t, which differs by sqrt(1 - alpha_bar_t): a factor 0.99994 at t = 950).

`step` is the three cases as written above. What runs by default is `fused_step`, the same step
with its per-component weights tabulated once per run (solvers.step: fewer operators per call;
tests/test_fused_steps.py checks the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradations.measurement import SpectralMeasurement
from degradations.noise import Generators, randn
from solvers.options import Share, declare, option
from solvers.records import Prior
from solvers.step import StepSolver

__all__ = ["DDRM", "SpectralMeasurement"]


class DDRM(StepSolver):
    """DDRM with `steps` network calls on the official grid (950, 900, ..., 0 for 20 steps).

    eta: share of fresh noise where y is absent or noisier than the target (paper's eta, 0.85);
    eta_b: weight of y_bar where y is less noisy than the target (paper's eta_b, default 1.0)."""

    def __init__(self, prior: Prior, operator, steps: int = 20, eta: float = 0.85, eta_b: float = 1.0,
                 fused: bool = True):
        super().__init__(prior, operator, steps, fused)
        if not 0.0 <= eta <= 1.0 or not 0.0 <= eta_b <= 1.0:
            raise ValueError(f"eta and eta_b must lie in [0, 1], got {eta}, {eta_b}")
        self.eta, self.eta_b = eta, eta_b

    def initial_state(self, meas: SpectralMeasurement, t: int, generator: Generators) -> torch.Tensor:
        """x_t drawn from DDRM's p(x_T | y) in the spectral domain: y_bar plus the missing noise
        where the measurement is less noisy than sigma_t, pure noise elsewhere."""
        sigma_t = self.schedule.sigma(t)
        z = randn((self.operator.n,), meas.u_y.shape[0], generator, meas.u_y.device, meas.u_y.dtype)
        use_y = meas.measured & (meas.s * sigma_t >= meas.sigma_0)
        extra = (sigma_t**2 - meas.floor).clamp_min(0).sqrt()
        v = torch.where(use_y, meas.y_bar + extra * z, sigma_t * z)
        return self.schedule.alpha_bar(t) ** 0.5 * self.operator.V(v)

    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: SpectralMeasurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDRM step t -> t_next (one network call): the three cases of the module docstring,
        per spectral component. Returns (x_{t_next}, the network's x0 prediction)."""
        eps, x0 = self.predict(x_t, t)
        op, eta, eta_b, s, sigma_y = self.operator, self.eta, self.eta_b, meas.s, meas.sigma_0
        sigma_t, sigma_n = self.schedule.sigma(t), self.schedule.sigma(t_next)
        x0_bar = op.Vt(x0)
        xt_bar = op.Vt(x_t) / self.schedule.alpha_bar(t) ** 0.5  # x0_bar + sigma_t eps_bar
        z = randn((op.n,), x_t.shape[0], generator, x_t.device, x_t.dtype)
        keep = (1 - eta**2) ** 0.5 * sigma_n
        unmeasured = x0_bar + keep * (xt_bar - x0_bar) / sigma_t + eta * sigma_n * z
        noisier = x0_bar + keep * (meas.y_bar - x0_bar) * (s / sigma_y if sigma_y > 0 else 0.0) + eta * sigma_n * z
        less_noisy = (1 - eta_b) * x0_bar + eta_b * meas.y_bar + (sigma_n**2 - eta_b**2 * meas.floor).clamp_min(0).sqrt() * z
        x_bar = torch.where(~meas.measured, unmeasured, torch.where(s * sigma_n >= sigma_y, less_noisy, noisier))
        return self.schedule.alpha_bar(t_next) ** 0.5 * op.V(x_bar), x0

    # -- the fused form: the same step, its weights tabulated once per run ----------------------
    coefficient_count = 4

    def coefficients(self, meas: SpectralMeasurement, pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        """(P, Q, C, D), each (K, n): step t -> t_next is x_{t_next} = V(P v_t + Q v_eps + C z + D y_bar),
        v_t = V^T x_t, v_eps = V^T eps: the three cases written as A v0 + B v_eps + C z + D y_bar,
        v0 = V^T x0 = (v_t - sqrt(1 - a) v_eps) / sqrt(a), all times sqrt(a'), with keep =
        sqrt(1 - eta^2) sigma_n:
          no measurement:  A = 1,                     B = keep, C = eta sigma_n,                              D = 0
          y noisier:       A = 1 - keep s / sigma_0,  B = 0,    C = eta sigma_n,                              D = keep s / sigma_0
          y less noisy:    A = 1 - eta_b,             B = 0,    C = sqrt(sigma_n^2 - eta_b^2 floor),          D = eta_b"""
        sigma_n = meas.column(self.schedule.sigma(t_next) for _, t_next in pairs)
        root_a_next = meas.column(self.schedule.alpha_bar(t_next) ** 0.5 for _, t_next in pairs)
        root_a = meas.column(self.schedule.alpha_bar(t) ** 0.5 for t, _ in pairs)
        eta, eta_b, s, sigma_0 = self.eta, self.eta_b, meas.s, meas.sigma_0
        keep = (1 - eta**2) ** 0.5 * sigma_n
        less = meas.measured & (s * sigma_n >= sigma_0)
        extra = (sigma_n**2 - eta_b**2 * meas.floor).clamp_min(0).sqrt()
        if sigma_0 > 0:
            gain = keep * s / sigma_0
            a = torch.where(less, 1 - eta_b, torch.where(meas.measured, 1 - gain, 1.0))
            d = torch.where(less, eta_b, torch.where(meas.measured, gain, 0.0))
        else:  # every measured component is less noisy than sigma_n
            a = torch.where(meas.measured, 1 - eta_b, torch.ones_like(sigma_n))
            d = torch.where(meas.measured, eta_b, torch.zeros_like(sigma_n))
        b = torch.where(meas.measured, 0.0, keep)
        c = torch.where(less, extra, eta * sigma_n)
        p = a / root_a  # A v0 + B v_eps = (A / sqrt(a)) v_t + (B - A sqrt(1 - a) / sqrt(a)) v_eps
        q = b - p * (1 - root_a**2).sqrt()
        return p * root_a_next, q * root_a_next, c * root_a_next, d * root_a_next

    def fused_step(self, x_t: torch.Tensor, t: int, t_next: int, meas: SpectralMeasurement,
                   generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """`step` as V(P v_t + Q v_eps + C z + D y_bar), v_t taken from the previous step's V."""
        eps, x0 = self.predict(x_t, t)
        p, q, c, d = self.step_coefficients(meas, t, t_next)
        z = randn((self.operator.n,), x_t.shape[0], generator, x_t.device, x_t.dtype)
        v = torch.mul(meas.coords(x_t), p).addcmul_(q, self.operator.Vt(eps)).addcmul_(c, z)
        return meas.image(v.addcmul_(d, meas.y_bar)), x0


@dataclass
class Options:
    eta: Share = option(0.85, "DDRM and DDNM: the share of fresh noise where y is absent or noisier than the "
                              "step's noise level (the papers' eta)")
    eta_b: Share = option(1.0, "DDRM: the weight of y where it is less noisy than the step's noise level (eta_b)")


SOLVER = declare("ddrm", "DDRM", DDRM, Options, "Kawar et al. 2022")
