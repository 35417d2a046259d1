"""How a solver declares itself: its name, its title, its options as a typed dataclass, and how it
is built. Everything a front end needs (command-line flags and help, the settings schema and its
checks, the page's menu, evaluate's --solvers, the resume check, the docs' lists) is read from
these declarations (restore.settings derives them), so adding a solver is one file:

    @dataclass
    class Options:
        eta: Share = option(0.85, "share of fresh noise (the paper's eta)")

    SOLVER = declare("mysolver", "My solver", MySolver, Options, "Someone et al. 2025")

An option is a dataclass field whose annotation carries its type and range (pydantic's
`Field(ge=..., le=...)` inside `Annotated`: the types of degradations.options) and whose `option(...)` default
carries its help, the constructor argument it sets (`arg`, default its name), the flag (default
--name-with-dashes) and old names still accepted (`aliases`). Options of the same name in two
solvers must mean the same thing (the same annotation); a solver's own default wins.

A module of this package that defines `SOLVER = declare(...)` is found by `solvers.registry`;
one outside it registers by importing it (or through the `anytime_restore.solvers` entry point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from degradations.options import (  # noqa: F401 - the vocabulary a solver's options are written in
    MAX_STEPS,
    Budgets,
    NonNegative,
    OptionSpec,
    Positive,
    Share,
    Steps,
    Times,
    check_same_meaning,
    number,
    option,
    parse_budgets,
    parse_times,
    read_options,
    whole,
)


@dataclass(frozen=True)
class SolverSpec:
    """A solver's declaration: name (the command line's), title (tables'), the class built as
    cls(prior, operator, steps=..., **options) (options by their `arg`), the options dataclass,
    the paper in a few words, and whether it needs the operator's SVD (else H and H^T will do)."""

    name: str
    title: str
    cls: type
    options: type
    citation: str = ""

    @property
    def option_specs(self) -> tuple[OptionSpec, ...]:
        return read_options(self.options)

    @property
    def needs_svd(self) -> bool:
        return bool(getattr(self.cls, "needs_svd", True))

    def defaults(self) -> dict[str, Any]:
        """Every option's default, by option name."""
        return {o.name: o.default for o in self.option_specs}

    def build(self, prior, operator, steps: int, **values: Any):
        """The solver with `steps` calls and the options given by name (others at their defaults)."""
        specs = {o.name: o for o in self.option_specs}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise ValueError(f"{self.title} has no option(s) {', '.join(unknown)}; it takes: "
                             f"{', '.join(specs) or 'none'}")
        kwargs = {specs[k].arg: v for k, v in {**self.defaults(), **values}.items() if v is not None}
        return self.cls(prior, operator, steps=steps, **kwargs)


#: every solver declared so far, by name (solvers.registry finds the package's own)
DECLARED: dict[str, SolverSpec] = {}


def declare(name: str, title: str, cls: type, options: type, citation: str = "") -> SolverSpec:
    """Declare (register) a solver; returns its spec. A name already declared by another class is refused."""
    spec = SolverSpec(name, title, cls, options, citation)
    known = DECLARED.get(name)
    if known is not None and (known.cls.__module__, known.cls.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"solver name {name!r} is taken by {known.cls.__qualname__}")
    if name == "nested" or name.startswith("nested-"):
        raise ValueError(f"solver name {name!r}: nested-<name> is how every solver is run nested")
    for o in spec.option_specs:
        check_same_meaning(o, name, {n: s.option_specs for n, s in DECLARED.items()})
    DECLARED[name] = spec
    return spec
