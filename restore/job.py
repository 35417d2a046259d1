"""A restoration's inputs made ready: settings resolved, prior loaded, image read, operator built,
measurement taken, seeds derived. Nothing here samples, scores or writes files.

Two modes:
- simulation (default): `image` is a clean reference, degraded with the task's operator plus
  `sigma_y` noise ([0, 1] pixel scale); every output is scored against it.
- observed: `image` is the measurement itself: a low-resolution image for srN / sr_bicubicN, a
  grey image for color (a colour file is reduced to the mean of R, G, B, the operator's grey), a
  noisy / blurred / holed full-size image for deno / deblur_* / inp_* (inp_mask with `mask`).
  Metrics need a `reference` (a path or a tensor, centre-cropped to the restoration's aspect
  ratio and resized to its size when it differs).
The size restored at (restore.sizing) and the network's padding and tiling (restore.network) are
decided before anything of that size is allocated, so an image too large for the memory is
refused in one line.

Randomness: `seed` is expanded (numpy SeedSequence) into an observation seed and a sampler seed;
candidate k of a restoration draws from its own generator, seeded by `candidate_seed(sampler
seed, k)`, where candidate 0 uses the sampler seed itself: a single-candidate run and candidate
1 of a K-candidate run are the same restoration.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from restore.configs import describe as describe_config
from restore.imageio import crop_resize, load_image
from restore.network import plan_network
from restore.sizing import Frame, observed_frame, pad_to, simulation_frame
from restore.settings import Settings, UsageError, build_operator, load_config, resolve_device, resolve_model

ImageLike = Union[str, Path, torch.Tensor]


@dataclass
class Job:
    """Everything a restoration works on. Tensors live on `device`; `observation` on the CPU.

    y: the measurement (1, m); reference: the clean image (1, 3, h, w) at the frame's shown size,
    or None; network: the prior as the solver calls it (padded, tiled: restore.network);
    identity: what determines the numbers (settings, model, inputs' SHA-256), to check a resume."""

    settings: Settings
    prior: Any
    network: Any
    operator: Any
    y: torch.Tensor
    reference: torch.Tensor | None
    observation: torch.Tensor
    device: torch.device
    frame: Frame
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
def as_image(image: ImageLike, what: str, notes: list[str] | None = None) -> torch.Tensor:
    """A path or a tensor -> (1, 3, H, W) float32 cpu on [-1, 1] (grey repeated to 3 channels);
    what a file needed (EXIF orientation, colour profile, transparency) is said in `notes`."""
    if isinstance(image, (str, Path)):
        return load_image(image, mode="RGB", notes=notes)
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
    """Settings() < `settings` < a config file < the keyword arguments that are not None. With
    neither `settings` nor `config`, the measured config of the task and model fills the method
    settings not given (restore.configs; config="none" turns that off)."""
    from restore.configs import apply_measured

    explicit = {k: v for k, v in overrides.items() if v is not None}
    values = (settings or Settings()).as_dict()
    if config is not None and str(config).lower() != "none":
        values.update(load_config(config), config=str(config))
    elif settings is None and config is None:
        values.update(apply_measured(explicit))
    values.update(explicit)
    if values.get("mask") is not None:
        values["mask"] = str(values["mask"])
    return Settings(**values).validate()


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


def configure(prior: Any, settings: Settings, note) -> Any:
    """The prior running at settings.precision, compiled with settings.compile (restore.precision);
    as is at the defaults. Its warnings (bf16 on a CPU without bf16 units) become notes."""
    if settings.precision == "fp32" and not settings.compile:
        return prior
    from restore.precision import configure_network

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            net = configure_network(prior, settings.precision, settings.compile)
        except ValueError as error:
            raise UsageError(str(error).splitlines()[0]) from None
    for w in caught:
        note(" ".join(str(w.message).split()))
    return net


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
    applied = describe_config(settings)
    if applied:
        tell(applied)
    if settings.solver in ("nested", "nested-ddrm") and settings.sigma_y > 0 and min(settings.budgets) < 4:
        tell(f"--inner {settings.inner} with a noisy measurement: DDRM takes y in only above its noise "
             "level, which short inner runs skip; use --inner 4 or more (README, 'Choosing the split')")
    img = as_image(image, "input", notes)
    ref_img = as_image(reference, "reference", notes) if reference is not None else None

    prior, spec, dev = load_model(model, settings, device, tell)
    settings.model = spec
    prior = configure(prior, settings, tell)
    obs_seed, sampler_seed = derive_seeds(settings.seed)
    h, w = img.shape[-2:]
    frame = (observed_frame if observed else simulation_frame)(settings, h, w, prior, tell)
    network = plan_network(prior, dev, settings.candidates, frame.height, frame.width, settings.tile, note=tell)
    operator = build_operator(settings, (frame.height, frame.width)).to(dev, torch.float32)
    if observed:
        y = operator.from_image((img.mean(dim=1, keepdim=True) if settings.task == "color" else img).to(dev))
        ref = None
        if ref_img is not None:
            ref = crop_resize(ref_img, *frame.shown)
            if ref.shape != ref_img.shape:
                rh, rw = ref_img.shape[-2:]
                tell(f"the reference is {rw}x{rh}: centre-cropped and resized to {frame.shown[1]}x{frame.shown[0]}")
            ref = ref.to(dev)
    else:
        ref = crop_resize(img, *frame.shown).to(dev)
        y = operator.observe(pad_to(ref, frame), settings.sigma_y, torch.Generator(device="cpu").manual_seed(obs_seed))

    mode = "observed" if observed else "simulation"
    identity = {"mode": mode, "input_sha256": fingerprint(image), "reference_sha256": fingerprint(reference),
                "mask_sha256": fingerprint(settings.mask) if settings.task == "inp_mask" else None,
                "settings": settings.as_dict()}
    return Job(settings=settings, prior=prior, network=network, operator=operator, y=y, reference=ref,
               observation=operator.to_image(y).clamp(-1.0, 1.0).cpu(), device=dev, frame=frame, mode=mode,
               input=describe(image), reference_name=describe(reference) if reference is not None else None,
               sampler_seed=sampler_seed, identity=identity, notes=notes)
