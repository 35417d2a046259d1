"""DAPS: decoupled annealing posterior sampling (Zhang, Ji, Zhang, Yu, Jaakkola, Chen;
CVPR 2025, arXiv:2407.01521), Alg. 1, with its released code's defaults where they apply.

DAPS anneals a noise level sigma_t from sigma_max down to sigma_min. At each level (Alg. 1):
  x0_hat = ODE(x_t, sigma_t -> 0): the probability-flow ODE solved with a few network calls
                                                                           (Alg. 1 line 3; sec. 3.3)
  x0     ~ p(x0 | x_t, y) ∝ N(x0; x0_hat, r_t^2 I) N(y; H x0, tau^2 I), by Langevin steps
           x0 <- x0 - lr (H^T (H x0 - y) / tau^2 + (x0 - x0_hat) / r_t^2) + sqrt(2 lr) z
                                                                           (lines 4-6; eq. 9)
  x_t'   = x0 + sigma_t' eps                                               (line 7; eq. 6)
The gradient is in closed form (one H and one H^T per Langevin step, no network), so DAPS takes
any operator known through H and H^T, runs under torch.inference_mode() and never differentiates
the network. The network calls are what DAPS counts: annealing levels x ODE steps.

Mapping the paper's EDM (variance-exploding) noise levels onto this toolkit's DDPM schedule:
sigma = sqrt((1 - a_t) / a_t) with a_t = alpha_bar_t, and x_VP = sqrt(a_t) x_VE, so a level sigma is
the DDPM time whose sigma is nearest (sigma_max 100 -> t 953, sigma_min 0.1 -> t 26 for the
linear schedule), the paper's Euler step of the ODE in VE form, x' = D + sigma' (x - D) / sigma,
is exactly DDIM's deterministic step (solvers.diffusion.ddim, eta 0) between the two times, and
re-noising x0 to sigma_t' is q(x_t' | x0) (solvers.diffusion.renoise with a fresh share 1).

A run of `steps` calls (`grid`): levels t_1 > ... > t_A, A = steps // ode_steps, spaced as the
released code's annealing scheduler (poly-7 in sigma from sigma_max, or the run's first time,
down to sigma_min); each level gets ode_steps calls (the first steps % A levels one more), on
the ODE scheduler's poly-7 grid from sigma_t down to sigma(0) = 0.01, the released ODE's
sigma_min: with two calls or more, an ODE's last call is at t = 0. So the call times read
t_1, ..., 0, t_2, ..., 0, ..., t_A, ..., 0 and a step knows what it is from (t, t_next): going
down, an ODE step; going up to the next level (or to the clean end), the level's last call,
which ends the ODE, runs the Langevin steps and re-noises. With ode_steps 1 every call is a
level's (x0_hat is then the network's one-call estimate, Tweedie's formula).

The level a Langevin run needs (r_t = r_scale sigma_t and its learning rate's place in the
annealing, lr (1 - ratio (1 - lr_min_ratio)) as the released code) is the time at which the
incoming x_t's ODE began: it is kept beside the measurement for the tensor the last step made
(`meas.keep` / `meas.kept`, as a fused step's coordinates are), so an ODE that
starts from any other state (a run's first state, Nested's outer state) starts at its own time.
The ratio is read from sigma_t on the released poly-7 ladder (sigma_max 100 to sigma_min 0.1),
which equals the code's step / num_steps for a plain run, and is defined inside Nested's runs.

Departures: the released code runs 200 levels x 5 ODE calls and 100 Langevin steps; the
budget here is 20 to 100 calls, so the default is 2 ODE calls a level (10 levels at 20 calls;
docs/studies/recent-solvers.md). The shown estimate of a call is the network's x0 (Tweedie)
inside an ODE and the Langevin sample x0 at a level's end; the result is the last level's x0
(the code's, before its final re-noising to sigma_final = 0). Resuming a saved run between two
calls of one ODE restarts that ODE's level at the saved call's time (not bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from degradations.measurement import Measurement
from degradations.noise import Generators, randn
from solvers.diffusion import ddim, renoise
from solvers.options import NonNegative, Positive, Steps, declare, option
from solvers.records import Prior
from solvers.schedule import CLEAN
from solvers.step import StepSolver

SIGMA_MAX, SIGMA_MIN = 100.0, 0.1  # the released annealing scheduler's range (EDM's VE scale)
RHO = 7  # its 'poly-7' spacing: sigma^(1/7) evenly spaced


def poly_sigmas(s_max: float, s_min: float, n: int) -> list[float]:
    """n noise levels from s_max to s_min, evenly spaced in sigma^(1/7) (EDM's rho = 7, the
    released schedulers' 'poly-7'); one level: s_max."""
    if n == 1:
        return [s_max]
    hi, lo = s_max ** (1 / RHO), s_min ** (1 / RHO)
    return [(hi + k / (n - 1) * (lo - hi)) ** RHO for k in range(n)]


class DAPS(StepSolver):
    """DAPS with `steps` network calls: steps // ode_steps annealing levels of ode_steps calls each.

    ode_steps: network calls of each level's ODE (2); langevin_steps: Langevin steps per level
    (100, the released value); lr, lr_min_ratio: the Langevin step size at sigma_max and its
    final share (1e-4, 0.01); tau: the likelihood's noise std on [-1, 1] (0.01 as released; 0: the
    measurement's own 2 sigma_y); r_scale: r_t = r_scale sigma_t (1, as released)."""

    needs_svd = False

    def __init__(self, prior: Prior, operator, steps: int = 20, ode_steps: int = 2, langevin_steps: int = 100,
                 lr: float = 1e-4, lr_min_ratio: float = 0.01, tau: float = 0.01, r_scale: float = 1.0):
        super().__init__(prior, operator, steps)
        if ode_steps < 1 or langevin_steps < 0:
            raise ValueError(f"ode_steps must be >= 1 and langevin_steps >= 0, got {ode_steps}, {langevin_steps}")
        if lr <= 0 or not 0 < lr_min_ratio <= 1 or tau < 0 or r_scale <= 0:
            raise ValueError(f"lr > 0, 0 < lr_min_ratio <= 1, tau >= 0, r_scale > 0 needed; got {lr}, "
                             f"{lr_min_ratio}, {tau}, {r_scale}")
        self.ode_steps, self.langevin_steps = ode_steps, langevin_steps
        self.lr, self.lr_min_ratio, self.tau, self.r_scale = lr, lr_min_ratio, tau, r_scale

    # -- time grid: levels, each with its ODE ---------------------------------------------------
    def time_of(self, sigma: float) -> int:
        """The DDPM time whose sigma = sqrt((1 - a) / a) is nearest to `sigma` (log scale)."""
        T = self.schedule.T
        return min(range(T), key=lambda t: abs(math.log(self.schedule.sigma(t) / sigma)))

    def start(self, calls: int) -> int:
        return self.time_of(SIGMA_MAX)

    def levels(self, t_start: int, calls: int) -> list[int]:
        """The calls of each level: steps // ode_steps levels (at least one), the first ones one call more."""
        count = max(1, calls // self.ode_steps)
        return [calls // count + (k < calls % count) for k in range(count)]

    def grid(self, t_start: int, calls: int) -> list[int]:
        """The call times: each level t_i then its ODE's calls down to 0 (module docstring), then CLEAN."""
        sizes = self.levels(t_start, calls)
        lowest = 1 if max(sizes) > 1 else 0  # a level with an ODE ends at 0, so the next level must be above it
        s_start = self.schedule.sigma(t_start)
        tops = [self.time_of(s) for s in poly_sigmas(s_start, min(SIGMA_MIN, s_start), len(sizes))]
        tops[0] = t_start
        for k in range(1, len(tops)):
            tops[k] = min(tops[k], tops[k - 1] - 1)
        if tops[-1] < lowest:
            raise ValueError(f"cannot fit {len(sizes)} DAPS levels below t={t_start}")
        times = []
        for top, n in zip(tops, sizes):
            times += self.ode_times(top, n)
        return times + [CLEAN]

    def ode_times(self, top: int, calls: int) -> list[int]:
        """An ODE's call times from the level `top` down to 0 (poly-7 in sigma, the released
        ODE scheduler's, to its sigma_min 0.01 = sigma(0)); one call: [top]."""
        if calls == 1:
            return [top]
        ts = [self.time_of(s) for s in poly_sigmas(self.schedule.sigma(top), self.schedule.sigma(0), calls)]
        ts[0], ts[-1] = top, 0
        for k in range(calls - 2, 0, -1):  # keep them distinct: between their neighbours
            ts[k] = max(min(ts[k], ts[k - 1] - 1), ts[k + 1] + 1)
        if any(a <= b for a, b in zip(ts, ts[1:])):
            raise ValueError(f"cannot fit an ODE of {calls} calls below t={top}")
        return ts

    # -- one call ----------------------------------------------------------------------------
    def ends_level(self, t: int, t_next: int) -> bool:
        """Whether the call at t is its level's last (module docstring: the next time goes up, or clean)."""
        return self.ode_steps == 1 or t_next == CLEAN or t_next >= t

    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One call at t: an ODE step (DDIM, eta 0) to t_next, or, at a level's last call, x0_hat =
        the network's x0 (the Euler step to sigma = 0), Langevin on p(x0 | x_t, y) and x_t' ~ q(x_t' | x0)."""
        level = meas.kept("daps", x_t)
        level = t if level is None else level  # an ODE that starts here
        _, x0_hat = self.predict(x_t, t, eps=False)
        a, a_next = self.schedule.alpha_bar(t), self.schedule.alpha_bar(t_next)
        if not self.ends_level(t, t_next):
            x_next = ddim(x_t, x0_hat, a, a_next, 0.0, generator)  # Alg. 1 line 3: the ODE's Euler step
            meas.keep("daps", x_next, level)
            return x_next, x0_hat
        x0 = self.langevin(x0_hat, self.schedule.sigma(level), meas, generator)  # lines 4-6
        x_next = renoise(x0, x0, a_next, 1.0, generator)  # line 7: x0 + sigma_t' eps (VP form)
        meas.keep("daps", x_next, t_next)
        return x_next, x0

    def langevin(self, x0_hat: torch.Tensor, sigma: float, meas: Measurement, generator: Generators) -> torch.Tensor:
        """`langevin_steps` unadjusted Langevin steps on N(x0; x0_hat, r^2) N(y; H x0, tau^2), r =
        r_scale sigma, from x0_hat (Alg. 1 lines 4-6; the released LangevinDynamics)."""
        hi, lo = SIGMA_MAX ** (1 / RHO), SIGMA_MIN ** (1 / RHO)
        ratio = min(max((hi - min(sigma, SIGMA_MAX) ** (1 / RHO)) / (hi - lo), 0.0), 1.0)
        lr = self.lr * (1 + ratio * (self.lr_min_ratio - 1))
        tau = self.tau if self.tau > 0 else meas.sigma_0
        if tau <= 0:
            raise ValueError("DAPS needs a likelihood noise tau > 0: give --tau, or a measurement with sigma_y > 0")
        r2, H, Ht = (self.r_scale * sigma) ** 2, self.operator.H, self.operator.Ht
        x = x0_hat.clone()
        for _ in range(self.langevin_steps):
            grad = Ht(H(x) - meas.y).view_as(x) / tau**2 + (x - x0_hat) / r2  # eq. 9's negative log density
            x = x - lr * grad + (2 * lr) ** 0.5 * randn(x.shape[1:], x.shape[0], generator, x.device, x.dtype)
        return x


@dataclass
class Options:
    ode_steps: Steps = option(2, "DAPS: network calls of each annealing level's ODE (levels = steps // ode_steps; "
                                 "the paper's 5 at 1000 calls)")
    langevin_steps: Steps = option(100, "DAPS: Langevin steps per annealing level (no network calls)")
    langevin_lr: Positive = option(1e-4, "DAPS: Langevin step size at sigma_max, decaying linearly to "
                                         "lr_min_ratio of it", arg="lr")
    lr_min_ratio: Positive = option(0.01, "DAPS: the Langevin step size's final share")
    tau: NonNegative = option(0.01, "DAPS: the likelihood's noise std on [-1, 1] in its Langevin steps (0.01 as "
                                    "released; 0: the measurement's 2 sigma_y)")
    r_scale: Positive = option(1.0, "DAPS: r_t = r_scale sigma_t, the spread of p(x0 | x_t) around the ODE's x0")


SOLVER = declare("daps", "DAPS", DAPS, Options, "Zhang et al. 2025")
