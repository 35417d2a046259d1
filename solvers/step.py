"""The protocol of a solver that makes one network call per step on a time grid, which is all
that Nested Diffusion needs of its inner solver (DDRM, DDNM, DiffPIR, DPS, PiGDM).

A `StepSolver` provides
    step(x_t, t, t_next, meas, generator) -> (x_{t_next}, the x0 estimate shown for this call):
                                             one network call, written as its paper writes it
and may override
    start(calls)                          -> the first time of a run of `calls` network calls
    grid(t_start, calls)                  -> the call times from t_start down to 0, then CLEAN
    initial_state(meas, t, generator)     -> x_t to start from at time t (default: the forward
                                             process from H^+ y)
and gets the stepwise protocol of `solvers.base` from them: a plain run is `steps` calls on
grid(start(steps), steps), every call an anytime output. `solvers.nested.Nested` runs the same
step on grid(t, n) from an outer state x_t, for any n and t, so a new solver needs nothing more.

The measurement (`meas`) is what `operator.measure(y, sigma_y)` makes (degradations.measurement):
it answers H^+ y, the proximal solve and the weighted residual in closed form for an SVD operator
and by conjugate gradients otherwise, so a step asks it rather than branching on the operator.
A solver that needs the SVD itself (y_bar, s: DDRM, DDNM) says so with `needs_svd`. x is on the
model's [-1, 1] scale; sigma_y on the [0, 1] pixel scale (2 sigma_y on [-1, 1]: meas.sigma_0).

Speed, as an implementation detail: a solver may also give `fused_step`, the same step in fewer
operators (each operator is a kernel launch on a GPU, where at batch 1 a launch costs as much as
a small kernel's work: scripts/bench.py kernels). A step element-wise in V's coordinates can
tabulate its per-component weights once per run (`coefficients`, `coefficient_count`; the table
lives in the measurement, up to TABLE_BYTES, else each step computes its row) and take V^T x_t
from the previous step's V v (meas.coords / meas.image). Drivers call `transition`, which runs
`fused_step` when the solver has one and `fused` is on (the default), else `step`;
tests/test_fused_steps.py checks the two agree for every such solver.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterable

import torch

from degradations.base import SVDOperator
from degradations.measurement import Measurement, SpectralMeasurement
from degradations.noise import Generators, randn
from solvers.base import Sampler
from solvers.options import DECLARED
from solvers.records import Prior, Record, StepCalls
from solvers.schedule import CLEAN, ddrm_start, linear_times

#: the most memory a run's table of per-step weights may take (see the module docstring)
TABLE_BYTES = 128 * 2**20
Pair = tuple[int, int]


class StepSolver(Sampler):
    """Base of the one-call-per-step solvers: `steps` network calls, each an anytime output.

    Subclasses implement `step` and may override `start`, `grid` and `initial_state` (default:
    DDRM's grid, 950, 900, ..., 0 for 20 calls, and the forward process from H^+ y), and give a
    `fused_step` with its `coefficients` (module docstring). fused: run `fused_step` when there is one."""

    #: whether the steps read the operator's SVD (y_bar, s); False: H and H^T (any LinearOperator) will do
    needs_svd: bool = True
    #: how many per-component weight tensors `coefficients` returns (0: no fused form)
    coefficient_count: int = 0

    def __init__(self, prior: Prior, operator, steps: int = 20, fused: bool = True):
        super().__init__(prior, operator)
        if self.needs_svd and not isinstance(operator, SVDOperator):
            raise TypeError(f"{type(self).__name__} needs the operator's SVD (a degradations.SVDOperator), and "
                            f"{operator!r} gives only H and H^T: use {', '.join(matrix_free_solvers())}, which need nothing more")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.fused = steps, bool(fused)

    @property
    def matrix_free(self) -> bool:
        """Whether H and H^T are enough (the opposite of `needs_svd`)."""
        return not self.needs_svd

    # -- what a subclass provides -------------------------------------------------------------
    def step(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
             generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def start(self, calls: int) -> int:
        """First time of a run of `calls` calls (DDRM's: (T // calls) (calls - 1))."""
        return ddrm_start(self.schedule.T, calls)

    def grid(self, t_start: int, calls: int) -> list[int]:
        """`calls` call times from t_start down to 0, then CLEAN (evenly spaced)."""
        return linear_times(t_start, calls)

    def initial_state(self, meas: Measurement, t: int, generator: Generators) -> torch.Tensor:
        """x_t ~ N(sqrt(a_t) H^+ y, (1 - a_t) I): the forward process from the pseudo-inverse
        (at t = 950 its weight sqrt(a_t) is 0.01: practically pure noise)."""
        a = self.schedule.alpha_bar(t)
        pinv = meas.pinv
        z = randn(self.operator.image_shape, pinv.shape[0], generator, pinv.device, pinv.dtype)
        return torch.add(pinv * a**0.5, z, alpha=(1 - a) ** 0.5)  # V may be a view

    # -- the fused form (optional) --------------------------------------------------------------
    def fused_step(self, x_t: torch.Tensor, t: int, t_next: int, meas: SpectralMeasurement,
                   generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def coefficients(self, meas: SpectralMeasurement, pairs: list[Pair]) -> tuple[torch.Tensor, ...]:
        """The per-component weights of `fused_step` for the steps `pairs` (t, t_next): one (K, n)
        tensor each, K = len(pairs), `coefficient_count` of them."""
        return ()

    def step_coefficients(self, meas: SpectralMeasurement, t: int, t_next: int) -> tuple[torch.Tensor, ...]:
        """The weights of step t -> t_next, each (n,): from the run's table, else computed."""
        found = meas.steps.get((t, t_next))
        return found if found is not None else tuple(c[0] for c in self.coefficients(meas, [(t, t_next)]))

    def transition(self, x_t: torch.Tensor, t: int, t_next: int, meas: Measurement,
                   generator: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """The step the drivers make: `fused_step` when the solver has one and `fused` is on, else `step`."""
        if self.fused and type(self).fused_step is not StepSolver.fused_step:
            return self.fused_step(x_t, t, t_next, meas, generator)
        return self.step(x_t, t, t_next, meas, generator)

    # -- the measurement ----------------------------------------------------------------------
    def measure(self, y: torch.Tensor, sigma_y: float, pairs: Iterable[Pair] | None = None) -> Measurement:
        """`operator.measure(y, sigma_y)`, with what the steps `pairs` (default: this solver's own
        run, times[k] -> times[k + 1]) share computed at once (`prepare`)."""
        meas = self.operator.measure(y, sigma_y)
        self.prepare(meas, sorted(set(zip(self.times[:-1], self.times[1:]) if pairs is None else pairs), reverse=True))
        return meas

    def prepare(self, meas: Measurement, pairs: list[Pair]) -> None:
        """Compute once what the steps `pairs` share (default: the fused form's weights, when
        the solver has one and the table fits TABLE_BYTES). Only a speed-up: a step finds what
        is missing by itself."""
        if not (self.fused and self.coefficient_count and isinstance(meas, SpectralMeasurement)):
            return
        if len(pairs) * meas.s.numel() * meas.s.element_size() * self.coefficient_count <= TABLE_BYTES:
            meas.steps.update(zip(pairs, zip(*(c.unbind() for c in self.coefficients(meas, pairs)))))

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

    def begin(self, meas: Measurement, generator: Generators) -> torch.Tensor:
        return self.initial_state(meas, self.times[0], generator)

    def advance(self, x: torch.Tensor, j: int, meas: Measurement, generator: Generators) -> StepCalls:
        """Step j: one network call from times[j] to times[j + 1]; the record is the call's x0
        estimate, or at the last step the clean sample itself."""
        t, t_next = self.times[j : j + 2]
        x_next, x0 = self.transition(x, t, t_next, meas, generator)
        if t_next == CLEAN:
            yield Record(j + 1, x_next, CLEAN, "prediction", final=True)
        else:
            yield Record(j + 1, x0, t, "prediction")
        return x_next


def matrix_free_solvers() -> list[str]:
    """The titles of the declared solvers that need only H and H^T (needs_svd False)."""
    return [spec.title for spec in DECLARED.values() if not spec.needs_svd]
