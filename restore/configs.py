"""The measured settings of a (task, model) pair, applied by default.

configs/<task>_<model>.yaml holds the best settings measured for that pair (configs/README.md).
When no --config is given, its method settings (the solver and its hyperparameters) fill every
key the person did not set; the problem itself (task, model, sigma_y, mask, size, seed,
candidates) is never taken from it. A config for another solver than the one asked for is not
applied. `--config none` turns this off; the settings record which file was applied (`config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METHOD_KEYS = ("solver", "outer", "inner", "steps", "eta", "eta_b", "zeta", "lam", "outer_power", "outer_eta",
               "outer_times", "outer_noise", "inner_power")


#: What an inpainting task's Nested DDRM gets when neither the person nor a measured config sets
#: the outer loop: each inner result re-noised with fresh noise, on the cosine outer grid (short
#: first outer steps), and the calls of every inner run but the last gathered at its top
#: (inner_power 0.5), where the hole's level is decided. On 64 study tiles (bundled prior,
#: inp_box, 20 calls) the first two took Nested's final from -2.80 to -0.61 dB against DDRM 20 and
#: inner_power 0.5 to -0.09; on 316 tiles of photos never used to choose anything, -0.52 +- 0.10
#: without inner_power and -0.27 +- 0.08 with it (README, "Where Nested falls behind").
INPAINTING = {"outer_times": "cosine", "outer_noise": 1.0, "inner_power": 0.5}
TASK_DEFAULTS = {"inp_box": INPAINTING, "inp_mask": INPAINTING}
OUTER_KEYS = ("outer_power", "outer_eta", "outer_times", "outer_noise", "inner_power")


def task_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """`values` completed by its task's outer-loop defaults (TASK_DEFAULTS) when it is nested
    DDRM and nothing in it sets the outer loop already."""
    from restore.settings import Settings

    defaults = TASK_DEFAULTS.get(values.get("task") or Settings.task)
    solver = values.get("solver") or Settings.solver
    if not defaults or solver not in ("nested", "nested-ddrm") or any(values.get(k) is not None for k in OUTER_KEYS):
        return values
    return {**values, **defaults}


def measured_config(task: str, model: str) -> Path | None:
    """configs/<task>_<model name>.yaml when it exists."""
    from restore.settings import CONFIG_DIR

    path = CONFIG_DIR / f"{task}_{Path(str(model)).name}.yaml"
    return path if path.is_file() else None


def apply_measured(explicit: dict[str, Any]) -> dict[str, Any]:
    """`explicit` (the keys a person set) completed by the measured config of its (task, model),
    if there is one (see the module docstring)."""
    from restore.settings import Settings, load_config, resolve_model

    task = explicit.get("task") or Settings.task
    path = measured_config(task, resolve_model(explicit.get("model"), quiet=True))
    if path is None:
        return task_defaults(explicit)
    measured = load_config(path)
    if explicit.get("solver", measured.get("solver", Settings.solver)) != measured.get("solver", Settings.solver):
        return task_defaults(explicit)
    # a person who sets any part of the outer loop gets none of the config's (its outer times would
    # override their --outer-power, its outer noise clash with their --outer-eta)
    theirs = OUTER_KEYS if any(explicit.get(k) is not None for k in OUTER_KEYS) else ()
    filled = {k: measured[k] for k in METHOD_KEYS if k in measured and explicit.get(k) is None and k not in theirs}
    return task_defaults({**explicit, **filled, "config": _shown(path)})


def describe(settings) -> str | None:
    """The one-line note of an applied config: which file, and what it changed from the defaults."""
    from restore.settings import Settings, load_config

    if not settings.config:
        defaults = TASK_DEFAULTS.get(settings.task)
        if defaults and settings.nested and all(getattr(settings, k) == v for k, v in defaults.items()):
            flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in defaults.items())
            return ("inpainting: each outer step re-noises the inner result with fresh noise, on the cosine outer "
                    f"grid, inner runs gathered at their top ({flags}; README, 'Where Nested falls behind')")
        return None
    measured = load_config(settings.config)
    changed = [f"{k} {measured[k]}" for k in METHOD_KEYS
               if k in measured and getattr(settings, k) == measured[k] != getattr(Settings, k)]
    what = f": {', '.join(changed)}" if changed else ""
    return f"settings from {settings.config}{what} (flags override them; --config none ignores the file)"


def _shown(path: Path) -> str:
    from restore.prior import REPO_ROOT

    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
