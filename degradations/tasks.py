"""How a degradation task declares itself: its name (--task), one line saying what it is, how its
operator is built, its options as a typed dataclass (degradations.options), which of them are
files it reads (a mask, a kernel) or must be given, and for super-resolution its factor. The
command line's flags and help, the settings schema, the page's menu and the docs' lists are read
from these declarations (restore.settings), so a new task is one declaration beside its operator:

    @dataclass
    class SquareHole:
        hole: whole(ge=1) = option(32, "side of the missing square, in pixels")

    declare_task("inp_square", "inpainting of a centred square hole of a given side",
                 lambda h, w, c, hole: Inpainting(square(h, w, hole), channels=c), SquareHole)

A module of this package that declares tasks is found by `degradations.registry`; one outside it
declares them by being imported. Options of the same name in two tasks must mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from degradations.options import OptionSpec, check_same_meaning, read_options


@dataclass(frozen=True)
class TaskSpec:
    """A task: build(height, width, channels, **options) makes its operator for images of that
    size (options by name, every one given: defaults filled in); `required` options must not be
    None; `scale` is how many times smaller the measurement image is than the image, one factor
    (super-resolution: 4 for sr4) or (rows, columns); 1 for most tasks;
    `margin(options)` the pixels of scene beyond each edge of the measured photo the operator
    needs (None: none)."""

    name: str
    summary: str
    build: Callable[..., Any]
    options: type | None = None
    required: tuple[str, ...] = ()
    scale: int | tuple[int, int] = 1
    margin: Callable[[dict[str, Any]], int] | None = None

    @property
    def option_specs(self) -> tuple[OptionSpec, ...]:
        return read_options(self.options) if self.options is not None else ()

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.option_specs}

    def values(self, options: dict[str, Any]) -> dict[str, Any]:
        """Every option's value: those given (None = the default), the rest at their defaults;
        ValueError for an option this task does not take or a required one missing."""
        known = self.defaults()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown option(s) for task {self.name!r}: {', '.join(unknown)}"
                             f" (it takes: {', '.join(known) if known else 'none'})")
        values = {**known, **{k: v for k, v in options.items() if v is not None}}
        for name in self.required:
            if values.get(name) is None:
                spec = next(o for o in self.option_specs if o.name == name)
                what = spec.help.split(": ", 1)[-1]  # the help without its "task: " prefix
                raise ValueError(f"{self.name} needs a {name} ({spec.flag} PATH): {what}")
        return values


#: every task declared so far, by name (degradations.registry finds the package's own)
DECLARED: dict[str, TaskSpec] = {}


def declare_task(name: str, summary: str, build: Callable[..., Any], options: type | None = None, *,
                 required: tuple[str, ...] = (), scale: int | tuple[int, int] = 1,
                 margin: Callable[[dict[str, Any]], int] | None = None) -> TaskSpec:
    """Declare (register) a task; returns its spec."""
    scale = (int(scale), int(scale)) if isinstance(scale, int) else tuple(int(f) for f in scale)
    if len(scale) != 2 or min(scale) < 1:
        raise ValueError(f"task {name}: scale must be a factor >= 1 or two of them (rows, columns), got {scale}")
    spec = TaskSpec(name, summary, build, options, tuple(required), scale, margin)
    if name in DECLARED and getattr(DECLARED[name].build, "__module__", None) != getattr(build, "__module__", None):
        raise ValueError(f"task name {name!r} is taken")
    for o in spec.option_specs:
        check_same_meaning(o, name, {n: t.option_specs for n, t in DECLARED.items()})
    DECLARED[name] = spec
    return spec
