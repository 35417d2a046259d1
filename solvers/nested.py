"""Nested Diffusion around any inner solver (Elata, Kawar, Michaeli, Elad 2023).

An outer DDIM loop (Alg. 2 of the Nested Diffusion paper) whose x0-prediction at outer time t is
a whole inner run of a `StepSolver` (DDRM, DDNM, DiffPIR, DPS) that starts from the outer state
x_t at t (no fresh initialisation) and reaches a clean image in that outer step's budget of
network calls. Each inner result x0_hat is an anytime output that already uses the measurement;
the outer DDIM step then re-noises towards the next outer time (Song et al. 2021, DDIM eq. 12).
With `outer_noise` > 0 the outer step instead re-noises x0_hat with that share of fresh noise
(DDRM's eta convention; 1: x_t' ~ q(x_t' | x0_hat), a restart from the inner sample). The paper's
Eq. 1 leaves q(x_t' | x_t, x0) free; the marginal is right either way when x0_hat samples
p(x0 | x_t, y), and fresh noise stops an early inner sample's errors from riding along in
eps_hat (docs/studies/nested-inpainting.md: what closes the inpainting gap).
The last outer step's x0_hat is the result, so the cost is the sum of the budgets, and
Nested(solver, outer_steps=1, inner_steps=K) is exactly the solver with K steps.

Time grids: the outer loop starts where a plain run of the inner solver with the same total
cost starts (DDRM: 950 for 20 calls); its times are t_start ((N - j) / N)^outer_power (the paper:
power 1, evenly spaced down to t_start / N; the default here is 2, see OUTER_POWER), or
`outer_times` given explicitly, or "cosine": t_start cos(pi/2 j / N) (950, 878, 672, 364: a
first outer step that stays above the times where an inpainted region's content is decided);
each inner run uses the solver's own grid (`StepSolver.grid`) from its outer time down to 0, or,
with `inner_power` p < 1, every run but the last has that grid moved towards its top, t (s / t)^p:
a run that is not the last is re-noised at the next outer time, which keeps only what it decided
at high noise levels (such as the level of an unmeasured region), so its calls are spent
there; the last run's result is the output and keeps the solver's grid down to clean.

Budgets: `inner_steps=5` gives every outer step 5 calls; a list, e.g. [2, 3, 5, 10], gives outer
step j its own budget (the paper leaves this "dynamic allocation" to future work;
docs/studies/budget-spread.md measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from degradations.measurement import Measurement
from degradations.noise import Generators
from solvers.base import Sampler
from solvers.ddrm import DDRM
from solvers.diffusion import ddim, eps_from_x0, renoise
from solvers.options import MAX_STEPS, Budgets, NonNegative, Positive, Share, Steps, Times, option, parse_budgets, parse_times
from solvers.records import Prior, Record, StepCalls
from solvers.schedule import CLEAN, resolve_outer_times, warp_times
from solvers.step import StepSolver

#: Default spacing of the outer times. The paper's even grid (power 1) ends the last inner run's
#: measurement-branch steps at t_start / N (238 for 4 x 5), above DDRM's last one (50), which
#: costs 0.7 dB on noisy denoising; t_start ((N - j) / N)^2 (950, 534, 238, 59) ends lower and
#: gains on denoising and super-resolution (docs/studies/nested-inpainting.md).
OUTER_POWER = 2.0

#: Default of `outer_floor`: with measurement noise, the last outer time is kept where the forward
#: noise sigma_t is at least this many times the measurement's (2 sigma_y on the model's scale).
#: Below that level an inner run hardly uses y any more (DDRM takes y only where sigma_t > sigma_y / s,
#: DiffPIR's weight on y falls as sigma_t^2): its result is the prior's re-sample of the previous
#: estimate, and the last anytime step got worse than the one before (deno sigma_y 0.1: -1.36 dB on
#: 8 of 8 held-out images; docs/studies/anytime-defaults.md, where the value is measured).
OUTER_FLOOR = 4.0


class Nested(Sampler):
    """Anytime restoration with any inner solver: one preview per outer step.

    solver: the inner StepSolver (its own `steps` is not used: the budgets replace it);
    outer_steps: previews (default 4; with a list of budgets, its length);
    inner_steps: network calls per outer step, an int or one per outer step;
    outer_eta: DDIM's eta of the outer loop (0 = deterministic, as in the released code);
    yield_inner: `sample` also yields the inner runs' per-call estimates (kind "inner");
    outer_power: spacing of the outer times, t_start ((N - j) / N)^power (1: even, the paper's;
    the default 2 ends the outer grid lower: see OUTER_POWER);
    outer_times: the outer times themselves, decreasing, one per outer step, or "cosine" for
    t_start cos(pi/2 j / N) (either overrides outer_power);
    outer_noise: share of fresh noise when the outer step re-noises x0_hat (DDRM's eta
    convention: 0 = DDIM's step with eps_hat, 1 = q(x_t' | x0_hat)); with outer_eta, one of the two
    must be 0;
    inner_power: every inner run but the last calls at t (s / t)^inner_power for the solver's grid
    times s from its outer time t (1: the solver's own grid; < 1: calls gathered at the top);
    outer_floor: with measurement noise sigma_y > 0, a computed outer grid (outer_power or
    "cosine", not explicit outer_times) whose last time t_N has sigma_t below outer_floor x 2 sigma_y
    is mapped affinely from [0, t_start] onto [t_floor, t_start], t_floor the first time at that
    level (see OUTER_FLOOR; 0: never, the paper's grid at any noise);
    sigma_y: the measurement noise the grid is fitted to (None: fitted when `sample` or `Run`
    gives it; a Run resumed from a file needs it given, so that its times are known beforehand)."""

    def __init__(self, solver: StepSolver, outer_steps: int | None = None,
                 inner_steps: int | Sequence[int] = 5, outer_eta: float = 0.0, yield_inner: bool = False,
                 outer_power: float = OUTER_POWER, outer_times: Sequence[int] | str | None = None,
                 outer_noise: float = 0.0, inner_power: float = 1.0, outer_floor: float = OUTER_FLOOR,
                 sigma_y: float | None = None):
        super().__init__(solver.prior, solver.operator)
        if isinstance(inner_steps, int):
            outer_steps = 4 if outer_steps is None else outer_steps
            budgets = [inner_steps] * outer_steps if outer_steps >= 1 else []
        else:
            budgets = [int(n) for n in inner_steps]
            if outer_steps is not None and outer_steps != len(budgets):
                raise ValueError(f"outer_steps={outer_steps} but {len(budgets)} inner budgets given {budgets}")
        if not budgets or min(budgets) < 1:
            raise ValueError(f"outer_steps and inner_steps must be >= 1, got {outer_steps}, {inner_steps}")
        if not 0.0 <= outer_eta <= 1.0:
            raise ValueError(f"outer_eta must lie in [0, 1], got {outer_eta}")
        if not 0.0 <= outer_noise <= 1.0:
            raise ValueError(f"outer_noise must lie in [0, 1], got {outer_noise}")
        if outer_noise > 0 and outer_eta > 0:
            raise ValueError(f"give outer_eta (DDIM) or outer_noise (fresh share), not both: {outer_eta}, {outer_noise}")
        self.solver, self.budgets = solver, budgets
        self.outer_steps, self.outer_eta, self.yield_inner = len(budgets), outer_eta, yield_inner
        if outer_power <= 0:
            raise ValueError(f"outer_power must be > 0, got {outer_power}")
        if inner_power <= 0:
            raise ValueError(f"inner_power must be > 0, got {inner_power}")
        if not outer_floor >= 0:
            raise ValueError(f"outer_floor must be >= 0, got {outer_floor}")
        self.outer_power, self.outer_noise, self.inner_power = outer_power, outer_noise, inner_power
        self.outer_floor, self.floor_applies = outer_floor, outer_times is None or outer_times == "cosine"
        self.grid_outer = resolve_outer_times(outer_times, solver.start(self.nfe_total), self.outer_steps,
                                              outer_power, self.schedule.T)
        self.sigma_y = None
        self.fit(0.0 if sigma_y is None else sigma_y)
        self.sigma_y = sigma_y

    def floor_time(self, sigma_y: float) -> int:
        """The first time whose forward noise sigma_t reaches outer_floor x 2 sigma_y (0: no floor)."""
        level = self.outer_floor * 2 * sigma_y
        if level <= 0 or not self.floor_applies:
            return 0
        return next((t for t in range(self.schedule.T) if self.schedule.sigma(t) >= level), self.schedule.T - 1)

    def fit(self, sigma_y: float) -> None:
        """The outer times and the inner grids for measurement noise sigma_y (the floor rule)."""
        outer, t_start = list(self.grid_outer), self.grid_outer[0]
        t_floor = min(self.floor_time(sigma_y), t_start // 2)  # the first outer step keeps a run of its own
        if outer[-1] < t_floor:  # [0, t_start] -> [t_floor, t_start], distinct times kept
            outer = [round(t_floor + t * (t_start - t_floor) / t_start) for t in outer]
        try:
            grids = [self.solver.grid(t, n) for t, n in zip(outer, self.budgets)]
            inner = [warp_times(g, self.inner_power) for g in grids[:-1]] + grids[-1:]
        except ValueError as error:
            raise ValueError(f"inner budgets {self.budgets} do not fit the outer times {outer}: {error}") from None
        self.outer, self.inner = outer, inner

    @property
    def inner_steps(self) -> int | list[int]:
        """The budget per outer step: an int when even, else the list."""
        return self.budgets[0] if len(set(self.budgets)) == 1 else list(self.budgets)

    @property
    def name(self) -> str:
        return f"Nested{self.solver.name}"

    @property
    def times(self) -> list[int]:
        """Every network call's time, outer run after outer run, then CLEAN."""
        return [t for times in self.inner for t in times[:-1]] + [CLEAN]

    def outer_step(self, x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, t_next: int,
                   generator: Generators) -> torch.Tensor:
        """DDIM step t -> t_next with x0_hat as the x0-prediction (Song et al. 2021, eq. 12), or
        with outer_noise e > 0: sqrt(a') x0_hat + sqrt(1 - a') (sqrt(1 - e^2) eps_hat + e z). No
        network call (solvers.diffusion)."""
        a, a_next = self.schedule.alpha_bar(t), self.schedule.alpha_bar(t_next)
        if self.outer_noise > 0:
            return renoise(x0_hat, eps_from_x0(x_t, x0_hat, a), a_next, self.outer_noise, generator)
        return ddim(x_t, x0_hat, a, a_next, self.outer_eta, generator)

    # -- the stepwise protocol (solvers.base) --------------------------------------------------
    @property
    def nfe_total(self) -> int:
        return sum(self.budgets)

    @property
    def anytime_steps(self) -> int:
        return self.outer_steps

    def calls_before(self, j: int) -> int:
        return sum(self.budgets[:j])

    def state_time(self, j: int) -> int:
        return self.outer[j]

    def check(self, y: torch.Tensor, sigma_y: float) -> None:
        """The inner solver's check; the outer grid fitted to sigma_y unless it was given already."""
        self.solver.check(y, sigma_y)
        if self.sigma_y is None:
            self.fit(float(sigma_y))

    def measure(self, y: torch.Tensor, sigma_y: float) -> Measurement:
        """The inner solver's measurement, with the coefficients of every inner run's steps."""
        return self.solver.measure(y, sigma_y, [p for times in self.inner for p in zip(times[:-1], times[1:])])

    def begin(self, meas: Measurement, generator: Generators) -> torch.Tensor:
        return self.solver.initial_state(meas, self.outer[0], generator)

    def advance(self, x: torch.Tensor, j: int, meas: Measurement, generator: Generators) -> StepCalls:
        """Outer step j (Alg. 2): an inner run from the outer state x at outer[j] to clean
        (yielding its per-call estimates, kind "inner", then its result x0_hat, kind "outer"),
        then the outer DDIM step to outer[j + 1]; returns that next outer state (x0_hat after the
        last outer step)."""
        times, t_outer = self.inner[j], self.outer[j]
        inner_x, nfe = x, self.calls_before(j)  # the inner process starts from the outer state
        for t, t_next in zip(times[:-1], times[1:]):
            inner_x, x0 = self.solver.transition(inner_x, t, t_next, meas, generator)
            nfe += 1
            if t_next != CLEAN:
                yield Record(nfe, x0, t, "inner")
        last = j == self.outer_steps - 1
        yield Record(nfe, inner_x, t_outer, "outer", final=last)
        return inner_x if last else self.outer_step(x, inner_x, t_outer, self.outer[j + 1], generator)


class NestedDDRM(Nested):
    """Nested(DDRM(prior, operator, eta=eta, eta_b=eta_b), outer_steps, inner_steps, outer_eta).

    Default split 4 x 5: first preview after 5 calls at 20 in total (see docs/studies/choosing-the-split.md
    for the measurements behind it)."""

    def __init__(self, prior: Prior, operator, outer_steps: int | None = None,
                 inner_steps: int | Sequence[int] = 5, eta: float = 0.85, eta_b: float = 1.0,
                 outer_eta: float = 0.0, yield_inner: bool = False, outer_power: float = OUTER_POWER,
                 outer_times: Sequence[int] | str | None = None, outer_noise: float = 0.0,
                 inner_power: float = 1.0, outer_floor: float = OUTER_FLOOR, sigma_y: float | None = None):
        super().__init__(DDRM(prior, operator, steps=1, eta=eta, eta_b=eta_b), outer_steps,
                         inner_steps, outer_eta, yield_inner, outer_power, outer_times, outer_noise, inner_power,
                         outer_floor, sigma_y)


@dataclass
class Options:
    """The outer loop's options, for any inner solver run nested (nested-<name>)."""

    outer: Steps = option(4, "nested solvers: outer steps (anytime previews)", metavar="N",
                          expect=f"be a positive number of steps, at most {MAX_STEPS}")
    inner: Budgets = option(5, "nested solvers: network calls per outer step, or one budget per outer step "
                               "(2,3,5,10)", metavar="N|N1,N2,..", parse=parse_budgets,
                            expect=f"a positive number of steps, or positive numbers of calls such as 2,3,5,10 "
                                   f"(at most {MAX_STEPS} each)")
    outer_power: Positive = option(2.0, "nested solvers: outer times t_start ((N-j)/N)^p (2: denser towards "
                                        "clean; 1 = the paper's even grid; docs/studies/nested-inpainting.md)",
                                   expect="be a finite number > 0 (1 = the paper's even outer grid)")
    outer_eta: Share = option(0.0, "nested solvers: DDIM eta of the outer loop (0: deterministic)")
    outer_times: Times = option(None, "nested solvers: the outer times, one per outer step, or 'cosine' "
                                      "(t_start cos(pi/2 j/N)); overrides --outer-power", metavar="T1,T2,..|cosine",
                                parse=parse_times,
                                expect="'cosine' or whole diffusion times, e.g. 950,850,600,250")
    outer_noise: Share = option(0.0, "nested solvers: share of fresh noise when the outer step re-noises the inner "
                                     "result (0: DDIM; 1: a restart; docs/studies/nested-inpainting.md)",
                                expect="lie in [0, 1] (the share of fresh noise)")
    inner_power: Positive = option(1.0, "nested solvers: every inner run but the last calls at t (s/t)^p over the "
                                        "solver's grid s (1: the solver's grid; < 1 gathers the calls at the top "
                                        "of each run; docs/studies/nested-inpainting.md)",
                                   expect="be a finite number > 0 (1 = the solver's own grid in every inner run)")
    outer_floor: NonNegative = option(4.0, "nested solvers: with measurement noise, the last outer time keeps its "
                                           "noise level at least this many times the measurement's (0: the grid "
                                           "at any noise; docs/studies/anytime-defaults.md)",
                                      expect="be a finite number >= 0 (0 = no floor)")
