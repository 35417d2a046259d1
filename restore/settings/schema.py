"""The settings of one restoration: every field that determines its numbers, their rules
(`Settings.validate`), and the solver names. Where a run's values come from (defaults, the
measured config, what the person set) is restore.settings.compose; building the operator and the
solver from them, restore.settings.build."""

from __future__ import annotations

import argparse
import os
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Optional, Union

from pydantic import Field, TypeAdapter, ValidationError

from degradations import TASKS
from degradations.registry import FOURIER_TASKS
from restore.errors import UsageError
from restore.settings.rules import (
    Boundary,
    Candidates,
    NonNegative,
    Positive,
    Precision,
    Seed,
    Share,
    Side,
    Std,
    Steps,
    Tile,
    Times,
    refuse,
)
from solvers import SOLVERS
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
    memory; see restore.models.network). boundary: the Fourier blurs' edges, "periodic" (circular,
    an SVD operator) or "exact" (a photo blurred by a lens: the centre of the blur of a larger
    image, known through H and H^T, for DiffPIR and DPS; restore.settings.build). precision
    (fp32, bf16, fp16: the network only) and compile: how the network runs (restore.models.precision). config: the YAML file these settings came from, if any (given,
    or the measured one of the task and model: restore.settings.configs)."""

    task: str = "sr4"
    sigma_y: Std = 0.0
    mask: Optional[str] = None
    kernel: Optional[str] = None
    boundary: Boundary = "periodic"
    model: Optional[str] = None
    solver: str = "nested"
    outer: Steps = 4
    inner: Union[Steps, Annotated[list[Steps], Field(min_length=1)]] = 5
    steps: Steps = 20
    eta: Share = 0.85
    eta_b: Share = 1.0
    zeta: Optional[NonNegative] = None
    lam: Optional[Positive] = None
    outer_power: Positive = 2.0
    outer_eta: Share = 0.0
    outer_times: Times = None
    outer_noise: Share = 0.0
    inner_power: Positive = 1.0
    seed: Seed = 0
    size: Side = None
    tile: Tile = None
    candidates: Candidates = 1
    precision: Precision = "fp32"
    compile: bool = False
    config: Optional[str] = None

    def validate(self) -> "Settings":
        """Check every value against its field's type and range (restore.settings.rules, one line
        naming the flag, the value and what is expected), convert it where pydantic does, then the
        rules between fields; returns self."""
        for f in fields(self):
            setattr(self, f.name, self.check(f.name, getattr(self, f.name)))
        if self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}; valid tasks: {', '.join(TASKS)}")
        if self.task == "inp_mask" and not self.mask:
            raise UsageError("task inp_mask needs --mask PATH (an image: black = missing, white = kept)")
        if self.mask and not Path(self.mask).is_file():
            raise UsageError(f"mask file {self.mask} not found")
        if self.task == "deblur" and not self.kernel:
            raise UsageError("task deblur needs --kernel PATH (a .npy array or an image of the blur kernel)")
        if self.kernel and not Path(self.kernel).is_file():
            raise UsageError(f"kernel file {self.kernel} not found")
        solver_parts(self.solver)
        if self.boundary == "exact":
            if self.task not in FOURIER_TASKS:
                raise UsageError(f"--boundary exact is for the Fourier blurs ({', '.join(FOURIER_TASKS)}), "
                                 f"not {self.task}")
            inner = solver_parts(self.solver)[1]
            if inner not in MATRIX_FREE:
                raise UsageError(f"--boundary exact knows the blur through H and H^T only, and {SOLVER_TITLES[inner]} "
                                 "needs its SVD: use diffpir (--lambda 30 with noise), nested-diffpir or dps")
        if isinstance(self.inner, list):
            if len(self.inner) == 1:
                self.inner = self.inner[0]
            else:
                self.outer = len(self.inner)  # one budget per outer step
        if self.zeta is not None and solver_parts(self.solver)[1] == "diffpir" and self.zeta > 1:
            raise UsageError(f"--zeta must lie in [0, 1] for DiffPIR (a share of noise) and be >= 0 for DPS, "
                             f"got {self.zeta}")
        if self.outer_noise > 0 and self.outer_eta > 0:
            raise UsageError(f"give --outer-eta or --outer-noise, not both "
                             f"(got {self.outer_eta} and {self.outer_noise})")
        if self.outer_times is not None and self.outer_times != "cosine":
            try:
                self.outer_times = check_outer_times(self.outer_times, self.outer)  # Nested's rule
            except (ValueError, TypeError) as error:
                raise UsageError(f"--outer-times: {error}") from None
        return self

    @staticmethod
    def check(name: str, value: Any, where: str | None = None) -> Any:
        """One setting's value against its field's type and range (pydantic), converted; a
        UsageError naming the key (the flag, or `where`: name as in a config file) otherwise."""
        if isinstance(value, os.PathLike) and name in ("mask", "kernel", "model", "config"):
            value = os.fspath(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, str) and name in ("size", "outer_times"):  # "native", "256"; "950,850,..."
            try:
                value = parse_size(value) if name == "size" else parse_times(value)
            except (argparse.ArgumentTypeError, UsageError):
                raise refuse(name, value, where) from None
        try:
            return _ADAPTERS[name].validate_python(value)
        except ValidationError:
            raise refuse(name, value, where) from None

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


#: the solvers that need only H and H^T (no SVD): the ones --boundary exact can use
MATRIX_FREE = tuple(name for name, cls in SOLVERS.items() if getattr(cls, "matrix_free", False))

SOLVER_TITLES = {"ddrm": "DDRM", "ddnm": "DDNM", "diffpir": "DiffPIR", "dps": "DPS", "pigdm": "PiGDM"}
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


#: one pydantic validator per field, from the annotations above (the schema of every setting)
_ADAPTERS = {name: TypeAdapter(hint) for name, hint in typing.get_type_hints(Settings, include_extras=True).items()}
