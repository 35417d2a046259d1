"""One restoration job as one call: degrade (or read) an image, restore it with Nested DDRM or
DDRM, and track its quality after every anytime output.

    from restore import restore_image

    result = restore_image("face.png", task="sr4")            # simulation: face.png is clean
    result.final                # (1, 3, H, W) tensor on [-1, 1], the restored image
    result.steps                # the anytime outputs, each a Step(nfe, seconds, image, psnr, ...)
    result.metrics["final"]     # {"psnr": ..., "ssim": ..., "lpips": ...}
    result.save("outputs/face_sr4")                           # the files of scripts/restore.py

    restore_image("lowres.png", task="sr4", observed=True, reference="face.png")

Two modes:
- simulation (default): `image` is a clean reference. It is centre-cropped and resized to the
  restoration size (`size`, default the model's), degraded with the task's operator plus
  `sigma_y` noise ([0, 1] pixel scale), and every output is scored against it.
- observed (`observed=True`): `image` is the measurement itself: a low-resolution image for
  srN / sr_bicubicN, a grey image for color (a colour file is reduced to the mean of R, G, B, the
  operator's grey), a noisy / blurred / holed full-size image for deno / deblur_* / inp_*
  (inp_mask with `mask`). The image must be square. The restoration size is `size` or the
  model's when the image fits it (e.g. 64x64 for sr4 with a 256 model); without `size`, an image
  that does not fit is restored at its side times the task's factor (said in one line), which
  must be a multiple of 16. Metrics are computed only when `reference` is given (a path or a
  tensor, centre-cropped and resized to the restoration size).

What is tracked (simulation, or observed with a reference):
- `steps`: the anytime outputs, i.e. the outer results of Nested DDRM (one per outer step), or
  every network call's x0 prediction for DDRM; each with PSNR, SSIM, LPIPS and `seconds`.
- `per_call` (also `metrics["per_call"]`): every network call's output: Nested DDRM's per-call
  inner x0 predictions ("inner") and outer results ("outer"), DDRM's predictions
  ("prediction"); each with PSNR and LPIPS (no SSIM). LPIPS costs about 50 ms per call on a CPU
  at 256x256, next to about 0.3 s per network call for the bundled prior.
- `baselines`: the pseudo-inverse H^+ y ("pinv") and, for super-resolution, the low-resolution
  measurement upsampled with bicubic interpolation ("bicubic").

Timing: `seconds` of a step and `time_budget` count the restoration's own time (network calls
and solver arithmetic since sampling began), not the quality tracking, so a budget stops at the
same point with or without a reference. When the budget has run out and at least one anytime
output exists, the run stops and the latest anytime output is the result (stopped_early).
`metrics["wall_seconds"]` is the whole call (model loading, tracking, baselines included).

Randomness: `seed` is expanded (numpy SeedSequence) into two independent seeds, one for the
observation noise and one for the sampler, each driving its own CPU torch.Generator, so a result
is reproducible and the observation does not change with the solver settings.

Errors in the user's input raise `UsageError`, `ImageReadError` or `PriorNotFound` (all
ValueErrors with a one-line message).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch

from degradations import scale_factor
from restore.baselines import baselines as compute_baselines
from restore.imageio import center_crop_resize, load_image
from restore.settings import (
    Settings,
    UsageError,
    build_operator,
    build_solver,
    load_config,
    resolve_device,
    resolve_model,
)

__all__ = [
    "restore_image",
    "RestoreResult",
    "Step",
    "derive_seeds",
]

ImageLike = Union[str, Path, torch.Tensor]



@dataclass
class Step:
    """One anytime output: an outer result (Nested DDRM) or a network call's prediction (DDRM).

    index: 1-based; nfe: network calls made so far; t: the diffusion time it was made at;
    seconds: restoration time so far (tracking excluded); image: (1, C, H, W) on [-1, 1], cpu;
    psnr / ssim / lpips: None without a reference (lpips also when unavailable)."""

    index: int
    nfe: int
    t: int
    seconds: float
    image: torch.Tensor
    psnr: float | None = None
    ssim: float | None = None
    lpips: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.index, "nfe": self.nfe, "t": self.t, "psnr": self.psnr, "ssim": self.ssim,
                "lpips": self.lpips, "seconds": round(self.seconds, 4)}


@dataclass
class RestoreResult:
    """What `restore_image` returns. Images are (1, C, H, W) cpu tensors on [-1, 1].

    final: the restored image; observation: the measurement as an image (low-resolution, grey,
    noisy, blurred or masked); measurement: y, (1, m); reference: the clean image scored against
    (None in observed mode without a reference); baselines: {"pinv", "bicubic" (sr tasks)};
    steps: the anytime outputs; per_call: every call's {"nfe", "kind", "t", "psnr", "lpips"};
    metrics: the JSON-ready summary written to metrics.json; notes: the one-line notices."""

    final: torch.Tensor
    observation: torch.Tensor
    measurement: torch.Tensor
    reference: torch.Tensor | None
    baselines: dict[str, torch.Tensor]
    steps: list[Step]
    per_call: list[dict[str, Any]]
    metrics: dict[str, Any]
    settings: Settings
    notes: list[str] = field(default_factory=list)

    @property
    def stopped_early(self) -> bool:
        return bool(self.metrics.get("stopped_early"))

    @property
    def records(self) -> list[Step]:
        """Alias of `steps`."""
        return self.steps

    def step_file(self, step: Step) -> str:
        width = len(str(len(self.steps)))
        return f"step_{step.index:0{width}d}_nfe{step.nfe}.png"

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write the output folder of scripts/restore.py and return its path (see
        `restore.report.save_result`: atomic, never replaces foreign files)."""
        from restore.report import save_result

        return save_result(self, out, overwrite)


# --------------------------------------------------------------------------- helpers
def derive_seeds(seed: int) -> tuple[int, int]:
    """(observation seed, sampler seed): two independent 64-bit seeds expanded from `seed`."""
    state = np.random.SeedSequence([int(seed) % 2**64, 0x5EED]).generate_state(2, dtype=np.uint64)
    return int(state[0]), int(state[1])


def _as_image(image: ImageLike, what: str) -> torch.Tensor:
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


def _describe(image: ImageLike) -> str:
    return str(image) if isinstance(image, (str, Path)) else "tensor"


def _num(value: torch.Tensor | float) -> float | None:
    v = float(value)
    return None if math.isnan(v) or math.isinf(v) else round(v, 6)


def _scores(x: torch.Tensor, ref: torch.Tensor) -> dict[str, float | None]:
    """PSNR, SSIM, LPIPS of one image as JSON-ready floats (None for NaN / inf)."""
    from restore.metrics import compute_all

    return {k: _num(v[0]) for k, v in compute_all(x, ref).items()}


@contextlib.contextmanager
def _quiet_loading():
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


def _make_settings(settings: Settings | None, config: str | Path | None, overrides: dict[str, Any]) -> Settings:
    values = (settings or Settings()).as_dict()
    if config is not None:
        values.update(load_config(config))
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("mask") is not None:
        values["mask"] = str(values["mask"])
    return Settings(**values).validate()


def _observed_size(task: str, h: int, w: int, size: int | None, model_size: int, note) -> int:
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


def _load_prior(model, device: torch.device, settings: Settings, note, quiet: bool):
    """(prior, model spec for the report); `model` is a loaded prior or None (then settings.model)."""
    from restore.prior import load_prior

    if model is not None:
        if not hasattr(model, "alphas_cumprod"):
            raise UsageError(f"model must be a name, path or a loaded prior, got {type(model).__name__}")
        return model, str(getattr(model, "name", type(model).__name__))
    spec = resolve_model(settings.model, note=note)  # note() itself honours quiet
    with _quiet_loading():
        prior = load_prior(spec, device=device)
    return prior, spec


# --------------------------------------------------------------------------- the job
def restore_image(
    image: ImageLike,
    task: str | None = None,
    *,
    settings: Settings | None = None,
    config: str | Path | None = None,
    observed: bool = False,
    reference: ImageLike | None = None,
    mask: str | Path | None = None,
    sigma_y: float | None = None,
    model: Any = None,
    solver: str | None = None,
    outer: int | None = None,
    inner: int | None = None,
    steps: int | None = None,
    eta: float | None = None,
    eta_b: float | None = None,
    seed: int | None = None,
    size: int | None = None,
    device: str | torch.device = "auto",
    time_budget: float | None = None,
    progress: bool = False,
    quiet: bool = False,
    callback: Callable[[Step], bool | None] | None = None,
) -> RestoreResult:
    """Restore one image; see the module docstring for the modes, the tracking and the timing.

    image: a path, or a (1, C, H, W) / (C, H, W) tensor on [-1, 1] (C = 1 or 3).
    Settings: start from `settings` (default `Settings()`: sr4, sigma_y 0, nested 4 x 5, DDRM 20
    steps, eta 0.85, eta_b 1, seed 0), then a `config` YAML file (a name in configs/ or a path),
    then the keyword arguments that are not None (task, mask, sigma_y, model, solver, outer,
    inner, steps, eta, eta_b, seed, size).
    model: None (CelebA-HQ when cached locally, else the bundled prior, said in one line), a
    name / model id / folder / checkpoint (see restore.prior.load_prior), or a loaded prior
    (anything with `alphas_cumprod`, called as prior(x_t, t) -> eps; with `image_size` unless
    `size` is given), to reuse it across calls.
    device: "auto" (cuda, then mps, then cpu), or a torch device name; ignored for a loaded prior
    (its own device is used).
    time_budget: seconds of restoration time after which the latest anytime output is returned.
    progress: show a tqdm bar (network calls, latest PSNR) on stderr. quiet: no notes on stderr
    (they are kept in `notes` and metrics.json either way).
    callback: called with each new Step; returning True stops the run there (like a budget).
    """
    started = time.perf_counter()
    notes: list[str] = []
    held: list[str] | None = []  # notes are printed once the inputs are known to be valid

    def note(line: str) -> None:
        notes.append(line)
        if quiet:
            return
        if held is not None:
            held.append(line)
        else:
            print(f"note: {line}", file=sys.stderr)

    overrides = dict(task=task, mask=mask, sigma_y=sigma_y, model=model if isinstance(model, (str, Path)) else None,
                     solver=solver, outer=outer, inner=inner, steps=steps, eta=eta, eta_b=eta_b, seed=seed, size=size)
    settings = _make_settings(settings, config, overrides)
    if time_budget is not None and not time_budget > 0:
        raise UsageError(f"--time-budget must be a positive number of seconds, got {time_budget}")
    if reference is not None and not observed:
        raise UsageError("--reference is only for --observed mode (in simulation mode the input is the reference)")
    if settings.mask and settings.task != "inp_mask":
        note(f"--mask is only used by task inp_mask; ignored for {settings.task}")
    if settings.solver == "nested" and settings.sigma_y > 0 and settings.inner < 4:
        note(f"--inner {settings.inner} with a noisy measurement: DDRM takes y in only above its noise "
             "level, which short inner runs skip; use --inner 4 or more (README, 'Choosing the split')")

    img = _as_image(image, "input")
    ref_img = _as_image(reference, "reference") if reference is not None else None

    loaded = model is not None and not isinstance(model, (str, Path))
    if loaded and getattr(model, "device", None) is not None:
        dev = torch.device(model.device)
    else:
        dev = resolve_device(device)
    prior, model_spec = _load_prior(model if loaded else None, dev, settings, note, quiet)
    settings.model = model_spec
    model_size = getattr(prior, "image_size", None) or settings.size
    if model_size is None:
        raise UsageError("the model does not say its image size; pass size=")
    model_size = int(model_size)

    obs_seed, sampler_seed = derive_seeds(settings.seed)
    h, w = img.shape[-2:]
    if observed:
        side = _observed_size(settings.task, h, w, settings.size, model_size, note)
        operator = build_operator(settings, side).to(dev, torch.float32)
        meas_img = img.mean(dim=1, keepdim=True) if settings.task == "color" else img
        try:
            y = operator.from_image(meas_img.to(dev))
        except ValueError as error:  # pragma: no cover - sizes are checked above
            raise UsageError(str(error).splitlines()[0]) from None
        ref = None
        if ref_img is not None:
            ref, changed = center_crop_resize(ref_img, side)
            if changed:
                rh, rw = ref_img.shape[-2:]
                note(f"the reference is {rw}x{rh}: centre-cropped and resized to {side}x{side}")
            ref = ref.to(dev)
    else:
        side = settings.size or model_size
        x, changed = center_crop_resize(img, side)
        if changed:
            whose = "--size" if settings.size else "the model's"
            note(f"the input is {w}x{h}: centre-cropped and resized to {side}x{side} ({whose} resolution)")
        operator = build_operator(settings, side).to(dev, torch.float32)
        ref = x.to(dev)
        obs_gen = torch.Generator(device="cpu").manual_seed(obs_seed)
        y = operator.observe(ref, settings.sigma_y, obs_gen)

    sampler = build_solver(settings, prior, operator, yield_inner=settings.solver == "nested")
    for line in held:
        print(f"note: {line}", file=sys.stderr)
    held = None
    steps_out, per_call, stop_reason, restoration_seconds = _run(sampler, y, settings, ref, sampler_seed,
                                                                  time_budget, progress, callback)
    if stop_reason == "time budget":
        last = steps_out[-1]
        note(f"time budget of {time_budget:g} s ran out after {sampler.nfe} of {sampler.nfe_total} network calls; "
             f"returning the output of step {last.index} (nfe {last.nfe})")
    elif stop_reason == "callback":
        note(f"stopped by the callback after {sampler.nfe} of {sampler.nfe_total} network calls")

    final = steps_out[-1].image
    observation = operator.to_image(y).clamp(-1.0, 1.0).cpu()
    baselines = {name: image.cpu() for name, image in compute_baselines(operator, y).items()}

    empty = {"psnr": None, "ssim": None, "lpips": None}
    last = steps_out[-1]
    final_scores = {"psnr": last.psnr, "ssim": last.ssim, "lpips": last.lpips} if ref is not None else dict(empty)
    base_scores = {k: (_scores(v.to(dev), ref) if ref is not None else dict(empty)) for k, v in baselines.items()}
    if ref is not None:
        from restore.metrics import lpips_available

        if not lpips_available():
            note("LPIPS unavailable (no AlexNet weights found): reported as null")

    metrics = {
        "task": settings.task,
        "model": model_spec,
        "solver": settings.solver,
        "sigma_y": settings.sigma_y,
        "seed": settings.seed,
        "image_size": side,
        "mode": "observed" if observed else "simulation",
        "input": _describe(image),
        "reference": _describe(reference) if reference is not None else (None if observed else "input"),
        "device": str(dev),
        "settings": settings.as_dict(),
        "nfe_total": sampler.nfe,
        "nfe_planned": sampler.nfe_total,
        "wall_seconds": None,  # filled below
        "restoration_seconds": round(restoration_seconds, 4),
        "time_budget": time_budget,
        "stopped_early": stop_reason is not None,
        "stop_reason": stop_reason,
        "steps": [s.as_dict() for s in steps_out],
        "final": final_scores,
        "baselines": base_scores,
        "per_call": per_call,
        "notes": notes,
    }
    result = RestoreResult(final=final, observation=observation, measurement=y.cpu(),
                           reference=ref.cpu() if ref is not None else None, baselines=baselines,
                           steps=steps_out, per_call=per_call, metrics=metrics, settings=settings, notes=notes)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 3)
    return result


def _run(sampler, y, settings: Settings, ref, sampler_seed: int, time_budget, progress: bool, callback):
    """The sampling loop: (steps, per-call records, stop reason or None, restoration seconds)."""
    from tqdm.auto import tqdm

    from restore import metrics as M

    generator = torch.Generator(device="cpu").manual_seed(sampler_seed)
    bar = tqdm(total=sampler.nfe_total, unit="call", desc=f"{settings.solver} {settings.task}",
               disable=not progress, file=sys.stderr, dynamic_ncols=True, leave=True)
    steps: list[Step] = []
    per_call: list[dict[str, Any]] = []
    stop_reason = None
    clock = 0.0
    records = sampler.sample(y, settings.sigma_y, generator)
    try:
        tick = time.perf_counter()
        for record in records:
            clock += time.perf_counter() - tick  # restoration time only, tracking excluded
            bar.update(record.nfe - bar.n)
            anytime = record.kind in ("outer", "prediction")
            x0 = record.x0.clamp(-1.0, 1.0)
            scores: dict[str, float | None] = {"psnr": None, "ssim": None, "lpips": None}
            if ref is not None:
                scores["psnr"] = _num(M.psnr(x0, ref)[0])
                scores["lpips"] = _num(M.lpips(x0, ref)[0])
                if anytime:
                    scores["ssim"] = _num(M.ssim(x0, ref)[0])
                per_call.append({"nfe": record.nfe, "kind": record.kind, "t": record.t,
                                 "psnr": scores["psnr"], "lpips": scores["lpips"]})
            if anytime:
                step = Step(len(steps) + 1, record.nfe, record.t, clock, x0.cpu(), **scores)
                steps.append(step)
                if scores["psnr"] is not None:
                    bar.set_postfix_str(f"PSNR {scores['psnr']:.2f} dB", refresh=False)
                if callback is not None and callback(step) and not record.final:
                    stop_reason = "callback"
            if (stop_reason is None and time_budget is not None and clock > time_budget and steps
                    and not record.final):
                stop_reason = "time budget"
            if stop_reason is not None:
                break
            tick = time.perf_counter()
    finally:
        records.close()
        bar.close()
    return steps, per_call, stop_reason, clock
