"""The one composition of a run's settings, used by the command line, `restore_image`, evaluate.py
and the page: Settings' defaults < the measured config of the task and model (or a config file
given) < what the person set.

When no config file is named, the measured config (restore.settings.configs) fills every method
setting (METHOD_KEYS) the person did not set; the problem itself (task, model, sigma_y, mask,
size, seed, candidates) is never taken from it, and a config for another solver than the one
asked for is not applied, except its options that only other solvers declare (a config of nested
DDRM may hold DiffPIR's measured lam: it reaches DiffPIR and nested DiffPIR runs alone). A person who sets any part of the outer loop gets none of the config's
outer keys. Then an inpainting task's Nested DDRM gets TASK_DEFAULTS when nothing sets its outer
loop. `config="none"` turns both off; the settings record the file applied (`config`).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from restore import paths
from restore.errors import UsageError
from restore.settings.configs import (
    METHOD_KEYS,
    OUTER_KEYS,
    TASK_DEFAULTS,
    load_config,
    measured_config,
)
from restore.settings.model_spec import resolve_model
from restore.settings.schema import ALIASES, SETTINGS, Settings, canonical, name_of, solver_parts


def compose(explicit: dict[str, Any], *, base: Settings | None = None, config: str | Path | None = None,
            where: str | None = None) -> Settings:
    """The validated settings of a run. explicit: what the person set (None values are unset; old
    names such as zeta are accepted: restore.settings.schema.ALIASES); base: settings to start
    from instead of the defaults (then no measured config is applied); config: a settings file (a
    name in configs/ or a path), or "none" for no measured config; where: "keyword" when the
    values are an API's keywords (messages then name keywords, not flags)."""
    explicit = {k: v for k, v in explicit.items() if v is not None}
    unknown = sorted(map(str, set(explicit) - {f.name for f in fields(Settings)} - set(ALIASES)))
    if unknown:
        raise UsageError(f"unknown setting(s) {', '.join(unknown)}")
    for key in ("task", "solver", "model"):  # the composition looks these up before Settings checks the rest
        if key in explicit:
            explicit[key] = Settings.check(key, explicit[key], where)
    values = base.as_dict() if base is not None else {}
    person = dict(explicit)  # what the person set: the keywords or flags, and a config file they named
    if config is not None and str(config).lower() != "none":
        person = {**load_config(config), **explicit}
        values.update(load_config(config), config=str(config))
    elif base is None and config is None:
        values.update(apply_measured(explicit))
    values = canonical({**values, **explicit}, where)
    _check_split(person, values, where)
    for key, setting in SETTINGS.items():
        if setting.spec.file and values.get(key) is not None:
            values[key] = str(values[key])
    return Settings(**values).validate(where)


def _check_split(person: dict[str, Any], values: dict[str, Any], where: str | None) -> None:
    """A list of inner budgets sets the number of outer steps (one budget each): an outer count
    the person also set must agree with it (Nested's split: solvers.nested)."""
    if person.get("outer") is None or values.get("inner") is None:
        return
    inner = Settings.check("inner", values["inner"], where)
    outer = Settings.check("outer", values["outer"], where)
    if isinstance(inner, list) and len(inner) > 1 and outer != len(inner):
        budgets = ",".join(map(str, inner))
        raise UsageError(f"{name_of('outer', where)} {outer} and {name_of('inner', where)} {budgets} disagree: a list "
                         f"of inner budgets is one per outer step ({len(inner)} steps); give {name_of('outer', where)} "
                         f"{len(inner)} or leave it out")


def task_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """`values` completed by its task's outer-loop defaults (TASK_DEFAULTS) when it is nested
    DDRM and nothing in it sets the outer loop already."""
    defaults = TASK_DEFAULTS.get(values.get("task") or Settings.task)
    solver = values.get("solver") or Settings.solver
    if not defaults or solver not in ("nested", "nested-ddrm") or any(values.get(k) is not None for k in OUTER_KEYS):
        return values
    return {**values, **defaults}


def apply_measured(explicit: dict[str, Any]) -> dict[str, Any]:
    """`explicit` (the keys a person set) completed by the measured config of its (task, model),
    if there is one, then by the task's outer-loop defaults (see the module docstring)."""
    task = explicit.get("task") or Settings.task
    path = measured_config(task, resolve_model(explicit.get("model"), quiet=True))
    if path is None:
        return task_defaults(explicit)
    measured = load_config(path)
    own = solver_parts(measured.get("solver", Settings.solver))[1]
    # options declared only by other solvers than the config's own (DiffPIR's lam in a config of
    # nested DDRM) are applied to a run of a solver that declares them, whatever the config's solver
    asked = solver_parts(explicit.get("solver", measured.get("solver", Settings.solver)))[1]
    others = {k for k in measured if k in SETTINGS and SETTINGS[k].kind == "solver" and own not in SETTINGS[k].defaults}
    mine = {k: measured[k] for k in others if asked in SETTINGS[k].defaults and explicit.get(k) is None}
    measured = {k: v for k, v in measured.items() if k not in others}
    if explicit.get("solver", measured.get("solver", Settings.solver)) != measured.get("solver", Settings.solver):
        return task_defaults({**explicit, **mine, **({"config": paths.shown(path)} if mine else {})})
    explicit = {**explicit, **mine}
    # a person who sets any part of the outer loop gets none of the config's (its outer times would
    # override their --outer-power, its outer noise clash with their --outer-eta)
    theirs = OUTER_KEYS if any(explicit.get(k) is not None for k in OUTER_KEYS) else ()
    filled = {k: measured[k] for k in METHOD_KEYS if k in measured and explicit.get(k) is None and k not in theirs}
    return task_defaults({**explicit, **filled, "config": paths.shown(path)})
