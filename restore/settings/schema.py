"""The settings of one restoration: every field that determines its numbers, their rules
(`Settings.validate`), and the solver names. Where a run's values come from (defaults, the
measured config, what the person set) is restore.settings.compose; building the operator and the
solver from them, restore.settings.build."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from degradations import TASKS
from restore.errors import UsageError
from solvers.schedule import check_outer_times


@dataclass
class Settings:
    """Everything that determines a restoration (and so belongs in its metrics and summaries).

    sigma_y is on the [0, 1] pixel scale. model None means "CelebA-HQ if its weights are cached
    locally, else the bundled prior". solver: a plain solver (ddrm, ddnm, diffpir, dps: `steps`
    calls) or one nested (nested-<name>, "nested" = nested-ddrm: `outer` previews of `inner`
    calls each, or one budget per outer step when `inner` is a list). eta, eta_b: DDRM's (eta
    also DDNM's); zeta (DiffPIR, DPS) and lam (DiffPIR's lambda): None = the paper's default.
    candidates: restorations of the same measurement, each with its own noise (steerable).
    size: None (the input's own size, or the model's for a model trained at one size: see
    restore.restoration.sizing), "native" (the input's own size with any model) or S (S x S). tile: network
    calls on tiles of this many pixels (0: never; None: only when one call would not fit the
    memory; see restore.models.network). precision (fp32, bf16, fp16: the network only) and compile:
    how the network runs (restore.models.precision). config: the YAML file these settings came from, if any (given,
    or the measured one of the task and model: restore.settings.configs)."""

    task: str = "sr4"
    sigma_y: float = 0.0
    mask: str | None = None
    model: str | None = None
    solver: str = "nested"
    outer: int = 4
    inner: int | list[int] = 5
    steps: int = 20
    eta: float = 0.85
    eta_b: float = 1.0
    zeta: float | None = None
    lam: float | None = None
    outer_power: float = 2.0
    outer_eta: float = 0.0
    outer_times: list[int] | str | None = None
    outer_noise: float = 0.0
    inner_power: float = 1.0
    seed: int = 0
    size: int | str | None = None
    tile: int | None = None
    candidates: int = 1
    precision: str = "fp32"
    compile: bool = False
    config: str | None = None

    def validate(self) -> "Settings":
        if self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}; valid tasks: {', '.join(TASKS)}")
        if self.task == "inp_mask" and not self.mask:
            raise UsageError("task inp_mask needs --mask PATH (an image: black = missing, white = kept)")
        if self.mask and not Path(self.mask).is_file():
            raise UsageError(f"mask file {self.mask} not found")
        if self.sigma_y < 0:
            raise UsageError(f"--sigma-y must be >= 0 (a std on the [0, 1] pixel scale), got {self.sigma_y}")
        if self.candidates < 1:
            raise UsageError(f"--candidates must be at least 1 (restorations of the same measurement), got {self.candidates}")
        solver_parts(self.solver)
        if isinstance(self.inner, (list, tuple)):
            self.inner = [int(n) for n in self.inner]
            if not self.inner or min(self.inner) < 1:
                raise UsageError(f"--inner must list positive numbers of calls, e.g. 2,3,5,10; got {self.inner}")
            if len(self.inner) == 1:
                self.inner = self.inner[0]
            else:
                self.outer = len(self.inner)  # one budget per outer step
        for name in ("outer", "inner", "steps"):
            if isinstance(getattr(self, name), int) and getattr(self, name) < 1:
                raise UsageError(f"--{name} must be a positive number of steps, got {getattr(self, name)}")
        if self.zeta is not None and not 0 <= self.zeta <= (1 if solver_parts(self.solver)[1] == "diffpir" else math.inf):
            raise UsageError(f"--zeta must lie in [0, 1] for DiffPIR (a share of noise) and be >= 0 for DPS, got {self.zeta}")
        if self.outer_power <= 0:
            raise UsageError(f"--outer-power must be > 0 (1 = the paper's even outer grid), got {self.outer_power}")
        if not 0.0 <= self.outer_eta <= 1.0:
            raise UsageError(f"--outer-eta must lie in [0, 1], got {self.outer_eta}")
        if not 0.0 <= self.outer_noise <= 1.0:
            raise UsageError(f"--outer-noise must lie in [0, 1] (the share of fresh noise), got {self.outer_noise}")
        if self.inner_power <= 0:
            raise UsageError(f"--inner-power must be > 0 (1 = the solver's own grid in every inner run), "
                             f"got {self.inner_power}")
        if self.outer_noise > 0 and self.outer_eta > 0:
            raise UsageError(f"give --outer-eta or --outer-noise, not both (got {self.outer_eta} and {self.outer_noise})")
        if self.outer_times is not None and self.outer_times != "cosine":
            try:  # a list from a config or the API, or "950,850,..." text
                times = parse_times(self.outer_times) if isinstance(self.outer_times, str) else self.outer_times
                self.outer_times = times if times == "cosine" else check_outer_times(times, self.outer)  # Nested's rule
            except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
                raise UsageError(f"--outer-times: {error}") from None
        if self.lam is not None and self.lam <= 0:
            raise UsageError(f"--lambda must be > 0, got {self.lam}")
        for name in ("eta", "eta_b"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"--{name.replace('_', '-')} must lie in [0, 1], got {getattr(self, name)}")
        if isinstance(self.size, str) and self.size != "native":
            self.size = parse_size(self.size)
        if isinstance(self.size, int) and self.size < 16:
            raise UsageError(f"--size must be at least 16 pixels, got {self.size}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise UsageError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.tile is not None and self.tile < 0:
            raise UsageError(f"--tile must be a number of pixels (0: no tiling), got {self.tile}")
        return self

    @property
    def nested(self) -> bool:
        return solver_parts(self.solver)[0]

    @property
    def budgets(self) -> list[int]:
        """Network calls per outer step (nested solvers)."""
        return list(self.inner) if isinstance(self.inner, list) else [self.inner] * self.outer

    @property
    def nfe(self) -> int:
        return sum(self.budgets) if self.nested else self.steps

    @property
    def anytime_steps(self) -> int:
        return self.outer if self.nested else self.steps

    @property
    def label(self) -> str:
        """E.g. "Nested DDRM 4 x 5", "Nested DDNM 2+3+5+10", "DiffPIR 20 steps"."""
        nested, name = solver_parts(self.solver)
        if not nested:
            return f"{SOLVER_TITLES[name]} {self.steps} steps"
        split = "+".join(map(str, self.inner)) if isinstance(self.inner, list) else f"{self.outer} x {self.inner}"
        return f"Nested {SOLVER_TITLES[name]} {split}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SOLVER_TITLES = {"ddrm": "DDRM", "ddnm": "DDNM", "diffpir": "DiffPIR", "dps": "DPS"}
SOLVER_NAMES = tuple(SOLVER_TITLES) + ("nested",) + tuple(f"nested-{n}" for n in SOLVER_TITLES)


def solver_parts(name: str) -> tuple[bool, str]:
    """(nested?, inner solver) of a solver name: "ddnm" -> (False, "ddnm"), "nested-ddnm" ->
    (True, "ddnm"), "nested" -> (True, "ddrm")."""
    if name == "nested":
        return True, "ddrm"
    base = name[len("nested-"):] if name.startswith("nested-") else name
    if base not in SOLVER_TITLES:
        raise UsageError(f"unknown solver {name!r}; valid: {', '.join(SOLVER_NAMES)}")
    return base != name, base


def parse_size(text: str) -> int | str:
    """--size: "native" or a number of pixels."""
    if str(text).strip().lower() == "native":
        return "native"
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--size takes a number of pixels or 'native', got {text!r}") from None


def parse_inner(text: str) -> int | list[int]:
    """--inner: one number of calls per outer step (5) or one per outer step (2,3,5,10)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma list such as 2,3,5,10, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def parse_times(text: str) -> list[int] | str:
    """--outer-times: "cosine", or whole diffusion times separated by commas (950,850,600,250); the
    rule they must follow is checked in Settings.validate (solvers.schedule.check_outer_times)."""
    if str(text).strip().lower() == "cosine":
        return "cosine"
    try:
        return [int(v) for v in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole times separated by commas, e.g. 950,850,600,250; got {text!r}") from None
