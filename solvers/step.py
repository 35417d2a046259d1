"""The protocol of a solver that makes one network call per step on a time grid, which is all
that Nested Diffusion needs of its inner solver (DDRM, DDNM, DiffPIR, DPS).

A `StepSolver` provides
    start(calls)                          -> the first time of a run of `calls` network calls
    grid(t_start, calls)                  -> the call times from t_start down to 0, then CLEAN
    initial_state(meas, t, generator)     -> x_t to start from at time t
    step(x_t, t, t_next, meas, generator) -> (x_{t_next}, the x0 estimate shown for this call):
                                             one network call
and gets the stepwise protocol of `solvers.base` from them: a plain run is `steps` calls on
grid(start(steps), steps), every call an anytime output. `solvers.nested.Nested` runs the same
`step` on grid(t, n) from an outer state x_t, for any n and t, so a new solver needs nothing more.

Every solver here works on `SVDOperator`s and receives the measurement once as a
`SpectralMeasurement`; those that need only H and H^T (`matrix_free`: DPS, DiffPIR) also take an
operator known only through them (degradations.linear), with a `Measurement`; x is on the model's [-1, 1] scale and sigma_y on the [0, 1] pixel scale
(2 sigma_y on [-1, 1], `sigma_0` below).

A step's update is element-wise in V's coordinates, with per-component coefficients that depend
on the measurement and the two times only. A solver may give them as `coefficients(meas, pairs)`
(one (K, n) tensor per coefficient, for K steps at once); `measure` then computes them for every
step of the run in one go and `step_coefficients` hands a step its row, so a step launches only
the few operators that touch the image (fused multiply-adds), not the dozen that derive its
coefficients (scripts/bench.py kernels). Past TABLE_BYTES (large images, where a network call
costs seconds) each step computes its own row, with the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

import torch

from degradations.base import SVDOperator
from degradations.linear import pixel_sigma_to_model
from degradations.noise import Generators, randn
from solvers.base import Sampler
from solvers.cg import least_squares
from solvers.records import Prior, Record, StepCalls, carried, carry
from solvers.schedule import CLEAN, ddrm_start, linear_times

#: the most memory a run's table of per-step coefficients may take (see the module docstring)
TABLE_BYTES = 128 * 2**20
Pair = tuple[int, int]


@dataclass
class SpectralMeasurement:
    """The measurement in V's coordinates, computed once per restoration.

    s (n,): singular values padded with zeros; measured (n,): s > 0;
    u_y (B, n): U^T y padded; y_bar (B, n): U^T y / s where measured, else 0 (so V y_bar = H^+ y);
    sigma_0: measurement noise std on the [-1, 1] scale; floor (n,): sigma_0^2 / s^2, the
    noise variance of y_bar (where measured); y (B, m): the measurement itself;
    steps: each step's coefficients, (t, t_next) -> tensors (n,) (StepSolver.step_coefficients)."""

    s: torch.Tensor
    measured: torch.Tensor
    u_y: torch.Tensor
    y_bar: torch.Tensor
    sigma_0: float
    floor: torch.Tensor
    y: torch.Tensor
    steps: dict[Pair, tuple[torch.Tensor, ...]] = field(default_factory=dict, repr=False)

    def column(self, values: Iterable[float]) -> torch.Tensor:
        """Per-step scalars as a (K, 1) column in the measurement's dtype, to broadcast over (K, n)."""
        return torch.tensor(list(values), dtype=self.s.dtype, device=self.s.device)[:, None]


@dataclass
class Measurement:
    """The measurement for an operator known only through H and H^T, computed once per restoration:
    y (B, m); sigma_0: its noise std on the [-1, 1] scale; x_start (B, C, H, W): H^+ y as
    conjugate gradients approximate it (solvers.cg.least_squares), the image the first state is
    drawn around."""

    y: torch.Tensor
    sigma_0: float
    x_start: torch.Tensor


class StepSolver(Sampler):
    """Base of the one-call-per-step solvers: `steps` network calls, each an anytime output.

    Subclasses implement `step` and may override `start`, `grid` and `initial_state` (default:
    DDRM's grid, 950, 900, ..., 0 for 20 calls, and pure noise), and `coefficients`, with
    `coefficient_count` saying how many tensors it returns."""

    coefficient_count: int = 0
    #: whether the steps need only H and H^T, so that any degradations.LinearOperator will do
    matrix_free: bool = False

    def __init__(self, prior: Prior, operator, steps: int = 20):
        super().__init__(prior, operator)
        if not (self.matrix_free or isinstance(operator, SVDOperator)):
            raise TypeError(f"{type(self).__name__} needs the operator's SVD (a degradations.SVDOperator), and "
                            f"{operator!r} gives only H and H^T: use DPS or DiffPIR, which need nothing more")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = steps

    # -- what a subclass provides -------------------------------------------------------------
    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: SpectralMeasurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def start(self, calls: int) -> int:
        """First time of a run of `calls` calls (DDRM's: (T // calls) (calls - 1))."""
        return ddrm_start(self.schedule.T, calls)

    def grid(self, t_start: int, calls: int) -> list[int]:
        """`calls` call times from t_start down to 0, then CLEAN (evenly spaced)."""
        return linear_times(t_start, calls)

    def initial_state(self, meas: SpectralMeasurement | Measurement, t: int, generator: Generators) -> torch.Tensor:
        """x_t ~ N(sqrt(a_t) H^+ y, (1 - a_t) I): the forward process from the pseudo-inverse
        (at t = 950 its weight sqrt(a_t) is 0.01: practically pure noise)."""
        a = self.schedule.alpha_bar(t)
        pinv = self.operator.V(meas.y_bar) if isinstance(meas, SpectralMeasurement) else meas.x_start
        z = randn(self.operator.image_shape, pinv.shape[0], generator, pinv.device, pinv.dtype)
        return torch.add(pinv * a**0.5, z, alpha=(1 - a) ** 0.5)  # V may be a view

    def coefficients(self, meas: SpectralMeasurement, pairs: list[Pair]) -> tuple[torch.Tensor, ...]:
        """The per-component coefficients of the steps `pairs` (t, t_next): one (K, n) tensor
        each, K = len(pairs), `coefficient_count` of them. Default: none."""
        return ()

    # -- the measurement ----------------------------------------------------------------------
    def measure(self, y: torch.Tensor, sigma_y: float,
                pairs: Iterable[Pair] | None = None) -> SpectralMeasurement | Measurement:
        """The measurement in V's coordinates, with the coefficients of the steps `pairs`
        (default: this solver's own run, times[k] -> times[k + 1]) computed at once; for an
        operator without an SVD, the measurement as it is (`Measurement`)."""
        op = self.operator
        if not isinstance(op, SVDOperator):
            return Measurement(y, pixel_sigma_to_model(sigma_y), least_squares(op, y))
        s = op.add_zeros(op.singulars()[None])[0]
        measured = s > 0
        u_y = op.add_zeros(op.Ut(y))
        safe_s = torch.where(measured, s, torch.ones_like(s))
        y_bar = torch.where(measured, u_y / safe_s, torch.zeros_like(u_y))
        sigma_0 = pixel_sigma_to_model(sigma_y)
        meas = SpectralMeasurement(s, measured, u_y, y_bar, sigma_0, sigma_0**2 / safe_s.square(), y)
        pairs = sorted(set(zip(self.times[:-1], self.times[1:]) if pairs is None else pairs), reverse=True)
        if self.coefficient_count and len(pairs) * op.n * s.element_size() * self.coefficient_count <= TABLE_BYTES:
            meas.steps.update(zip(pairs, zip(*(c.unbind() for c in self.coefficients(meas, pairs)))))
        return meas

    def step_coefficients(self, meas: SpectralMeasurement, t: int, t_next: int) -> tuple[torch.Tensor, ...]:
        """The coefficients of step t -> t_next, each (n,): from the run's table, else computed."""
        found = meas.steps.get((t, t_next))
        return found if found is not None else tuple(c[0] for c in self.coefficients(meas, [(t, t_next)]))

    def image(self, v: torch.Tensor) -> torch.Tensor:
        """x = V v, the next state, carrying v so that the next step's `spectral(x)` is free."""
        return carry(self.operator.V(v), v)

    def spectral(self, x: torch.Tensor) -> torch.Tensor:
        """V^T x: the v that x carries (`image`, solvers.records.carry; a saved run keeps it),
        else the transform. The two agree to the operator's float precision, not bit for bit."""
        v = carried(x)
        return self.operator.Vt(x) if v is None else v

    # -- the stepwise protocol (solvers.base) --------------------------------------------------
    @cached_property
    def times(self) -> list[int]:
        """The network-call times of a plain run, then CLEAN (computed once, not per call)."""
        return self.grid(self.start(self.steps), self.steps)

    @property
    def nfe_total(self) -> int:
        return self.steps

    @property
    def anytime_steps(self) -> int:
        return self.steps  # every network call's x0 estimate is an anytime output

    def calls_before(self, j: int) -> int:
        return j

    def state_time(self, j: int) -> int:
        return self.times[j]

    def begin(self, meas: SpectralMeasurement, generator: Generators) -> torch.Tensor:
        return self.initial_state(meas, self.times[0], generator)

    def advance(self, x: torch.Tensor, j: int, meas: SpectralMeasurement, generator: Generators) -> StepCalls:
        """Step j: one network call from times[j] to times[j + 1]; the record is the call's x0
        estimate, or at the last step the clean sample itself."""
        t, t_next = self.times[j : j + 2]
        x_next, x0 = self.step(x, t, t_next, meas, generator)
        if t_next == CLEAN:
            yield Record(j + 1, x_next, CLEAN, "prediction", final=True)
        else:
            yield Record(j + 1, x0, t, "prediction")
        return x_next
