"""DDRM: Denoising Diffusion Restoration Models (Kawar, Elad, Ermon, Song; NeurIPS 2022).

The "efficient generalized" sampler of the paper's appendix, in the spectral domain of an
`SVDOperator` H = U diag(s) V^T. One network call per step. The step is the paper's
(arXiv:2201.11793) variational conditional p(x_t | x_{t+1}, x_0, y) per spectral component, in
three cases: no measurement (s_i = 0), a measurement noisier than the target noise level
(s_i sigma_t < sigma_y) and a less noisy one (s_i sigma_t >= sigma_y); p(x_T | y) starts it.
sigma_t = sqrt(1 - alpha_bar_t) / sqrt(alpha_bar_t) and sigma_y are on the [-1, 1] scale here.

Where this differs from the official code, on purpose:
- A measured component whose noise level equals the measurement's (s_i sigma_next == sigma_0)
  takes the measurement branch (>=, the official code uses >). With sigma_y = 0 this happens at
  the last step for every measured component, so the result satisfies H x = y exactly, rather
  than being the network's x0 prediction at t = 0 as in the official code.
- The initial state is scaled by sqrt(alpha_bar_t) = 1 / sqrt(1 + sigma_t^2) (the official code
  divides by sigma_t, which differs by sqrt(1 - alpha_bar_t): a factor 0.99994 at t = 950).
"""

from __future__ import annotations

import torch

from degradations.noise import Generators, randn
from solvers.records import Prior
from solvers.step import SpectralMeasurement, StepSolver

__all__ = ["DDRM", "SpectralMeasurement"]


class DDRM(StepSolver):
    """DDRM with `steps` network calls on the official grid (950, 900, ..., 0 for 20 steps).

    eta: share of fresh noise where y is absent or noisier than the target (paper's eta, 0.85);
    eta_b: weight of y_bar where y is less noisy than the target (paper's eta_b, default 1.0)."""

    def __init__(self, prior: Prior, operator, steps: int = 20, eta: float = 0.85, eta_b: float = 1.0):
        super().__init__(prior, operator, steps)
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

    coefficient_count = 4

    def coefficients(self, meas: SpectralMeasurement, pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        """(P, Q, C, D), each (K, n): step t -> t_next is x_{t_next} = V(P v_t + Q v_eps + C z + D y_bar),
        v_t = V^T x_t, v_eps = V^T eps. Per spectral component, the three cases of the paper's
        conditional (sec. 3.3), with v0 = V^T x0 = (v_t - sqrt(1 - a) v_eps) / sqrt(a):
          no measurement (s_i = 0):                v0 + keep v_eps + eta sigma_n z
          y less noisy (s_i sigma_n >= sigma_0):   (1 - eta_b) v0 + eta_b y_bar + sqrt(sigma_n^2 - eta_b^2 floor) z
          y noisier (s_i sigma_n < sigma_0):       v0 + keep (U^T y - s v0) / sigma_0 + eta sigma_n z
                                                 = (1 - keep s / sigma_0) v0 + (keep s / sigma_0) y_bar + eta sigma_n z
        i.e. A v0 + B v_eps + C z + D y_bar, keep = sqrt(1 - eta^2) sigma_n, all times sqrt(a')."""
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

    def step(
        self, x_t: torch.Tensor, t: int, t_next: int, meas: SpectralMeasurement, generator: Generators
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDRM step t -> t_next (one network call). Returns (x_{t_next}, x0 prediction)."""
        eps, x0 = self.predict(x_t, t)
        p, q, c, d = self.step_coefficients(meas, t, t_next)
        z = randn((self.operator.n,), x_t.shape[0], generator, x_t.device, x_t.dtype)
        # V(P v_t + Q v_eps + C z + D y_bar): the three cases, fused (see coefficients)
        v = torch.mul(self.spectral(x_t), p).addcmul_(q, self.operator.Vt(eps)).addcmul_(c, z)
        return self.image(v.addcmul_(d, meas.y_bar)), x0
