"""What a restoration is: its typed settings (schema), the measured configs (configs), the one
composition of defaults, config and the person's values (compose), and what they build (build)."""

from restore.settings.compose import compose
from restore.settings.schema import SOLVER_NAMES, SOLVER_TITLES, Settings, solver_parts

__all__ = ["SOLVER_NAMES", "SOLVER_TITLES", "Settings", "compose", "solver_parts"]
