"""The type and range of every setting, as pydantic checks them, and the one line that says what a
value outside them should have been.

Each field of restore.settings.schema.Settings is annotated with one of the types below, and
`Settings.check` validates one value against its field's annotation with pydantic (the same
schema for command-line flags, config files, the API and the page): it returns the value
converted (a YAML "0.3" becomes 0.3, 4.0 becomes 4) or raises `refuse`'s UsageError, naming the
key, the value and what is expected. Numbers are
finite (NaN and infinity are refused everywhere) and a bool is never a number.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from restore.errors import UsageError

#: the CelebA-HQ schedule's length: no run makes more distinct network calls than this in a step
MAX_STEPS = 1000
#: the most candidates of one restoration (each one is a row of every network call)
MAX_CANDIDATES = 64


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a bool is not a number")
    return value


def _number(**limits) -> Any:
    return Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False, **limits)]


def _whole(**limits) -> Any:
    return Annotated[int, BeforeValidator(_not_bool), Field(**limits)]


Std = _number(ge=0, le=1)
Share = _number(ge=0, le=1)
Positive = _number(gt=0)
NonNegative = _number(ge=0)
Steps = _whole(ge=1, le=MAX_STEPS)
Seed = _whole(ge=-(2**63), lt=2**64)
Side = Union[_whole(ge=16), Literal["native"], None]
Tile = Union[Literal[0], _whole(ge=16), None]
Candidates = _whole(ge=1, le=MAX_CANDIDATES)
Times = Union[list[_whole(ge=0, le=MAX_STEPS)], Literal["cosine"], None]
Precision = Literal["fp32", "bf16", "fp16"]
Boundary = Literal["periodic", "exact"]

#: what each setting must be, as the one-line error says it ("--sigma-y must be ..., got ...")
EXPECTED = {
    "task": "a task name",
    "sigma_y": "be >= 0 and at most 1 (a finite std on the [0, 1] pixel scale)",
    "mask": "a path to a mask image",
    "kernel": "a path to a blur kernel (.npy array or image)",
    "boundary": "periodic or exact",
    "model": "a model name, id, folder or checkpoint path",
    "solver": "a solver name",
    "outer": f"a positive number of steps, at most {MAX_STEPS}",
    "inner": f"a positive number of steps, or positive numbers of calls such as 2,3,5,10 (at most {MAX_STEPS} each)",
    "steps": f"a positive number of steps, at most {MAX_STEPS} (the schedule's length)",
    "eta": "lie in [0, 1]",
    "eta_b": "lie in [0, 1]",
    "zeta": "a finite number >= 0",
    "lam": "a finite number > 0",
    "outer_power": "a finite number > 0 (1 = the paper's even outer grid)",
    "outer_eta": "lie in [0, 1]",
    "outer_times": "'cosine' or whole diffusion times, e.g. 950,850,600,250",
    "outer_noise": "lie in [0, 1] (the share of fresh noise)",
    "inner_power": "a finite number > 0 (1 = the solver's own grid in every inner run)",
    "seed": "a whole number",
    "size": "at least 16 pixels, or 'native'",
    "tile": "a number of pixels: 0 (no tiling) or at least 16",
    "candidates": f"at least 1 and at most {MAX_CANDIDATES} (restorations of the same measurement)",
    "precision": "fp32, bf16 or fp16",
    "compile": "true or false",
    "config": "a path to a settings file",
}


def flag(name: str) -> str:
    """The command-line flag of a setting: sigma_y -> --sigma-y (lam -> --lambda)."""
    return "--lambda" if name == "lam" else "--" + name.replace("_", "-")


def refuse(name: str, value: Any, where: str | None = None) -> UsageError:
    """The one line for a value outside setting `name`'s type or range: "--sigma-y must be ...,
    got nan", or with `where` (a config file) "config X: sigma_y must be ..., got 'abc'"."""
    expected = EXPECTED[name]
    verb = "" if expected.startswith(("be ", "lie ")) else "be "
    key = f"{where}: {name}" if where else flag(name)
    return UsageError(f"{key} must {verb}{expected}, got {value!r}")
