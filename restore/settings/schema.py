"""The settings of one restoration, gathered from the declarations: the settings every run has
(restore.settings.rules), each task's options (degradations.registry), Nested's outer loop and
each solver's options (solvers.registry). `Settings` is a dataclass made from them, so a new
task or solver brings its options to the command line, config files, the API, the page and the
resume check without an edit here. Where a run's values come from (defaults, the measured
config, what the person set) is restore.settings.compose; building the operator and the solver,
restore.settings.build.

A task's or a solver's option is None in `Settings` until a run resolves it: `validate` fills the
options of the run's own task and solver with their declared defaults, so a run's settings (its
metrics.json) show every value that made its numbers, and the options of other tasks and solvers
stay None. An option set for a task or solver the run does not use is reported by `unused`.
"""

from __future__ import annotations

import os
import typing
from dataclasses import asdict, dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import TypeAdapter, ValidationError

from degradations.options import OptionSpec, read_options
from degradations.registry import tasks
from restore.errors import UsageError
from restore.names import check_path
from restore.settings import rules
from solvers.nested import Options as NestedOptions
from solvers.options import SolverSpec
from solvers.registry import solver_names, solvers, split
from solvers.schedule import check_outer_times


@dataclass(frozen=True)
class Setting:
    """One setting as the front ends see it: its declaration (`spec`: type, range, help, flag),
    what declared it ("run", "task", "nested" or "solver") and, for a task's or a solver's
    option, who takes it and each one's default."""

    spec: OptionSpec
    kind: str
    owners: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def flag(self) -> str:
        return self.spec.flag

    @property
    def annotation(self) -> Any:
        """The annotation of its Settings field (a task's or solver's option may be None: unresolved)."""
        return Optional[self.spec.annotation] if self.kind in ("task", "solver") else self.spec.annotation

    @property
    def default(self) -> Any:
        return None if self.kind in ("task", "solver") else self.spec.default

    def help(self) -> str:
        """Its --help line: the declaration's help, and its default(s) for an option of several owners."""
        if self.kind not in ("task", "solver"):
            return self.spec.help
        values = set(map(repr, self.defaults.values()))
        if len(values) == 1:
            shown = next(iter(self.defaults.values()))
            return f"{self.spec.help} (default {shown})" if shown is not None else self.spec.help
        each = ", ".join(f"{owner} {value}" for owner, value in self.defaults.items())
        return f"{self.spec.help} (defaults: {each})"


def _gather() -> dict[str, Setting]:
    """Every setting, in the order of a run's settings: the problem and its task's options, the
    method (model, solver, Nested's outer loop, steps, the solvers' options), then the run's own."""
    gathered: dict[str, Setting] = {}

    def add(kind: str, owner: str, options: tuple[OptionSpec, ...]) -> None:
        for o in options:
            known = gathered.get(o.name)
            if known is None:
                gathered[o.name] = Setting(o, kind, (owner,) if owner else (), {owner: o.default} if owner else {})
            elif known.kind != kind or not known.spec.same_meaning(o):
                raise ValueError(f"option {o.name!r} of {owner} clashes with another setting of that name")
            else:
                gathered[o.name] = Setting(known.spec, kind, known.owners + (owner,), {**known.defaults, owner: o.default})

    add("run", "", read_options(rules.Problem))
    for name, spec in tasks().items():
        add("task", name, spec.option_specs)
    method = read_options(rules.Method)
    add("run", "", method[:2])  # model, solver
    add("nested", "", read_options(NestedOptions))
    add("run", "", method[2:])  # steps
    for name, spec in solvers().items():
        add("solver", name, spec.option_specs)
    add("run", "", read_options(rules.Execution))
    return gathered


#: every setting by name, in the order of a run's settings
SETTINGS: dict[str, Setting] = _gather()
#: old names still accepted (flags, config keys, keywords) -> [(solver or task, the setting it now is)]
ALIASES: dict[str, list[tuple[str, str]]] = {}
for _setting in SETTINGS.values():
    for _alias in _setting.spec.aliases:
        ALIASES.setdefault(_alias, []).extend((owner, _setting.name) for owner in _setting.owners)


def name_of(key: str, where: str | None = None) -> str:
    """How a message names a setting: its flag (the command line), or its keyword (`where`
    "keyword": the API), or the key in a config file."""
    if where is None:
        setting = SETTINGS.get(key)
        return setting.flag if setting is not None else "--" + key.replace("_", "-")
    return key


class SettingsMethods:
    """What `Settings` can do besides holding values (the fields come from the declarations)."""

    def validate(self, where: str | None = None) -> "Settings":
        """Check every value against its declaration's type and range (one line naming the flag,
        or with where="keyword" the keyword, the value and what is expected), convert it where
        pydantic does, then the rules between settings; fill the run's own task and solver
        options with their defaults. Returns self."""
        for f in fields(self):
            setattr(self, f.name, self.check(f.name, getattr(self, f.name), where))
        named = lambda key: name_of(key, where)  # noqa: E731
        task = tasks().get(self.task)
        if task is None:
            raise UsageError(f"unknown task {self.task!r}; valid tasks: {', '.join(tasks())}")
        nested, inner = self.parts
        for spec in task.option_specs + inner.option_specs:
            value = getattr(self, spec.name)
            if spec.file and value:
                check_path(value, named(spec.name) + ("=" if where == "keyword" else ""))
            if spec.file and value and not Path(value).is_file():
                raise UsageError(f"{spec.name} file {value} not found")
        for key in task.required:
            if not getattr(self, key):
                what = next(o for o in task.option_specs if o.name == key).help.split(": ", 1)[-1]
                raise UsageError(f"task {self.task} needs {named(key)}{' PATH' if where is None else ''} ({what})")
        if self.boundary == "exact" and "boundary" in task.defaults() and inner.needs_svd:
            exact = ", ".join(n for n, s in solvers().items() if not s.needs_svd)
            raise UsageError(f"{named('boundary')} exact knows the blur through H and H^T only, and {inner.title} "
                             f"needs its SVD: use one of {exact} (or nested-...; diffpir with --lambda 30 with noise)")
        if isinstance(self.inner, list):
            if len(self.inner) == 1:
                self.inner = self.inner[0]
            else:
                self.outer = len(self.inner)  # one budget per outer step
        if self.outer_noise > 0 and self.outer_eta > 0:
            raise UsageError(f"give {named('outer_eta')} or {named('outer_noise')}, not both "
                             f"(got {self.outer_eta} and {self.outer_noise})")
        if self.outer_times is not None and self.outer_times != "cosine":
            try:
                self.outer_times = check_outer_times(self.outer_times, self.outer)  # Nested's rule
            except (ValueError, TypeError) as error:
                raise UsageError(f"{named('outer_times')}: {error}") from None
        for key, value in {**task.defaults(), **inner.defaults()}.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        return self

    @staticmethod
    def check(name: str, value: Any, where: str | None = None) -> Any:
        """One setting's value against its declaration's type and range (pydantic), converted; a
        UsageError naming it (the flag; with `where` "keyword" the keyword; else `where`'s key,
        a config file) otherwise."""
        setting = SETTINGS[name]
        if isinstance(value, os.PathLike) and (setting.spec.file or name in ("model", "config")):
            value = os.fspath(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, str) and setting.spec.parse is not None:  # "native", "950,850,...", "2,3,5"
            try:
                value = setting.spec.parse(value)
            except ValueError:
                raise _refuse(name, value, where) from None
        try:
            return _ADAPTERS[name].validate_python(value)
        except ValidationError:
            raise _refuse(name, value, where) from None

    # -- what the settings name ---------------------------------------------------------------
    @property
    def parts(self) -> tuple[bool, SolverSpec]:
        """(nested?, the inner solver's declaration)."""
        try:
            return split(self.solver)
        except ValueError as error:
            raise UsageError(str(error)) from None

    @property
    def nested(self) -> bool:
        return self.parts[0]

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
        nested, inner = self.parts
        if not nested:
            return f"{inner.title} {self.steps} steps"
        split_ = "+".join(map(str, self.inner)) if isinstance(self.inner, list) else f"{self.outer} x {self.inner}"
        return f"Nested {inner.title} {split_}"

    def task_options(self) -> dict[str, Any]:
        """The run's task options by name (None: the task's default)."""
        return {o.name: getattr(self, o.name) for o in tasks()[self.task].option_specs}

    def solver_options(self) -> dict[str, Any]:
        """The run's inner solver's options by name (None: its default)."""
        return {o.name: getattr(self, o.name) for o in self.parts[1].option_specs}

    def unused(self) -> list[str]:
        """One line for each option set that neither the run's task nor its solver takes."""
        lines = []
        inner = self.parts[1]
        used = set(self.task_options()) | {o.name for o in inner.option_specs}
        for name, setting in SETTINGS.items():
            if setting.kind in ("task", "solver") and name not in used and getattr(self, name) is not None:
                who = "task" if setting.kind == "task" else "solver"
                mine = self.task if setting.kind == "task" else inner.title
                lines.append(f"{setting.flag} is only used by {who} {', '.join(setting.owners)}; ignored for {mine}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refuse(name: str, value: Any, where: str | None) -> UsageError:
    setting = SETTINGS[name]
    return rules.refuse(setting.flag, name, setting.spec.expect, value, where)


#: the settings of one restoration: a dataclass with one field per setting (SETTINGS), in order
Settings = make_dataclass(
    "Settings", [(s.name, s.annotation, field(default=s.default)) for s in SETTINGS.values()],
    bases=(SettingsMethods,))
Settings.__module__ = __name__
Settings.__doc__ = """Everything that determines a restoration (and so belongs in its metrics and summaries).

Its fields are the settings every run has (restore.settings.rules: task, sigma_y, model, solver,
steps, seed, size, tile, candidates, precision, compile, config), the tasks' options (mask,
kernel, boundary, ...), Nested's outer loop (outer, inner, outer_power, outer_eta, outer_times,
outer_noise, inner_power) and the solvers' options (eta, eta_b, lam, noise_share, step_size, ...):
`SETTINGS` lists them with their help. sigma_y is on the [0, 1] pixel scale. model None means
"CelebA-HQ if its weights are cached locally, else the bundled prior". solver: a plain solver
(`steps` calls) or one nested (nested-<name>, "nested" = nested-ddrm: `outer` previews of
`inner` calls each, or one budget per outer step when `inner` is a list). size: None (the
input's own size, or the model's for a model trained at one size), "native" or S (S x S).
tile: network calls on tiles of this many pixels (0: never; None: only when one call would not
fit the memory). precision and compile: how the network runs. config: the YAML file these
settings came from, if any."""

#: one pydantic validator per setting, from its annotation (the schema of every setting)
_ADAPTERS = {s.name: TypeAdapter(s.annotation) for s in SETTINGS.values()}

#: what --solver accepts, and each inner solver's title ("ddrm" -> "DDRM")
SOLVER_NAMES = solver_names()
SOLVER_TITLES = {name: spec.title for name, spec in solvers().items()}
#: the solvers that need only H and H^T (no SVD): the ones --boundary exact can use
MATRIX_FREE = tuple(name for name, spec in solvers().items() if not spec.needs_svd)


def solver_parts(name: str) -> tuple[bool, str]:
    """(nested?, inner solver name) of a solver name: "ddnm" -> (False, "ddnm"), "nested-ddnm" ->
    (True, "ddnm"), "nested" -> (True, "ddrm"); UsageError for an unknown one."""
    try:
        nested, spec = split(name)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return nested, spec.name


def canonical(values: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    """`values` with old names (ALIASES: zeta) turned into the setting they stand for with its
    solver (values["solver"], or the default); UsageError when that solver has none of them.
    A value given under both names keeps the new name's."""
    values = dict(values)
    solver = values.get("solver") or Settings.solver
    try:
        inner = split(solver)[1].name
    except ValueError:
        return values  # the unknown solver is refused by validate
    for alias in [k for k in values if k in ALIASES]:
        value = values.pop(alias)
        if value is None:
            continue
        targets = [setting for owner, setting in ALIASES[alias] if owner == inner]
        if not targets:
            meant = "; ".join(f"{name_of(s, where)} of {solvers()[o].title}" for o, s in ALIASES[alias])
            shown = alias if where is not None else "--" + alias.replace("_", "-")
            raise UsageError(f"{shown} {value!r}: {shown} is an old name ({meant}); {solver} takes none of them")
        values.setdefault(targets[0], value)
    return values


def field_hints() -> dict[str, Any]:
    """Each field's annotation (for tools that read the schema, as typing.get_type_hints would)."""
    return typing.get_type_hints(Settings, include_extras=True)
