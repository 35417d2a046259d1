"""Declarations from outside the package: the files or modules named in the environment variable
ANYTIME_RESTORE_PLUGINS (separated by os.pathsep, ":" on Linux), imported once before the
registries list their tasks and solvers, so that a task or solver written in a file of one's own
works on the command line, in evaluate, on the page and in resume without editing the package:

    ANYTIME_RESTORE_PLUGINS=my_solver.py anytime-restore --solver nested-mine --input face.png

An installed package does the same through entry points (`anytime_restore.solvers`,
`anytime_restore.tasks`). A plugin that cannot be imported is a one-line error naming it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

VARIABLE = "ANYTIME_RESTORE_PLUGINS"


class PluginError(ValueError):
    """A plugin named in ANYTIME_RESTORE_PLUGINS or an entry point could not be imported."""


@lru_cache(maxsize=None)
def load_plugins(group: str) -> None:
    """Import the plugins of the environment variable (once, whatever the group) and the entry
    points of `group` ("anytime_restore.solvers" or "anytime_restore.tasks")."""
    _from_environment(os.environ.get(VARIABLE, ""))
    for point in entry_points(group=group):
        try:
            point.load()
        except Exception as error:  # noqa: BLE001 - any failure of a third party's import
            raise PluginError(f"the {group} entry point {point.name!r} failed to import: {error}") from None


@lru_cache(maxsize=None)
def _from_environment(value: str) -> None:
    for item in filter(None, value.split(os.pathsep)):
        path = Path(item).expanduser()
        try:
            if path.suffix == ".py" or path.exists():
                if not path.is_file():
                    raise PluginError(f"{VARIABLE}: {item} is not a Python file")
                name = f"anytime_restore_plugin_{path.stem}"
                if name not in sys.modules:
                    spec = importlib.util.spec_from_file_location(name, path)
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[name] = module
                    spec.loader.exec_module(module)
            else:
                importlib.import_module(item)
        except PluginError:
            raise
        except Exception as error:  # noqa: BLE001 - a plugin's own error, said in one line
            raise PluginError(f"{VARIABLE}: {item} failed to import: {type(error).__name__}: {error}") from None
