"""Time grids and noise levels of the DDPM schedule, as Python floats (no device syncs in loops).

Conventions (DDRM, Kawar et al. 2022, sec. 4 and its code): time t in {0, ..., T-1} with
alpha_bar_t = alphas_cumprod[t], and t = -1 denotes the clean end, alpha_bar_{-1} = 1.
"""

from __future__ import annotations

import math

import torch

CLEAN = -1  # the time index of the clean image


class NoiseSchedule:
    """alpha_bar_t and the variance-exploding scale sigma_t = sqrt(1 - alpha_bar_t) / sqrt(alpha_bar_t)."""

    def __init__(self, alphas_cumprod: torch.Tensor):
        values = alphas_cumprod.detach().to("cpu", torch.float64)
        if values.ndim != 1 or len(values) < 2:
            raise ValueError("alphas_cumprod must be a 1-D tensor of length T >= 2")
        self._alpha_bar = values.tolist()
        self._t_batches: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    @property
    def T(self) -> int:
        return len(self._alpha_bar)

    def alpha_bar(self, t: int) -> float:
        return 1.0 if t == CLEAN else self._alpha_bar[t]

    def t_batch(self, t: int, batch: int, device: torch.device) -> torch.Tensor:
        """t as the network's (batch,) long tensor, made once per (t, batch, device): a constant
        that no call changes, so each network call launches no operator to build it."""
        key = (t, batch, torch.device(device))
        found = self._t_batches.get(key)
        if found is None:
            found = self._t_batches[key] = torch.full((batch,), t, dtype=torch.long, device=device)
        return found

    def sigma(self, t: int) -> float:
        """DDRM's VE noise level of x_t / sqrt(alpha_bar_t); 0 at the clean end."""
        a = self.alpha_bar(t)
        return ((1.0 - a) / a) ** 0.5


def ddrm_start(T: int, steps: int) -> int:
    """First time of the official DDRM schedule: (T // steps) * (steps - 1) (950 for 20 steps)."""
    return (T // steps) * (steps - 1)


def linear_times(t_start: int, steps: int) -> list[int]:
    """`steps` network-call times from `t_start` down to 0, evenly spaced, then CLEAN.

    With t_start = ddrm_start(T, steps) this is the official DDRM grid (950, 900, ..., 0, -1).
    Needs t_start >= steps - 1 so that the times are distinct."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if t_start < steps - 1:
        raise ValueError(f"cannot fit {steps} distinct steps between t={t_start} and 0")
    if steps == 1:
        return [t_start, CLEAN]
    return [round(t_start * k / (steps - 1)) for k in range(steps - 1, -1, -1)] + [CLEAN]


def warp_times(times: list[int], power: float) -> list[int]:
    """A run's call times `times` (from t0, then CLEAN) moved towards its top t0: each s becomes
    t0 (s / t0)^power (power 1: unchanged; power < 1: the calls gather where t is high, e.g.
    878, 658, 439, 220, 0 -> 878, 760, 621, 439, 0 for power 0.5). The map is increasing, so a
    grid of several descents (DAPS: an ODE down to 0 per annealing level, then up to the next
    level) keeps its shape, each call moved alike. ValueError when rounding would merge two
    times of one descent (as any power <= 0 does)."""
    if power == 1:
        return list(times)
    t0 = times[0]
    warped = [s if s in (CLEAN, 0) else round(t0 * (s / t0) ** power) for s in times]
    if any(a <= b for a, b, s, r in zip(warped, warped[1:], times, times[1:]) if s > r):
        raise ValueError(f"cannot spread {len(times) - 1} calls below t={t0} with power {power}: {warped}")
    return warped


def outer_times(t_start: int, outer_steps: int, power: float = 1.0) -> list[int]:
    """Outer times of Nested Diffusion (Elata et al., Alg. 2): t_start ((N - j) / N)^power for
    j = 0 .. N-1 (power 1: evenly spaced down to t_start / N, as in the paper; power 2: denser
    towards clean), never 0 unless N = 1 and t_start = 0. The outer loop ends at clean."""
    if outer_steps < 1:
        raise ValueError(f"outer_steps must be >= 1, got {outer_steps}")
    return [round(t_start * ((outer_steps - j) / outer_steps) ** power) for j in range(outer_steps)]


def cosine_outer_times(t_start: int, outer_steps: int) -> list[int]:
    """Outer times t_start cos(pi/2 j / N), j = 0 .. N-1 (950, 878, 672, 364 for 4 steps): short
    outer steps first, so the first inner runs' samples are re-noised while the content of large
    unmeasured regions is still open (docs/studies/nested-inpainting.md)."""
    if outer_steps < 1:
        raise ValueError(f"outer_steps must be >= 1, got {outer_steps}")
    return [round(t_start * math.cos(math.pi / 2 * j / outer_steps)) for j in range(outer_steps)]


def check_outer_times(times, outer_steps: int, T: int | None = None) -> list[int]:
    """Explicit outer times as ints: one per outer step, decreasing, in [0, T - 1] (ValueError if not)."""
    times = [int(t) for t in times]
    if (len(times) != outer_steps or times[-1] < 0 or (T is not None and times[0] >= T)
            or any(a <= b for a, b in zip(times, times[1:]))):
        top = "" if T is None else f", below {T}"
        raise ValueError(f"outer_times must give one time per outer step ({outer_steps} outer steps) and "
                         f"decrease, each >= 0{top}; got {times}")
    return times


def resolve_outer_times(spec, t_start: int, outer_steps: int, power: float, T: int) -> list[int]:
    """Nested's outer times: t_start ((N - j) / N)^power when spec is None, the cosine rule for
    "cosine", else the explicit times `spec` (checked)."""
    if spec is None:
        return outer_times(t_start, outer_steps, power)
    if spec == "cosine":
        return cosine_outer_times(t_start, outer_steps)
    if isinstance(spec, str):
        raise ValueError(f"outer_times must be 'cosine' or a list of times, got {spec!r}")
    return check_outer_times(spec, outer_steps, T)
