"""One restoration job as one call: degrade (or read) an image, restore it with Nested DDRM or
DDRM, score every anytime output, optionally fill an output folder as it goes, steer candidates,
stop, resume.

    from restore import restore_image, save_result

    result = restore_image("face.png", task="sr4")            # simulation: face.png is clean
    result.final                # (1, 3, H, W) tensor on [-1, 1], the restored image
    result.steps                # the anytime outputs, each a Step(nfe, seconds, image, psnr, ...)
    result.metrics["final"]     # {"psnr": ..., "ssim": ..., "lpips": ...}
    save_result(result, "outputs/face_sr4")                   # the files of scripts/restore.py

    restore_image("lowres.png", task="sr4", observed=True, reference="face.png")
    restore_image("face.png", task="sr4", candidates=4, choose=lambda step, run: 2, out="out/")
    restore_image(resume="out/")                              # continue a stopped run

The settings: restore.settings (composed once: defaults < measured config < what is given). The
modes: restore.restoration.job; the seeds: restore.restoration.seeds. Stepping, candidates, the
clock and the budget: restore.restoration.session (`Restoration`, the stepwise form of this call,
which the page drives). The folder: restore.outputs.live. What is tracked:
- `steps`: the anytime outputs (the outer results of Nested DDRM, every network call's x0
  prediction for DDRM), each candidate's with PSNR, SSIM, LPIPS, and the restoration `seconds`;
- `per_call`: every network call's output per candidate with PSNR and LPIPS (no SSIM). LPIPS
  costs about 50 ms per image on a CPU at 256x256, next to about 0.3 s per network call for the
  bundled prior (scoring is not counted in `seconds` or the time budget);
- `baselines`: the pseudo-inverse H^+ y ("pinv") and, for super-resolution, the low-resolution
  measurement upsampled with bicubic interpolation ("bicubic").

Errors in the user's input raise `UsageError` (restore.errors; `ImageReadError` and
`PriorNotFound` are kinds of it), a ValueError with a one-line message; a stop before the first
result raises `Cancelled`.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from restore.errors import UsageError
from restore.names import check_path
from restore.outputs.files import check_output_dir
from restore.outputs.live import LiveFolder, run_steps
from restore.outputs.resume import load_state, resume_inputs
from restore.paths import named_input
from restore.restoration.job import ImageLike, prepare_job
from restore.restoration.regions import RegionChoice
from restore.restoration.result import RestoreResult, Step
from restore.restoration.scripted import scripted
from restore.restoration.session import Cancelled, Restoration
from restore.settings.compose import compose
from restore.settings.configs import load_config
from restore.settings.schema import ALIASES, Settings

__all__ = ["restore_image", "resume_image", "RestoreResult", "Step", "Cancelled", "SETTING_NAMES"]

Chooser = Callable[[Step, Restoration], Any]
#: the settings restore_image takes as keyword arguments (every Settings field, derived from the
#: declarations, and the old names still accepted; model and config are named arguments of their own)
SETTING_NAMES = tuple(f.name for f in fields(Settings) if f.name not in ("model", "config")) + tuple(ALIASES)


def restore_image(
    image: ImageLike | None = None,
    task: str | None = None,
    *,
    settings: Settings | None = None,
    config: str | Path | None = None,
    observed: bool | None = None,
    reference: ImageLike | None = None,
    model: Any = None,
    device: str | torch.device = "auto",
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: str | Path | None = None,
    time_budget: float | None = None,
    max_pixels: int | None = None,
    choose: Chooser | Sequence[Any] | None = None,
    callback: Callable[[Step], bool | None] | None = None,
    stop: threading.Event | None = None,
    progress: bool = False,
    quiet: bool = False,
    naming: str = "keyword",
    **overrides: Any,
) -> RestoreResult:
    """Restore one image and return the result (complete, or stopped with its latest output).

    image: a path, "example" (the shipped example face), or a (1, C, H, W) / (C, H, W) tensor on
    [-1, 1] (C = 1 or 3).
    Settings (restore.settings.compose, composed once): `settings` as given when nothing else
    is (a composed Settings: the command line's), else start from `settings` (default:
    Settings() completed by the measured config of the task and model), or a `config` YAML file
    (a name in configs/ or a path; "none": no measured config), then `task` and the keyword
    `overrides` that are not None: any of SETTING_NAMES (sigma_y, mask, solver, outer, inner,
    steps, eta, eta_b, lam, noise_share, step_size, seed, size, tile, candidates, precision,
    compile, ...; restore.settings.schema.SETTINGS says what each is).
    model: None (CelebA-HQ when cached locally, else the bundled prior, said in one line), a
    name / model id / folder / checkpoint (see restore.models.prior.load_prior), or a loaded prior
    (anything with `alphas_cumprod`, called as prior(x_t, t) -> eps; with `image_size` unless
    `size` is given), to reuse it across calls.
    device: "auto" (cuda, then mps, then cpu) or a torch device name (a loaded prior's own
    device wins).
    out: fill this folder as the run goes (see restore.outputs.live; an existing folder needs
    `overwrite`). resume: continue the stopped run saved in this folder (`resume_image`).
    time_budget: seconds of restoration time after which the latest output is kept.
    max_pixels: the largest image file decoded (width x height; default
    restore.io.images.MAX_PIXELS), refused from its header before any decoding.
    choose(step, restoration): called after each step while several candidates are left (after
    the last step too, to pick the result); it may return a candidate number to continue from
    (None or 0: all continue) or a RegionChoice (restore.restoration.regions: candidates by
    region), or steer through restoration.choose / choose_regions / drop / stop. Or a list of
    such picks, one per step (choose=[2, RegionChoice([(2, "eyes.png")], rest=1), 0]), checked
    with its region masks before the first network call (a region covering the whole image is
    the whole choice of its candidate).
    callback(step): called after each anytime step; returning True stops the run there.
    stop: an Event; once set, the run stops within one network call and keeps its latest result.
    progress: a tqdm bar (network calls, latest PSNR) on stderr. quiet: no notes on stderr (they
    are kept in `notes` and metrics.json either way).
    Errors in what is given raise UsageError with one line that names the keyword (naming
    "flag": the command-line flag, as the command line calls it).
    """
    started = time.perf_counter()
    _check_keywords(overrides, time_budget, naming)
    _check_paths(naming, image=image, reference=reference, out=out, resume=resume, config=config)
    if resume is not None:
        return resume_image(resume, image, settings=settings, config=config, observed=observed, reference=reference,
                            model=model, device=device, time_budget=time_budget, max_pixels=max_pixels, choose=choose,
                            callback=callback, stop=stop, progress=progress, quiet=quiet, started=started,
                            naming=naming, **{"task": task, **overrides})
    given = {**overrides, "task": task, "model": str(model) if isinstance(model, (str, Path)) else None}
    if settings is None or config is not None or any(v is not None for v in given.values()):
        settings = compose(given, base=settings, config=config, where=_where(naming))
    if image is None:
        raise UsageError("an input image is needed (image=..., or --input on the command line)")
    image = named_input(image)  # "example": the shipped example face
    if out is not None:
        check_output_dir(out, overwrite, where=_where(naming))  # before any work
    job = prepare_job(image, settings, observed=bool(observed), reference=reference,
                      model=None if isinstance(model, (str, Path)) else model, device=device, max_pixels=max_pixels)
    choose = _chooser(choose, job, naming)  # scripted picks and their masks: checked before any work
    session = Restoration(job, time_budget=time_budget, started=started, stop=stop)
    folder = LiveFolder(out, overwrite) if out is not None else None
    return _drive(session, folder, choose, callback, progress, quiet)


def resume_image(
    folder: str | Path,
    image: ImageLike | None = None,
    *,
    settings: Settings | None = None,
    config: str | Path | None = None,
    observed: bool | None = None,
    reference: ImageLike | None = None,
    model: Any = None,
    device: str | torch.device = "auto",
    time_budget: float | None = None,
    max_pixels: int | None = None,
    choose: Chooser | Sequence[Any] | None = None,
    callback: Callable[[Step], bool | None] | None = None,
    stop: threading.Event | None = None,
    progress: bool = False,
    quiet: bool = False,
    started: float | None = None,
    naming: str = "keyword",
    **given: Any,
) -> RestoreResult:
    """Continue the stopped run saved in `folder` to its planned end, writing on into it; the
    result is the one the uninterrupted run would have given. Its settings are the saved ones:
    whatever is also given (settings, a config, keywords, the image, reference, mode) must agree
    with them, else UsageError naming the first that differs (nothing is changed on resume). The
    other arguments are restore_image's."""
    started = time.perf_counter() if started is None else started
    _check_keywords(given, time_budget, naming)
    _check_paths(naming, resume=folder, image=image, reference=reference, config=config)
    named = "resume=" if naming == "keyword" else "--resume"
    if not Path(folder).is_dir():
        raise UsageError(f"{named} {folder}: no such folder")
    live = LiveFolder(folder, resume=True)  # a busy or unwritable folder is refused before any work
    try:
        state = load_state(folder)
        given = {**(settings.as_dict() if settings else {}), **(load_config(config) if config is not None else {}),
                 **{k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None},
                 **({"model": str(model)} if isinstance(model, (str, Path)) else {})}
        settings, image, reference, observed = resume_inputs(state, Path(folder), given, image, reference, observed,
                                                             _where(naming))
        job = prepare_job(image, settings, observed=bool(observed), reference=reference,
                          model=None if isinstance(model, (str, Path)) else model, device=device,
                          max_pixels=max_pixels)
        if job.identity != state["identity"]:
            raise UsageError(f"{named} {folder}: the input, mask or settings differ from the saved run's (a file "
                             "changed since?); start a new run instead")
        choose = _chooser(choose, job, naming)
        session = Restoration(job, time_budget=time_budget, state=state, started=started, stop=stop)
    except BaseException:
        live.release()
        raise
    return _drive(session, live, choose, callback, progress, quiet)


def _where(naming: str) -> str | None:
    """How messages name a setting: "keyword" for the API, None (flags) for the command line."""
    if naming not in ("keyword", "flag"):
        raise ValueError(f"naming must be 'keyword' or 'flag', got {naming!r}")
    return "keyword" if naming == "keyword" else None


def _check_paths(naming: str, **paths: Any) -> None:
    """A path the file system cannot take (restore.names) is one line naming its keyword (or flag)."""
    for key, value in paths.items():
        if isinstance(value, (str, Path)):
            check_path(value, f"{key}=" if naming == "keyword" else "--" + ("input" if key == "image" else key))


def _chooser(choose: Chooser | Sequence[Any] | None, job, naming: str) -> Chooser | None:
    """`choose` as a function: a list of picks (one per step) is checked against the job first,
    its region masks read and sized (restore.restoration.scripted)."""
    if choose is None or callable(choose):
        return choose
    if isinstance(choose, (list, tuple)):
        name = "choose" if naming == "keyword" else "--choose"
        return scripted(choose, job, job.settings.anytime_steps, name)
    raise UsageError(f"choose is a function (step, restoration) -> pick or a list of picks, one per step; got "
                     f"{type(choose).__name__}")


def _check_keywords(overrides: dict[str, Any], time_budget: float | None, naming: str) -> None:
    unknown = sorted(set(overrides) - set(SETTING_NAMES) - {"task"})
    if unknown:
        raise UsageError(f"restore_image got unknown setting(s) {', '.join(unknown)}; the settings are "
                         f"{', '.join(SETTING_NAMES)} (and model, config)")
    if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
        name = "time_budget" if naming == "keyword" else "--time-budget"
        raise UsageError(f"{name} must be a positive, finite number of seconds, got {time_budget}")


def _drive(session: Restoration, folder: LiveFolder | None, choose: Chooser | None,
           callback: Callable[[Step], bool | None] | None, progress: bool, quiet: bool) -> RestoreResult:
    """Step the session to its end (or its stop), keeping the folder up to date, asking `choose`
    and `callback` after each step; the folder, if any, is held until then and released after."""
    try:
        _say(session.job.notes, quiet)  # the job stands and its folder is taken: now the notes and the bar
        shown = len(session.notes)
        bar = _progress_bar(session.settings, progress)
        if bar is not None:
            session.listener = lambda record: bar.update(record.nfe - bar.n)
            bar.update(session.nfe)
        steps = run_steps(session, folder)
        try:
            for step in steps:
                if bar is not None and step.psnr is not None:
                    bar.set_postfix_str(f"PSNR {step.psnr:.2f} dB", refresh=False)
                if callback is not None and callback(step) and not session.done:
                    session.stop()
                elif choose is not None and len(session.alive) > 1:
                    pick = choose(step, session)
                    if isinstance(pick, RegionChoice):
                        session.choose_regions(pick)
                    elif pick:
                        session.choose(pick)
        finally:
            steps.close()
            if bar is not None:
                bar.close()
        result = folder.finish(session) if folder is not None else session.result()
    finally:
        if folder is not None:
            folder.release()
    _say(session.notes[shown:], quiet)
    return result


def _progress_bar(settings: Settings, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    desc = f"{settings.solver} {settings.task}" + (f" x{settings.candidates}" if settings.candidates > 1 else "")
    return tqdm(total=settings.nfe, unit="call", desc=desc, file=sys.stderr, dynamic_ncols=True, leave=True)


def _say(lines, quiet: bool) -> None:
    if not quiet:
        for line in lines:
            print(f"note: {line}", file=sys.stderr)
