"""The measured settings of (task, model) pairs, and reading a settings file.

configs/<task>_<model>.yaml holds the best settings measured for that pair (configs/README.md);
restore.settings.compose applies its method settings (METHOD_KEYS) where the person set none.
TASK_DEFAULTS: the outer loop an inpainting task's Nested DDRM gets when neither the person nor a
measured config sets one. `describe` is the one-line note saying which of these a run applied.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from restore import paths
from restore.errors import UsageError, one_line
from restore.names import check_path
from restore.settings.schema import ALIASES, SETTINGS, Settings

#: the settings a measured config fills where the person set none: the solver, Nested's outer
#: loop, the plain solvers' steps and every solver's options (derived from the declarations)
METHOD_KEYS = ("solver", "outer", "inner", "steps", *(k for k, s in SETTINGS.items() if s.kind == "solver"),
               *(k for k, s in SETTINGS.items() if s.kind == "nested" and k not in ("outer", "inner")))


#: What an inpainting task's Nested DDRM gets when neither the person nor a measured config sets
#: the outer loop: each inner result re-noised with fresh noise, on the cosine outer grid (short
#: first outer steps), and the calls of every inner run but the last gathered at its top
#: (inner_power 0.5), where the hole's level is decided. On 64 study tiles (bundled prior,
#: inp_box, 20 calls) the first two took Nested's final from -2.80 to -0.61 dB against DDRM 20 and
#: inner_power 0.5 to -0.09; on 316 tiles of photos never used to choose anything, -0.52 +- 0.10
#: without inner_power and -0.27 +- 0.08 with it (docs/studies/nested-inpainting.md).
INPAINTING = {"outer_times": "cosine", "outer_noise": 1.0, "inner_power": 0.5}
TASK_DEFAULTS = {"inp_box": INPAINTING, "inp_mask": INPAINTING}
#: Nested's outer-loop settings other than the split (outer, inner)
OUTER_KEYS = tuple(k for k, s in SETTINGS.items() if s.kind == "nested" and k not in ("outer", "inner"))


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings of a YAML file: a bare name lives in configs/; "configs/x.yaml", as a run
    records it, is the shipped one (restore.paths); any other path is used as given."""
    check_path(path, "config")
    path = Path(path)
    for base in (paths.CONFIG_DIR, paths.SHIPPED_ROOT):
        if not path.is_file() and (base / path).is_file():
            path = base / path
    if not path.is_file():
        raise UsageError(f"config file {path} not found (configs live in {paths.CONFIG_DIR})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"config {path} is not UTF-8 text; give a YAML file of settings") from None
    except OSError as error:
        raise UsageError(f"cannot read config {path}: {one_line(error)}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"config {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UsageError(f"config {path} must be a mapping of settings (key: value lines), got a {type(data).__name__}")
    known = {f.name for f in fields(Settings)} - {"config"}
    unknown = sorted(map(str, set(data) - known - set(ALIASES)))
    if unknown:
        raise UsageError(f"config {path} has unknown keys {unknown}; allowed: {sorted(known)}")
    # an old name (zeta) is checked once the solver it belongs to is known (restore.settings.compose)
    return {key: value if key in ALIASES else Settings.check(key, value, where=f"config {path}")
            for key, value in data.items()}


def measured_config(task: str, model: str) -> Path | None:
    """configs/<task>_<model name>.yaml when it exists."""
    path = paths.CONFIG_DIR / f"{task}_{Path(str(model)).name}.yaml"
    return path if path.is_file() else None


def describe(settings: Settings) -> str | None:
    """The one-line note of an applied config: which file, and what it changed from the defaults."""
    if not settings.config:
        defaults = TASK_DEFAULTS.get(settings.task)
        if defaults and settings.nested and all(getattr(settings, k) == v for k, v in defaults.items()):
            flags = " ".join(f"{SETTINGS[k].flag} {v}" for k, v in defaults.items())
            return ("inpainting: each outer step re-noises the inner result with fresh noise, on the cosine outer "
                    f"grid, inner runs gathered at their top ({flags}; docs/studies/nested-inpainting.md)")
        return None
    measured = load_config(settings.config)
    inner = settings.parts[1].name
    default = lambda k: SETTINGS[k].defaults.get(inner) if SETTINGS[k].kind == "solver" else getattr(Settings, k)  # noqa: E731
    changed = [f"{k} {measured[k]}" for k in METHOD_KEYS
               if k in measured and getattr(settings, k) == measured[k] != default(k)]
    what = f": {', '.join(changed)}" if changed else ""
    return f"settings from {settings.config}{what} (flags override them; --config none ignores the file)"
