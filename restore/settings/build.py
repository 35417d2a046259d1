"""What settings build: the device, the degradation operator and the solver (a plain one, or
Nested around it), with the libraries' ValueErrors turned into one-line UsageErrors."""

from __future__ import annotations

import torch

from degradations.registry import make_operator, margin
from restore.errors import UsageError, one_line
from restore.settings.schema import Settings
from solvers import Nested


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {name}: restorations run on cpu, cuda or mps, not {device.type}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but CUDA is not available; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps asked for, but MPS is not available; use --device cpu")
    return device


def boundary_margin(settings: Settings) -> int:
    """Pixels of scene restored beyond each edge of the photo: the task's margin with the run's
    options (the exact boundary of a blur: its kernel's side rounded up to a multiple of 8, the
    measured margin of docs/studies/any-blur.md); 0 for the others."""
    try:
        return margin(settings.task, settings.task_options())
    except (ValueError, OSError) as error:
        raise UsageError(one_line(error)) from None


def build_operator(settings: Settings, size: int | tuple[int, int], channels: int = 3):
    """The task's operator on images of `size` (with an exact boundary the photo it measures is
    2 boundary_margin smaller a side: degradations.fourier.blur)."""
    try:
        return make_operator(settings.task, size, channels=channels, **settings.task_options())
    except ValueError as error:
        message = str(error).splitlines()[0]
        if settings.task == "inp_mask" and "does not match" in message:
            h, w = (size, size) if isinstance(size, int) else size
            message += f"; give --mask an image of {w}x{h} pixels (black = missing, white = kept)"
        raise UsageError(message) from None
    except OSError as error:  # an unreadable mask file (PIL's UnidentifiedImageError is an OSError)
        raise UsageError(f"cannot read mask {settings.mask}: {one_line(error)}; "
                         "give an image file (black = missing, white = kept)") from None


def build_solver(settings: Settings, prior, operator):
    """The solver the settings name, with its declared options: a plain one, or Nested around it."""
    nested, inner = settings.parts
    try:
        solver = inner.build(prior, operator, settings.steps, **settings.solver_options())
        if not nested:
            return solver
        return Nested(solver, inner_steps=settings.budgets, outer_eta=settings.outer_eta,
                      outer_power=settings.outer_power, outer_times=settings.outer_times,
                      outer_noise=settings.outer_noise, inner_power=settings.inner_power,
                      outer_floor=settings.outer_floor, sigma_y=settings.sigma_y)
    except ValueError as error:
        raise UsageError(str(error).splitlines()[0]) from None
