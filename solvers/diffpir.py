"""DiffPIR: denoising diffusion models for plug-and-play image restoration (Zhu, Zhang, Liang,
Cao, Wen, Timofte, Van Gool; CVPR 2023 workshops, arXiv:2305.08995), Alg. 1.

Each step (one network call):
  x0      = the network's clean estimate at t                                   (Alg. 1, line 3)
  x0_hat  = argmin_x ||y - H x||^2 + rho_t ||x - x0||^2,
            rho_t = lambda sigma_n^2 / sigma_t^2                                (line 4, eq. 13)
  eps_hat = (x_t - sqrt(a_t) x0_hat) / sqrt(1 - a_t)                           (line 5)
  x_t'    = sqrt(a') x0_hat + sqrt(1 - a') (sqrt(1 - zeta) eps_hat + sqrt(zeta) z)  (line 7, eq. 15)
The data step has a closed form in the SVD basis: component i becomes
(s_i u_i + rho v0_i) / (s_i^2 + rho) where measured, v0_i elsewhere. For an operator known only
through H and H^T (degradations.linear) it is the solve (H^T H + rho I) x = H^T y + rho x0 by
conjugate gradients from x0 (degradations.cg.proximal; `cg_iterations` at most, each one H and one H^T).

Scales and defaults, as in the released code: sigma_t = sqrt(1 - a_t) / sqrt(a_t) (the model's
[-1, 1] scale) and sigma_n the measurement noise std on the [0, 1] pixel scale, floored at 0.001
(so a noiseless measurement is almost a projection); lambda = 1, zeta = 0.1 (its
super-resolution and deblurring configs; its inpainting config uses zeta = 1). The data step is
the measurement's `prox` (closed form for an SVD operator, CG otherwise:
degradations.measurement). Time grid: from T - 1 = 999 down to 0 with quadratic spacing (the code's "quad" skip: large steps while the
noise is high); x0 clipped to [-1, 1]. One difference: the data step is applied at the last
call too, so x0_hat, not the bare network estimate, is the result. With a noisy measurement,
lambda 1 takes the weakly measured frequencies from y with their noise (deblurring with sigma_y
0.05: 14.6 dB; lambda 30: 25.1 dB; docs/studies/any-blur.md, "DiffPIR and its lambda").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradations.cg import ITERATIONS, TOLERANCE
from degradations.measurement import Measurement
from degradations.noise import Generators, randn
from solvers.diffusion import eps_from_x0, renoise
from solvers.options import Positive, Share, declare, option
from solvers.records import Prior
from solvers.schedule import CLEAN
from solvers.step import Pair, StepSolver

SIGMA_FLOOR = 0.001  # the released code's max(0.001, sigma_n), on the [0, 1] scale


class DiffPIR(StepSolver):
    """DiffPIR with `steps` network calls. lambda_: weight of the prior term in rho_t (1.0);
    zeta: share of fresh noise in the re-noising step (0.1). The network's x0 is clipped to
    [-1, 1] before the data step, as in the released code (clip_denoised): at t = 999 an
    unclipped x0 reaches |x0| ~ 50 and costs 1 to 3 dB at 20 calls (scripts/bench.py peers).
    cg_iterations, cg_tolerance: the most conjugate-gradient iterations of a data step and the
    relative residual that ends it, for an operator without an SVD (unused otherwise)."""

    clip_x0 = True
    needs_svd = False

    def __init__(self, prior: Prior, operator, steps: int = 20, lambda_: float = 1.0, zeta: float = 0.1,
                 cg_iterations: int = ITERATIONS, cg_tolerance: float = TOLERANCE, fused: bool = True):
        super().__init__(prior, operator, steps, fused)
        if lambda_ <= 0:
            raise ValueError(f"lambda_ must be > 0, got {lambda_}")
        if not 0.0 <= zeta <= 1.0:
            raise ValueError(f"zeta must lie in [0, 1], got {zeta}")
        if cg_iterations < 1 or not cg_tolerance > 0:
            raise ValueError(f"cg_iterations must be >= 1 and cg_tolerance > 0, got {cg_iterations}, {cg_tolerance}")
        self.lambda_, self.zeta = lambda_, zeta
        self.cg_iterations, self.cg_tolerance = cg_iterations, cg_tolerance

    def start(self, calls: int) -> int:
        return self.schedule.T - 1

    def grid(self, t_start: int, calls: int) -> list[int]:
        """t_k = t_start (1 - sqrt(k / (calls - 1))), k = 0 .. calls - 1, then CLEAN."""
        if calls == 1:
            return [t_start, CLEAN]
        times = [round(t_start * (1 - (k / (calls - 1)) ** 0.5)) for k in range(calls)]
        if len(set(times)) != calls:
            raise ValueError(f"cannot fit {calls} distinct steps between t={t_start} and 0")
        return times + [CLEAN]

    def rho(self, sigma_0: float, t: int) -> float:
        """rho_t = lambda sigma_n^2 / sigma_t^2 (eq. 13), sigma_n on the [0, 1] scale, floored."""
        return self.lambda_ * max(SIGMA_FLOOR, sigma_0 / 2) ** 2 / self.schedule.sigma(t) ** 2

    def prepare(self, meas: Measurement, pairs: list[Pair]) -> None:
        """The closed-form data steps' weights of every step at once (a speed-up only)."""
        meas.tabulate_prox(self.rho(meas.sigma_0, t) for t, _ in pairs)

    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One step t -> t_next (one network call). Returns (x_{t_next}, x0_hat)."""
        _, x0 = self.predict(x_t, t, eps=False)  # line 3
        x0_hat = meas.prox(x0, self.rho(meas.sigma_0, t), self.cg_iterations, self.cg_tolerance)  # line 4, eq. 13
        if t_next == CLEAN:
            return x0_hat, x0_hat
        eps_hat = eps_from_x0(x_t, x0_hat, self.schedule.alpha_bar(t))  # line 5
        return renoise(x0_hat, eps_hat, self.schedule.alpha_bar(t_next), self.zeta**0.5, generator), x0_hat  # line 7

    def fused_step(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
                   generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """`step` with lines 5 and 7 in one expression (3 operators instead of 9):
        x' = sqrt(a') x0_hat + c (x_t - sqrt(a) x0_hat) / sqrt(1 - a) + sqrt((1 - a') zeta) z,
        c = sqrt((1 - a')(1 - zeta))."""
        _, x0 = self.predict(x_t, t, eps=False)
        x0_hat = meas.prox(x0, self.rho(meas.sigma_0, t), self.cg_iterations, self.cg_tolerance)
        if t_next == CLEAN:
            return x0_hat, x0_hat
        a, a_next = self.schedule.alpha_bar(t), self.schedule.alpha_bar(t_next)
        c = ((1 - a_next) * (1 - self.zeta)) ** 0.5 / (1 - a) ** 0.5
        x = torch.add(x0_hat.mul(a_next**0.5 - c * a**0.5), x_t, alpha=c)
        if self.zeta > 0:
            z = randn(x0_hat.shape[1:], x0_hat.shape[0], generator, x0_hat.device, x0_hat.dtype)
            x.add_(z, alpha=((1 - a_next) * self.zeta) ** 0.5)
        return x, x0_hat


@dataclass
class Options:
    lam: Positive = option(1.0, "DiffPIR: lambda, the prior term's weight in its data step (1.0 as its released "
                                "code; 30 measured best on noisy deblurring: docs/studies/any-blur.md)",
                           arg="lambda_", flag="--lambda")
    noise_share: Share = option(0.1, "DiffPIR: zeta, the share of fresh noise when it re-noises (its eq. 15; 0.1 "
                                     "as its SR and deblurring configs)", arg="zeta", aliases=("zeta",))


SOLVER = declare("diffpir", "DiffPIR", DiffPIR, Options, "Zhu et al. 2023")
