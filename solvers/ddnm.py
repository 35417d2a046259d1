"""DDNM and DDNM+: zero-shot restoration by range-null space decomposition (Wang, Yu, Zhang;
ICLR 2023, arXiv:2212.00490).

Each step takes the network's clean estimate x0|t, replaces its range-space part by the
measurement's, x0_hat = A^+ y + (I - A^+ A) x0|t (sec. 3.2, Alg. 1), and goes back to the next
time with DDIM's update as the released code writes it: x_{t'} = sqrt(a') x0_hat +
sqrt(1 - a') (eta z + sqrt(1 - eta^2) eps). In the SVD basis A^+ y is y_bar and (I - A^+ A)
keeps the unmeasured components, so the step is element-wise.

With noisy measurements (sigma_y > 0) this is DDNM+ (sec. 3.3, Alg. 2): only a share lambda_i of
the range-space correction is applied, x0_hat = x0|t - Sigma_t A^+ (A x0|t - y) with
Sigma_t = V diag(lambda) V^T, chosen so that the measurement noise it brings in,
lambda_i sigma_0 / s_i, does not exceed the noise level sigma' of the next time:
lambda_i = min(1, sigma' s_i / sigma_0); the fresh noise then fills what is left,
Phi_t = sigma'^2 - (lambda_i sigma_0 / s_i)^2 (all in DDRM's variance-exploding units,
sigma' = sqrt(1 - a') / sqrt(a'), sigma_0 = 2 sigma_y on the [-1, 1] scale). DDNM+'s other
device, "time travel" (repeating steps), is not used: it costs network calls.

With sigma_y = 0 the result satisfies H x = y exactly (the last step returns x0_hat).

`step` is the above as written; what runs by default is `fused_step`, the same step with lambda
and the noise tabulated once per run (solvers.step; tests/test_fused_steps.py checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradations.measurement import SpectralMeasurement
from degradations.noise import Generators, randn
from solvers.options import Share, declare, option
from solvers.records import Prior
from solvers.schedule import CLEAN
from solvers.step import StepSolver


class DDNM(StepSolver):
    """DDNM (DDNM+ when sigma_y > 0) with `steps` network calls on DDRM's grid (the released
    code's: 950, 900, ..., 0 for 20). eta: share of fresh noise (the released code's 0.85)."""

    def __init__(self, prior: Prior, operator, steps: int = 20, eta: float = 0.85, fused: bool = True):
        super().__init__(prior, operator, steps, fused)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must lie in [0, 1], got {eta}")
        self.eta = eta

    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: SpectralMeasurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One step t -> t_next (one network call), as the module docstring writes it. Returns
        (x_{t_next}, x0_hat)."""
        eps, x0 = self.predict(x_t, t)
        op, sigma_n = self.operator, self.schedule.sigma(t_next)
        if meas.sigma_0 > 0:  # DDNM+: lambda_i = min(1, sigma' s_i / sigma_0) (Alg. 2)
            lam = torch.where(meas.measured, (sigma_n * meas.s / meas.sigma_0).clamp(max=1.0), 0.0)
        else:  # DDNM: the whole range-space correction (Alg. 1)
            lam = meas.measured.to(x0.dtype)
        v_hat = torch.lerp(op.Vt(x0), meas.y_bar, lam)  # A^+ y + (I - A^+ A) x0|t, a lambda share of it
        x0_hat = op.V(v_hat)
        if t_next == CLEAN:
            return x0_hat, x0_hat
        # re-noise to t' (in V's coordinates, as the fused form draws z): sqrt(a') (v_hat + noise
        # (sqrt(1 - eta^2) eps + eta z)), noise = sigma' (DDNM), or what is left of it after the
        # measurement noise lambda brought in (DDNM+: sqrt(sigma'^2 - lambda^2 sigma_0^2 / s^2))
        noise = (sigma_n**2 - lam.square() * meas.floor).clamp_min(0).sqrt() if meas.sigma_0 > 0 else sigma_n
        z = randn((op.n,), x_t.shape[0], generator, x_t.device, x_t.dtype)
        v = v_hat + noise * ((1 - self.eta**2) ** 0.5 * op.Vt(eps) + self.eta * z)
        return self.schedule.alpha_bar(t_next) ** 0.5 * op.V(v), x0_hat

    # -- the fused form: the same step, lambda and the noise tabulated once per run -------------
    coefficient_count = 4

    def coefficients(self, meas: SpectralMeasurement, pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        """(lam, R, E, Z), each (K, n): x0_hat = V(lerp(v0, y_bar, lam)) and x_{t'} = V(R v_hat + E v_eps + Z z)
        with R = sqrt(a'), E = sqrt(a') noise sqrt(1 - eta^2), Z = sqrt(a') noise eta (module docstring):
        DDNM+ lam_i = min(1, sigma' s_i / sigma_0) and noise_i = sqrt(sigma'^2 - lam_i^2 floor_i)
        (Alg. 2), DDNM lam_i = 1 where measured and noise sigma' (Alg. 1)."""
        sigma_n = meas.column(self.schedule.sigma(t_next) for _, t_next in pairs)
        root_a = meas.column(self.schedule.alpha_bar(t_next) ** 0.5 for _, t_next in pairs)
        if meas.sigma_0 > 0:
            lam = torch.where(meas.measured, (sigma_n * meas.s / meas.sigma_0).clamp(max=1.0), 0.0)
            noise = (sigma_n**2 - lam.square() * meas.floor).clamp_min(0).sqrt()
        else:
            lam = meas.measured.to(meas.s.dtype).expand(len(pairs), -1)
            noise = sigma_n.expand_as(lam)
        scaled = root_a * noise
        return lam, root_a.expand_as(lam), scaled * (1 - self.eta**2) ** 0.5, scaled * self.eta

    def fused_step(self, x_t: torch.Tensor, t: int, t_next: int, meas: SpectralMeasurement,
                   generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """`step` with its weights from the run's table."""
        eps, x0 = self.predict(x_t, t)
        lam, r, e, z_share = self.step_coefficients(meas, t, t_next)
        v_hat = torch.lerp(self.operator.Vt(x0), meas.y_bar, lam)  # A^+ y + (I - A^+ A) x0|t, a lam share of it
        x0_hat = self.operator.V(v_hat)
        if t_next == CLEAN:
            return x0_hat, x0_hat
        z = randn((self.operator.n,), x_t.shape[0], generator, x_t.device, x_t.dtype)
        # sqrt(a') (v_hat + noise (sqrt(1 - eta^2) eps + eta z)); not in place: x0_hat may be a view of v_hat
        v = torch.mul(v_hat, r).addcmul_(e, self.operator.Vt(eps)).addcmul_(z_share, z)
        return self.operator.V(v), x0_hat


@dataclass
class Options:
    eta: Share = option(0.85, "DDRM and DDNM: the share of fresh noise where y is absent or noisier than the "
                              "step's noise level (the papers' eta)")


SOLVER = declare("ddnm", "DDNM", DDNM, Options, "Wang et al. 2023")
