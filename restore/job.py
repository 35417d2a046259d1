"""A restoration's inputs made ready: settings resolved, prior loaded, image read, operator built,
measurement taken, seeds derived. Nothing here samples, scores or writes files.

Two modes:
- simulation (default): `image` is a clean reference. It is centre-cropped and resized to the
  restoration size (`size`, default the model's), degraded with the task's operator plus
  `sigma_y` noise ([0, 1] pixel scale), and every output is scored against it.
- observed: `image` is the measurement itself: a low-resolution image for srN / sr_bicubicN, a
  grey image for color (a colour file is reduced to the mean of R, G, B, the operator's grey), a
  noisy / blurred / holed full-size image for deno / deblur_* / inp_* (inp_mask with `mask`). The
  image must be square. The restoration size is `size` or the model's when the image fits it
  (e.g. 64x64 for sr4 with a 256 model); without `size`, an image that does not fit is restored at
  its side times the task's factor (said in one line), which must be a multiple of 16. Metrics
  need a `reference` (a path or a tensor, centre-cropped and resized to the restoration size).

Randomness: `seed` is expanded (numpy SeedSequence) into an observation seed and a sampler seed;
candidate k of a restoration draws from its own generator, seeded by `candidate_seed(sampler
seed, k)`, where candidate 0 uses the sampler seed itself: a single-candidate run and candidate
1 of a K-candidate run are the same restoration.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from degradations import scale_factor
from restore.imageio import center_crop_resize, load_image
from restore.settings import Settings, UsageError, build_operator, load_config, resolve_device, resolve_model

ImageLike = Union[str, Path, torch.Tensor]


@dataclass
class Job:
    """Everything a restoration works on. Tensors live on `device`; `observation` on the CPU.

    y: the measurement (1, m); reference: the clean image (1, 3, side, side) or None;
    identity: what determines the numbers (settings, model, inputs' SHA-256), to check a resume."""

    settings: Settings
    prior: Any
    operator: Any
    y: torch.Tensor
    reference: torch.Tensor | None
    observation: torch.Tensor
    device: torch.device
    side: int
    mode: str
    input: str
    reference_name: str | None
    sampler_seed: int
    identity: dict[str, Any]
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- seeds
def derive_seeds(seed: int) -> tuple[int, int]:
    """(observation seed, sampler seed): two independent 64-bit seeds expanded from `seed`."""
    state = np.random.SeedSequence([int(seed) % 2**64, 0x5EED]).generate_state(2, dtype=np.uint64)
    return int(state[0]), int(state[1])


def candidate_seed(sampler_seed: int, k: int) -> int:
    """Seed of candidate k (0-based): the sampler seed for k = 0, an independent one otherwise."""
    if k == 0:
        return int(sampler_seed)
    return int(np.random.SeedSequence([int(sampler_seed), int(k)]).generate_state(1, dtype=np.uint64)[0])


# --------------------------------------------------------------------------- inputs
def as_image(image: ImageLike, what: str) -> torch.Tensor:
    """A path or a tensor -> (1, 3, H, W) float32 cpu on [-1, 1] (grey repeated to 3 channels)."""
    if isinstance(image, (str, Path)):
        return load_image(image, mode="RGB")
    if not torch.is_tensor(image):
        raise UsageError(f"{what} must be an image path or a tensor, got {type(image).__name__}")
    x = image.detach()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise UsageError(f"{what} tensor must be (1, C, H, W) or (C, H, W) with C 1 or 3, got {tuple(image.shape)}")
    x = x.float().cpu()
    return x.expand(1, 3, *x.shape[-2:]).contiguous() if x.shape[1] == 1 else x


def describe(image: ImageLike) -> str:
    return str(image) if isinstance(image, (str, Path)) else "tensor"


def fingerprint(image: ImageLike | None) -> str | None:
    """SHA-256 of an image file's bytes or of a tensor's values (None for None)."""
    if image is None:
        return None
    h = hashlib.sha256()
    if isinstance(image, (str, Path)):
        h.update(Path(image).read_bytes())
    else:
        h.update(image.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def make_settings(settings: Settings | None, config: str | Path | None, overrides: dict[str, Any]) -> Settings:
    """Settings() < `settings` < a config file < the keyword arguments that are not None."""
    values = (settings or Settings()).as_dict()
    if config is not None:
        values.update(load_config(config))
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("mask") is not None:
        values["mask"] = str(values["mask"])
    return Settings(**values).validate()


def observed_size(task: str, h: int, w: int, size: int | None, model_size: int, note) -> int:
    """The restoration size for an observed (measurement) image of h x w."""
    factor = scale_factor(task)
    kind = "low-resolution image" if factor > 1 else "image"
    if h != w:
        raise UsageError(f"the observed {kind} is {w}x{h}; --observed needs a square image, crop it to a square first")
    target = size or model_size
    if h * factor == target:
        return target
    if size is not None:
        raise UsageError(f"the observed {kind} is {w}x{h}, but {task} at --size {size} needs {size // factor}x"
                         f"{size // factor}; drop --size to restore at {h * factor}x{h * factor}")
    side = h * factor
    if side % 16 or side < 16:
        multiple = 16 // math.gcd(16, factor)
        raise UsageError(f"the observed {kind} is {w}x{h}: restoring it at {side}x{side} is not possible, the "
                         f"side must be a multiple of 16; crop it to a side that is a multiple of {multiple}")
    note(f"the observed {kind} is {w}x{h}: restoring at {side}x{side}"
         f"{f' (x{factor})' if factor > 1 else ''}, not the model's {model_size}x{model_size}")
    return side


@contextlib.contextmanager
def quiet_loading():
    """Silence diffusers' / huggingface_hub's log lines while a model loads (the user's one-line
    errors come from PriorNotFound)."""
    import logging

    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub.utils import logging as hub_logging

    diffusers_logging.get_logger()  # configure the libraries' root loggers now, not while loading
    hub_logging.get_logger()
    loggers = [logging.getLogger(n) for n in ("diffusers", "huggingface_hub")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def load_model(model: Any, settings: Settings, device: str | torch.device, note) -> tuple[Any, str, torch.device]:
    """(prior, model spec, device). `model`: a loaded prior (anything with `alphas_cumprod`; its
    own device is used) or None (then settings.model, resolved and loaded on `device`)."""
    from restore.prior import load_prior

    if model is not None:
        if not hasattr(model, "alphas_cumprod"):
            raise UsageError(f"model must be a name, path or a loaded prior, got {type(model).__name__}")
        dev = torch.device(model.device) if getattr(model, "device", None) is not None else resolve_device(device)
        return model, str(getattr(model, "name", type(model).__name__)), dev
    dev = resolve_device(device)
    spec = resolve_model(settings.model, note=note)
    with quiet_loading():
        prior = load_prior(spec, device=dev)
    return prior, spec, dev


# --------------------------------------------------------------------------- the job
def prepare_job(image: ImageLike, settings: Settings, *, observed: bool = False, reference: ImageLike | None = None,
                model: Any = None, device: str | torch.device = "auto") -> Job:
    """Read the inputs, load the model, build the operator and take the measurement.

    model: a loaded prior to reuse, or None (settings.model). The one-line notices (sizes
    changed, model chosen) are collected in `Job.notes`, for the caller to show once the job
    stands: a job that fails says only why."""
    notes: list[str] = []
    tell = notes.append

    if reference is not None and not observed:
        raise UsageError("--reference is only for --observed mode (in simulation mode the input is the reference)")
    if settings.mask and settings.task != "inp_mask":
        tell(f"--mask is only used by task inp_mask; ignored for {settings.task}")
    if settings.solver in ("nested", "nested-ddrm") and settings.sigma_y > 0 and min(settings.budgets) < 4:
        tell(f"--inner {settings.inner} with a noisy measurement: DDRM takes y in only above its noise "
             "level, which short inner runs skip; use --inner 4 or more (README, 'Choosing the split')")
    img = as_image(image, "input")
    ref_img = as_image(reference, "reference") if reference is not None else None

    prior, spec, dev = load_model(model, settings, device, tell)
    settings.model = spec
    model_size = getattr(prior, "image_size", None) or settings.size
    if model_size is None:
        raise UsageError("the model does not say its image size; pass size=")
    obs_seed, sampler_seed = derive_seeds(settings.seed)
    h, w = img.shape[-2:]
    if observed:
        side = observed_size(settings.task, h, w, settings.size, int(model_size), tell)
        operator = build_operator(settings, side).to(dev, torch.float32)
        y = operator.from_image((img.mean(dim=1, keepdim=True) if settings.task == "color" else img).to(dev))
        ref = None
        if ref_img is not None:
            ref, changed = center_crop_resize(ref_img, side)
            if changed:
                rh, rw = ref_img.shape[-2:]
                tell(f"the reference is {rw}x{rh}: centre-cropped and resized to {side}x{side}")
            ref = ref.to(dev)
    else:
        side = settings.size or int(model_size)
        x, changed = center_crop_resize(img, side)
        if changed:
            whose = "--size" if settings.size else "the model's"
            tell(f"the input is {w}x{h}: centre-cropped and resized to {side}x{side} ({whose} resolution)")
        operator = build_operator(settings, side).to(dev, torch.float32)
        ref = x.to(dev)
        y = operator.observe(ref, settings.sigma_y, torch.Generator(device="cpu").manual_seed(obs_seed))

    mode = "observed" if observed else "simulation"
    identity = {"mode": mode, "input_sha256": fingerprint(image), "reference_sha256": fingerprint(reference),
                "mask_sha256": fingerprint(settings.mask) if settings.task == "inp_mask" else None,
                "settings": settings.as_dict()}
    return Job(settings=settings, prior=prior, operator=operator, y=y, reference=ref,
               observation=operator.to_image(y).clamp(-1.0, 1.0).cpu(), device=dev, side=side, mode=mode,
               input=describe(image), reference_name=describe(reference) if reference is not None else None,
               sampler_seed=sampler_seed, identity=identity, notes=notes)
