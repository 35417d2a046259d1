"""The settings every restoration has, declared as options (degradations.options: a typed
dataclass whose fields carry their type, range, help and flag), and the one line that says what
a value outside them should have been.

The rest of the settings are declared by the tasks (degradations: --mask, --kernel, --boundary,
...), the solvers (solvers: --eta, --lambda, ...) and Nested (its outer loop: --outer, --inner,
...); restore.settings.schema gathers them all into `Settings`. `Settings.check` validates one
value against its field's annotation with pydantic (the same schema for command-line flags,
config files, the API and the page): it returns the value converted (a YAML "0.3" becomes 0.3,
4.0 becomes 4) or raises `refuse`'s UsageError, naming the flag (or the keyword, or the config
file's key), the value and what is expected. Numbers are finite (NaN and infinity are refused
everywhere) and a bool is never a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from degradations.options import MAX_STEPS, Steps, number, option, whole
from restore.errors import UsageError

#: the most candidates of one restoration (each one is a row of every network call)
MAX_CANDIDATES = 64

Std = number(ge=0, le=1)
Seed = whole(ge=-(2**63), lt=2**64)
Side = Union[whole(ge=16), Literal["native"], None]
Tile = Union[Literal[0], whole(ge=16), None]
Candidates = whole(ge=1, le=MAX_CANDIDATES)
Precision = Literal["fp32", "bf16", "fp16"]


def parse_size(text: str) -> int | str:
    """--size: "native" or a number of pixels."""
    if str(text).strip().lower() == "native":
        return "native"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--size takes a number of pixels or 'native', got {text!r}") from None


@dataclass
class Problem:
    """What is restored: the task and its noise (its own options come from its declaration)."""

    task: str = option("sr4", "the degradation (default sr4)", expect="be a task name")
    sigma_y: Std = option(0.0, "measurement noise std on the [0, 1] pixel scale (default 0)",
                          expect="be >= 0 and at most 1 (a finite std on the [0, 1] pixel scale)")


@dataclass
class Method:
    """Which prior and solver restore it (their options come from their declarations)."""

    model: Optional[str] = option(None, "the prior (default: celebahq if cached locally, else the bundled prior)",
                                  expect="be a model name, id, folder or checkpoint path")
    solver: str = option("nested", "the solver: a plain one, or nested-<one of them> for its anytime version "
                                   "(default nested = nested-ddrm)", metavar="NAME", expect="be a solver name")
    steps: Steps = option(20, "plain solvers: network calls (default 20)",
                          expect=f"be a positive number of steps, at most {MAX_STEPS} (the schedule's length)")


@dataclass
class Execution:
    """How it runs: its randomness, size, candidates and arithmetic."""

    seed: Seed = option(0, "random seed (default 0)", expect="be a whole number in [-2^63, 2^64)")
    size: Side = option(None, "restore at S x S (centre crop and resize) or at the input's own size (native); "
                              "default native, or the model's size for one trained at a single size (CelebA-HQ)",
                        parse=parse_size, metavar="S|native", expect="be at least 16 pixels, or 'native'")
    tile: Tile = option(None, "call the network on overlapping tiles of this size (0: never; default: only when "
                              "one call would not fit the memory)", metavar="PIXELS",
                        expect="be a number of pixels: 0 (no tiling) or at least 16")
    candidates: Candidates = option(1, "K restorations of the same measurement, each with its own noise (default 1)",
                                    metavar="K", expect=f"be at least 1 and at most {MAX_CANDIDATES} (restorations "
                                                        "of the same measurement)")
    precision: Precision = option("fp32", "the network's arithmetic (autocast; the solver stays fp32): fp32 "
                                          "(default), bf16, fp16 (GPU)", expect="be fp32, bf16 or fp16")
    compile: bool = option(False, "torch.compile the network (CUDA graphs on a GPU; slow to build on a CPU)",
                           expect="be true or false")
    config: Optional[str] = option(None, "YAML file of settings (see configs/); flags override it. Default: the "
                                         "measured configs/<task>_<model>.yaml when there is one; 'none' ignores it",
                                   expect="be a path to a settings file")


def refuse(flag: str, key: str, expect: str, value: Any, where: str | None = None) -> UsageError:
    """The one line for a value outside a setting's type or range: "--sigma-y must be ..., got
    nan", with `where` a config file "config X: sigma_y must be ..., got 'abc'", with `where`
    "keyword" (the API) "sigma_y must be ..."."""
    if where == "keyword":
        name = key
    elif where:
        name = f"{where}: {key}"
    else:
        name = flag
    verb = "" if expect.startswith(("be ", "lie ")) else "be "
    return UsageError(f"{name} must {verb}{expect}, got {value!r}")
