"""The declared tasks (degradations.tasks.declare_task): the DDRM task names plus a few of this
project's, each declared beside its operator, found once by importing this package's modules,
then the plugins (degradations.plugins: ANYTIME_RESTORE_PLUGINS, `anytime_restore.tasks` entry points).

`make_operator(task, image_size, channels=3, **options)` builds a task's operator for images
(B, channels, H, W) on [-1, 1]; sigma_y is given later, to `observe`, on the [0, 1] pixel scale.
Every operator has `scale_factor` (the down-sampling factor of sr tasks, 1 for the others).
`TASKS` maps each name to its one-line summary (the order of the menus and docs).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import Any, Sequence

from degradations.plugins import load_plugins
from degradations.tasks import DECLARED, TaskSpec

#: the order tasks are listed in (menus, --help, the docs); a task declared elsewhere comes after these
_ORDER = ("deno", "sr2", "sr4", "sr8", "sr16", "sr_bicubic4", "sr_bicubic8", "color", "inp_box", "inp_random",
          "inp_text", "inp_mask", "deblur_uniform", "deblur_gauss", "deblur_motion", "deblur_disk", "deblur")
#: modules of this package that declare no task (not imported to look for declarations)
_MACHINERY = {"registry", "tasks", "options", "measurement", "cg", "noise", "linear", "base", "_util", "plugins"}


@lru_cache(maxsize=1)
def _discover() -> None:
    import degradations

    for module in pkgutil.iter_modules(degradations.__path__):
        if module.name not in _MACHINERY:
            importlib.import_module(f"degradations.{module.name}")
    load_plugins("anytime_restore.tasks")  # ANYTIME_RESTORE_PLUGINS and installed packages' entry points


def tasks() -> dict[str, TaskSpec]:
    """Every declared task by name: the package's own in their usual order, then any other."""
    _discover()
    order = {name: i for i, name in enumerate(_ORDER)}
    return dict(sorted(DECLARED.items(), key=lambda kv: order.get(kv[0], len(order))))


def task(name: str) -> TaskSpec:
    """The declaration of task `name` (ValueError listing the valid names)."""
    known = tasks()
    if name not in known:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(known)}")
    return known[name]


#: every task's name and summary, in menu order (derived from the declarations)
TASKS: dict[str, str] = {name: spec.summary for name, spec in tasks().items()}
#: the blurs built by the 2-D Fourier transform, whose edges are periodic or exact (their `boundary` option)
FOURIER_TASKS = tuple(name for name, spec in tasks().items() if "boundary" in spec.defaults())


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        h = w = image_size
    else:
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (H, W), got {image_size!r}")
        h, w = (int(s) for s in image_size)
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive, got {(h, w)}")
    return h, w


def scale_factors(name: str) -> tuple[int, int]:
    """How many times fewer rows and columns the task's measurement image has than the image."""
    return task(name).scale


def scale_factor(name: str) -> int:
    """The down-sampling factor of a super-resolution task (4 for sr4, sr_bicubic4), else 1 (a
    task that shrinks rows and columns by different factors: 1; see scale_factors)."""
    rows, columns = task(name).scale
    return rows if rows == columns else 1


def margin(name: str, options: dict[str, Any] | None = None) -> int:
    """Pixels of scene beyond each edge of the photo the task's operator needs with these options
    (the exact boundary of a blur: degradations.fourier.margin_for), 0 for most tasks."""
    spec = task(name)
    return spec.margin(spec.values(options or {})) if spec.margin is not None else 0


def make_operator(name: str, image_size: int | Sequence[int], channels: int = 3, **options: Any):
    """The operator of task `name` (a key of TASKS) for images (B, channels, H, W) on [-1, 1].

    image_size: an int (square) or (H, W). options: the task's declared options (None: the
    default). Raises ValueError for an unknown task, an unknown option, or a size the task
    cannot take (not divisible by an sr factor)."""
    spec = task(name)
    values = spec.values(options)
    h, w = _size(image_size)
    channels = int(channels)
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    return spec.build(h, w, channels, **values)
