"""Options as declarations: a dataclass whose fields are the options, each annotated with its
type and range (pydantic's `Field(ge=..., le=...)` inside `Annotated`: the types below) and
given by `option(default, help, ...)`. Tasks (degradations.tasks) and solvers (solvers.options)
declare their options this way, and the front ends (restore.settings) derive flags, help, the
settings schema and its one-line errors from them. A leaf module: it imports only pydantic.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING, dataclass
from typing import Annotated, Any, Callable, Literal, Union

from pydantic import BeforeValidator, Field

#: the CelebA-HQ schedule's length: no run makes more distinct network calls than this in a step
MAX_STEPS = 1000


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a bool is not a number")
    return value


def number(**limits) -> Any:
    """A finite float within `limits` (pydantic's ge / gt / le / lt); a bool is not a number."""
    return Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False, **limits)]


def whole(**limits) -> Any:
    """A whole number within `limits`; a bool is not a number."""
    return Annotated[int, BeforeValidator(_not_bool), Field(**limits)]


Share = number(ge=0, le=1)
Positive = number(gt=0)
NonNegative = number(ge=0)
Steps = whole(ge=1, le=MAX_STEPS)
Seed = whole(ge=0, lt=2**63)
Budgets = Union[Steps, Annotated[list[Steps], Field(min_length=1)]]
Times = Union[list[whole(ge=0, le=MAX_STEPS)], Literal["cosine"], None]


def parse_budgets(text: str) -> int | list[int]:
    """"5" -> 5, "2,3,5,10" -> [2, 3, 5, 10] (ValueError otherwise)."""
    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise ValueError(f"expected a number or a comma list such as 2,3,5,10, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def parse_times(text: str) -> list[int] | str:
    """"cosine", or whole diffusion times separated by commas ("950,850,600,250")."""
    if str(text).strip().lower() == "cosine":
        return "cosine"
    try:
        return [int(v) for v in str(text).split(",")]
    except ValueError:
        raise ValueError(f"expected whole times separated by commas, e.g. 950,850,600,250; got {text!r}") from None


def option(default: Any, help: str, *, arg: str | None = None, flag: str | None = None,
           aliases: tuple[str, ...] = (), expect: str | None = None, parse: Callable[[str], Any] | None = None,
           metavar: str | None = None, file: bool = False) -> Any:
    """A dataclass field for an option: its default and what the front ends show of it.

    help: one line for --help and the page; arg: the constructor's keyword (default the option's
    name); flag: the command-line flag (default --name-with-dashes); aliases: old names accepted
    for it (flags and settings keys); expect: what a value must be, for the one-line error
    (default: derived from the annotation's range); parse: str -> value for the command line
    (default: the annotation's type); file: the value is a path to a file the declaration reads
    (a mask, a kernel: checked to exist, fingerprinted for resume)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "arg": arg, "flag": flag, "aliases": tuple(aliases), "expect": expect, "parse": parse,
        "metavar": metavar, "file": file})


@dataclass(frozen=True)
class OptionSpec:
    """One option as the front ends see it (read from a declaration's dataclass)."""

    name: str
    annotation: Any
    default: Any
    help: str
    arg: str
    flag: str
    aliases: tuple[str, ...]
    expect: str
    parse: Callable[[str], Any] | None
    metavar: str | None
    file: bool = False

    def same_meaning(self, other: "OptionSpec") -> bool:
        return (self.annotation == other.annotation and self.flag == other.flag
                and self.expect == other.expect and self.aliases == other.aliases)


def expectation(annotation: Any) -> str:
    """What a value of `annotation` must be, in words: "lie in [0, 1]", "be > 0", "be a whole number >= 1"."""
    limits, base = {}, annotation
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        for extra in extras:
            for item in getattr(extra, "metadata", ()):
                for key in ("ge", "gt", "le", "lt"):
                    if getattr(item, key, None) is not None:
                        limits[key] = getattr(item, key)
    kind = "a whole number" if base is int else "a finite number" if base is float else None
    low = f">= {_fmt(limits['ge'])}" if "ge" in limits else f"> {_fmt(limits['gt'])}" if "gt" in limits else None
    high = f"<= {_fmt(limits['le'])}" if "le" in limits else f"< {_fmt(limits['lt'])}" if "lt" in limits else None
    if "ge" in limits and "le" in limits and base is float:
        return f"lie in [{_fmt(limits['ge'])}, {_fmt(limits['le'])}]"
    parts = [p for p in (low, high) if p]
    if kind is None:
        return "be " + (" and ".join(parts) if parts else "a valid value")
    return f"be {kind}" + (" " + " and ".join(parts) if parts else "")


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def read_options(options: type) -> tuple[OptionSpec, ...]:
    """The OptionSpecs of an options dataclass (its fields, their annotations and metadata)."""
    hints = typing.get_type_hints(options, include_extras=True)
    specs = []
    for f in dataclasses.fields(options):
        meta = f.metadata
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        specs.append(OptionSpec(
            name=f.name, annotation=hints[f.name], default=default, help=meta.get("help", ""),
            arg=meta.get("arg") or f.name, flag=meta.get("flag") or "--" + f.name.replace("_", "-"),
            aliases=tuple(meta.get("aliases", ())), expect=meta.get("expect") or expectation(hints[f.name]),
            parse=meta.get("parse"), metavar=meta.get("metavar"), file=bool(meta.get("file"))))
    return tuple(specs)


def check_same_meaning(option: OptionSpec, owner: str, others: dict[str, tuple[OptionSpec, ...]]) -> None:
    """ValueError when another declaration (`others`: owner -> its options) has an option of this
    name that means something else (another type, range, flag or aliases)."""
    for name, options in others.items():
        match = next((p for p in options if p.name == option.name), None)
        if match is not None and name != owner and not match.same_meaning(option):
            raise ValueError(f"option {option.name!r} of {owner} is declared differently by {name}; "
                             "give an option that means something else its own name")
