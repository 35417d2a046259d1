"""The declared solvers (solvers.options.declare), found once: every module of this package that
declares one, then the plugins (degradations.plugins: the files named in ANYTIME_RESTORE_PLUGINS,
and installed packages' `anytime_restore.solvers` entry points). Each solver
runs plain ("ddrm") or as Nested Diffusion's inner process ("nested-ddrm"; "nested" is
nested-ddrm).

    from solvers.registry import solvers, solver_names, split
    solvers()["ddrm"].build(prior, operator, steps=20, eta=0.85)
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from degradations.plugins import load_plugins
from solvers.options import DECLARED, SolverSpec

#: modules of this package that hold machinery, not solvers (not imported to look for declarations)
_MACHINERY = {"base", "diffusion", "nested", "options", "records", "registry", "regions", "run", "schedule", "step"}
ENTRY_POINTS = "anytime_restore.solvers"


@lru_cache(maxsize=1)
def _discover() -> None:
    import solvers

    for module in pkgutil.iter_modules(solvers.__path__):
        if module.name not in _MACHINERY and not module.name.startswith("_"):
            importlib.import_module(f"solvers.{module.name}")
    load_plugins(ENTRY_POINTS)  # ANYTIME_RESTORE_PLUGINS and installed packages' entry points


def solvers() -> dict[str, SolverSpec]:
    """Every declared solver by name, in declaration order (the package's own first)."""
    _discover()
    return dict(DECLARED)


def solver_names() -> tuple[str, ...]:
    """What --solver accepts: each plain name, "nested", and nested-<each>."""
    plain = tuple(solvers())
    return plain + ("nested",) + tuple(f"nested-{n}" for n in plain)


def split(name: str) -> tuple[bool, SolverSpec]:
    """(nested?, the inner solver's spec) of a solver name ("nested" = nested-ddrm); ValueError
    naming the valid names for an unknown one."""
    known = solvers()
    base = "ddrm" if name == "nested" else name[len("nested-"):] if name.startswith("nested-") else name
    if base not in known:
        raise ValueError(f"unknown solver {name!r}; valid: {', '.join(solver_names())}")
    return name != base, known[base]
