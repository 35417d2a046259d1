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
The size restored at (restore.restoration.sizing) and the network's padding and tiling
(restore.models.network) are decided before anything of that size is allocated, so an image too
large for the memory is refused in one line.

Randomness: restore.restoration.seeds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch

from degradations.registry import tasks
from restore.errors import UsageError
from restore.io.images import crop_resize, load_image
from restore.models.loading import configure, load_model
from restore.models.network import plan_network
from restore.restoration.seeds import derive_seeds
from restore.restoration.sizing import Frame, observed_frame, simulated_scene, simulation_frame
from restore.settings.build import boundary_margin, build_operator
from restore.settings.configs import describe as describe_config
from restore.settings.schema import Settings
from restore.settings.suited import unsuited

ImageLike = Union[str, Path, torch.Tensor]


@dataclass
class Job:
    """Everything a restoration works on. Tensors live on `device`; `observation` on the CPU.

    y: the measurement (1, m); reference: the clean image (1, 3, h, w) at the frame's shown size,
    or None; network: the prior as the solver calls it (padded, tiled: restore.models.network);
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


# --------------------------------------------------------------------------- inputs
def as_image(image: ImageLike, what: str, notes: list[str] | None = None,
             max_pixels: int | None = None) -> torch.Tensor:
    """A path or a tensor -> (1, 3, H, W) float32 cpu on [-1, 1] (grey repeated to 3 channels);
    what a file needed (EXIF orientation, colour profile, transparency) is said in `notes`; a file
    of more than max_pixels pixels is refused from its header (restore.io.images)."""
    if isinstance(image, (str, Path)):
        return load_image(image, mode="RGB", notes=notes, max_pixels=max_pixels)
    if not torch.is_tensor(image):
        raise UsageError(f"{what} must be an image path or a tensor, got {type(image).__name__}")
    x = image.detach()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise UsageError(f"{what} tensor must be (1, C, H, W) or (C, H, W) with C 1 or 3, got {tuple(image.shape)}")
    x = x.float().cpu()
    return x.expand(1, 3, *x.shape[-2:]).contiguous() if x.shape[1] == 1 else x


def file_options(settings: Settings) -> dict[str, str]:
    """The files the run's task reads, by option name (a mask, a kernel), from its declaration."""
    return {o.name: getattr(settings, o.name) for o in tasks()[settings.task].option_specs
            if o.file and getattr(settings, o.name) is not None}


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


# --------------------------------------------------------------------------- the job
def prepare_job(image: ImageLike, settings: Settings, *, observed: bool = False, reference: ImageLike | None = None,
                model: Any = None, device: str | torch.device = "auto", max_pixels: int | None = None) -> Job:
    """Read the inputs, load the model, build the operator and take the measurement.

    model: a loaded prior to reuse, or None (settings.model). max_pixels: the largest input file
    decoded (default restore.io.images.MAX_PIXELS). The one-line notices (sizes
    changed, model chosen) are collected in `Job.notes`, for the caller to show once the job
    stands: a job that fails says only why."""
    notes: list[str] = []
    tell = notes.append

    if reference is not None and not observed:
        raise UsageError("--reference is only for --observed mode (in simulation mode the input is the reference)")
    for line in settings.unused():  # an option of another task or solver
        tell(line)
    applied = describe_config(settings)
    if applied:
        tell(applied)
    if settings.solver in ("nested", "nested-ddrm") and settings.sigma_y > 0 and min(settings.budgets) < 4:
        tell(f"--inner {settings.inner} with a noisy measurement: DDRM takes y in only above its noise "
             "level, which short inner runs skip; use --inner 4 or more (docs/studies/choosing-the-split.md)")
    if (measured := unsuited(settings)) is not None:  # DPS with few calls; configs/notes/suited.yaml's measured gaps
        tell(measured)
    img = as_image(image, "input", notes, max_pixels)
    ref_img = as_image(reference, "reference", notes, max_pixels) if reference is not None else None

    prior, spec, dev = load_model(model, settings, device, tell)
    settings.model = spec
    prior = configure(prior, settings, tell)
    obs_seed, sampler_seed = derive_seeds(settings.seed)
    h, w = img.shape[-2:]
    frame = (observed_frame if observed else simulation_frame)(settings, h, w, prior, tell,
                                                              margin=boundary_margin(settings))
    network = plan_network(prior, dev, settings.candidates, frame.height, frame.width, settings.tile, note=tell)
    operator = build_operator(settings, (frame.height, frame.width)).to(dev, torch.float32)
    for line in getattr(operator, "notes", ()):  # a kernel normalised to sum 1
        tell(line)
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
        scene, ref = (t.to(dev) for t in simulated_scene(img, frame))
        y = operator.observe(scene, settings.sigma_y, torch.Generator(device="cpu").manual_seed(obs_seed))

    mode = "observed" if observed else "simulation"
    identity = {"mode": mode, "input_sha256": fingerprint(image), "reference_sha256": fingerprint(reference),
                "settings": settings.as_dict(),  # and the files the task reads (its mask, its kernel):
                **{f"{key}_sha256": fingerprint(path) for key, path in file_options(settings).items()}}
    return Job(settings=settings, prior=prior, network=network, operator=operator, y=y, reference=ref,
               observation=operator.to_image(y).clamp(-1.0, 1.0).cpu(), device=dev, frame=frame, mode=mode,
               input=describe(image), reference_name=describe(reference) if reference is not None else None,
               sampler_seed=sampler_seed, identity=identity, notes=notes)
