"""What the local web page does (scripts/app.py, `anytime-app`; its layout: restore.page.layout):
watch a restoration sharpen, stop it, draw a mask, choose among candidates. The Start button's
handler steps a `restore.restoration.session.Restoration` through `restore.outputs.live.run_steps`
(no second sampling loop); Stop, a click on a candidate and "Keep all" are quick events that steer
the run in progress.

One restoration runs at a time (the model needs the machine); other jobs wait in Gradio's queue,
which shows their place. With several candidates the run waits after each step for a click on a
candidate (every candidate continues from it) or "Keep all", or for regions painted on the
latest result, each followed by a click on the candidate to keep there (a choice by region:
restore.restoration.regions); after DECISION_TIMEOUT seconds
without either it stops and keeps its latest result. After the last step a click on a candidate
makes it the final image. Everything a run writes (uploads, the output folder with final.png and
metrics.json, plots) lives under one temporary folder, removed when the page stops.

People using the page at once are kept apart: each run's folder has an unguessable name and is
never served by its path (the browser gets Gradio's cache copies of the files handed to it, under
a secret-seeded hash of their content); a file reaches a handler only as an upload of the browser
that names it (restore.page.uploads); a click steers only the run of the browser session that
made it; no message shown on the page names a server path (file names only). What a person may
ask for is bounded by the server's start-up limits (`Page`'s max_* arguments): the models it was
started with, network calls per candidate, candidates, and the pixels of an upload decoded.
"""

from __future__ import annotations

import queue
import re
import secrets
import shutil
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from restore.errors import UsageError, one_line
from restore.io.images import load_image, to_uint8
from restore.outputs.figures import metrics_figure
from restore.outputs.live import LiveFolder, run_steps
from restore.page.limits import (
    FIELDS,
    MAX_CALLS,
    MAX_CANDIDATES_PAGE,
    MAX_MODELS,
    MAX_PIXELS_PAGE,
    Refused,
    check_calls,
    check_fields,
    check_limits,
    header_size,
    menu_name,
    public,
    too_large,
)
from restore.page.models import ModelMenu
from restore.page.regions import painted, region_canvas, spread_update
from restore.restoration.job import prepare_job
from restore.restoration.regions import RegionChoice
from restore.restoration.session import Cancelled, Restoration
from restore.settings.compose import compose
from restore.settings.model_spec import BUNDLED
from restore.settings.schema import Settings

DECISION_TIMEOUT = 600.0
MAX_KEPT = 16  # finished runs kept in memory (one per browser session, the oldest dropped first)
@dataclass
class Active:
    """A browser session's restoration: the session, its folder, the decision it waits for."""

    session: Any
    folder: Any
    path: Path | None = None  # the run's folder (input.png, mask.png, plots, out/)
    model: str | None = None  # the key of its prior among Page.priors (None: a programmatic model)
    shown: list[int] = field(default_factory=list)  # candidate numbers, in the gallery's order
    decisions: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    waiting: bool = False
    regions: list[tuple[int, np.ndarray]] = field(default_factory=list)  # painted, awaiting "elsewhere"


class Page:
    """The page's state: the temporary folder, the models it offers and those loaded, its limits,
    the runs by browser session.

    models: extra choices for the model menu, name -> a loaded prior (tests use a slow tiny one),
    never unloaded. specs: model specs the server was started with (restore/cli/app.py --model),
    offered by their menu_name beside the bundled prior and, when its weights are cached,
    "celebahq"; warm: some of them already loaded (spec -> prior). allow_any_model: a model typed
    into the menu is loaded too (otherwise only the menu's are). max_models: the most models of the
    menu loaded at once (the least recently used is dropped). max_calls: the most network calls per
    candidate (outer x inner for a nested solver, steps for a plain one); max_candidates: the most
    candidates; max_pixels: the largest image decoded (width x height, from its header)."""

    def __init__(self, root: str | Path, models: dict[str, Any] | None = None, *, specs: Iterable[str] = (),
                 warm: dict[str, Any] | None = None, allow_any_model: bool = False, max_models: int = MAX_MODELS,
                 max_calls: int = MAX_CALLS, max_candidates: int = MAX_CANDIDATES_PAGE,
                 max_pixels: int = MAX_PIXELS_PAGE):
        check_limits(max_models=max_models, max_calls=max_calls, max_candidates=max_candidates, max_pixels=max_pixels)
        self.root = Path(root)
        self.max_calls, self.max_candidates, self.max_pixels = max_calls, max_candidates, max_pixels
        self.models = ModelMenu(models, specs, warm, allow_any_model, max_models, on_unload=self._forget_runs_of,
                                public=self._public)
        self.active: dict[str, Active] = {}
        self.lock = threading.Lock()

    def _forget_runs_of(self, spec: str) -> None:
        """A model was unloaded: the finished runs that hold it go too (their final pick with it)."""
        with self.lock:
            for key in [k for k, a in self.active.items() if a.model == spec and a.session.status != "running"]:
                del self.active[key]

    # -- the run ------------------------------------------------------------------------------
    def run(self, editor, reference, task, sigma_y, model, solver, outer, inner, steps, candidates, seed, mode,
            request: gr.Request):
        """The Start button: a generator of page updates (status, latest, gallery, plot, files)."""
        # a request without a session (an API call) gets a key of its own: nothing else can steer it
        key = getattr(request, "session_hash", None) or f"no-session-{secrets.token_hex(16)}"
        folder: Path | None = None
        try:
            name = model or BUNDLED
            numbers = dict(sigma_y=sigma_y, seed=seed, outer=outer, inner=inner, steps=steps, candidates=candidates)
            self._check_fields(solver, numbers)  # before anything is loaded or written
            self.models.spec(name)  # a model the page does not offer: refused before anything is written
            folder = self.root / "runs" / secrets.token_hex(16)  # 128 random bits: not guessable
            folder.mkdir(parents=True)
            spec, prior = self.models.load(name)
            fixed = int(prior.image_size) if getattr(prior, "fixed_size", False) else None
            image = self._save_input(editor, folder, task, mode, fixed)
            # the values as sent (compose checks their types and ranges); the model by its menu name
            chosen = dict(task=task, model=name if spec is None else menu_name(spec), solver=solver, **numbers,
                          mask=str(folder / "mask.png") if task == "inp_mask" else None)
            settings = compose(chosen)  # eta, outer grid: the measured ones
            self._check_limits(settings)
            job = prepare_job(image, settings, observed=mode == "observed", reference=reference, model=prior,
                              max_pixels=self.max_pixels)
            # metrics.json names the inputs by their file names, not by where they lie on the server
            job.input = image.name
            job.reference_name = Path(reference).name if reference is not None else None
            if settings.mask:
                settings.mask = Path(settings.mask).name
            if settings.kernel:
                settings.kernel = Path(settings.kernel).name
            session = Restoration(job, score_calls=False)  # the page shows each step's scores
        except Exception as error:  # noqa: BLE001 - whatever the cause, one line on the page
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            if not isinstance(error, (UsageError, OSError)):
                traceback.print_exc(file=sys.stderr)  # for the operator; the page gets one line
            yield self._message(f"**Cannot start:** {self._said(error)}")
            return
        active = Active(session, LiveFolder(folder / "out"), path=folder, model=spec)
        with self.lock:  # keep the last run of each browser session (for a final pick), within reason
            finished = [k for k, a in self.active.items() if k != key and a.session.status != "running"]
            for k in finished[: max(0, len(self.active) - MAX_KEPT)]:
                del self.active[k]
            self.active[key] = active
        notes = "".join(f"\n\n_note: {self._public(n)}_" for n in job.notes)
        yield self._update(status=f"Running: {session.nfe_total} network calls planned.{notes}", files=None,
                           gallery=self._gallery_update([], active), latest=None, plot=None,
                           spread=gr.update(value=None, visible=False))
        try:
            for step in run_steps(session, active.folder):
                result = session.result()
                plot = self._plot(result, folder)
                several = len(session.alive) > 1
                active.shown = list(session.alive)
                gallery = self._gallery_update(step.candidates if several else [], active)
                status = self._status(session, step)
                if several and not session.done:
                    status += ("\n\n**Click a candidate to continue every candidate from it, or Keep all.** "
                               "Or paint a region on the canvas and click the candidate to keep there (as many "
                               "regions as you like), then click the one for everywhere else.")
                waiting = several and not session.done
                yield self._update(status=status, latest=_array(step.image), gallery=gallery, plot=plot,
                                   keep=gr.update(visible=waiting), spread=spread_update(step))
                if waiting:
                    self._decide(active)
                    yield self._update(keep=gr.update(visible=False))
        except Cancelled:
            yield self._message("Stopped before the first result: nothing to keep.")
            return
        except Exception as error:  # noqa: BLE001 - a write that failed (a full disk), out of memory: one line
            if not isinstance(error, UsageError):
                traceback.print_exc(file=sys.stderr)
            yield self._update(status=f"**Stopped:** {self._said(error)}", keep=gr.update(visible=False))
            return
        result = active.folder.finish(session)
        yield self._update(status=self._status(session, result.steps[-1], final=True),
                           latest=_array(result.final), files=self._files(active), plot=self._plot(result, folder),
                           gallery=self._gallery_update(result.steps[-1].candidates if len(result.finals) > 1 else [],
                                                        active, final=True), spread=spread_update(result.steps[-1]))

    def _check_fields(self, solver, numbers: dict[str, Any]) -> None:
        check_fields(solver, numbers, self.max_calls, self.max_candidates)

    def _check_limits(self, settings: Settings) -> None:
        """The page's limits on composed settings (what a config file added counts too)."""
        check_calls(settings.nested, settings.budgets, settings.steps, settings.candidates, self.max_calls,
                    self.max_candidates)

    def _public(self, text: Any) -> str:
        return public(text, self.root)

    def _said(self, error: BaseException) -> str:
        """An error as the page says it: one line, no server path, a setting named by its field."""
        if isinstance(error, UsageError):
            text = self._public(error)
            flag = re.match(r"--([a-z-]+) must\b", text)
            name = flag.group(1).replace("-", "_") if flag else None
            return FIELDS[name] + text[flag.end(1):] if name in FIELDS else text
        if isinstance(error, OSError):
            return self._public(f"{error.strerror or type(error).__name__}"
                                + (f": {error.filename}" if error.filename else ""))
        return self._public(f"{type(error).__name__}: {one_line(error)}")

    def _decide(self, active: Active) -> None:
        """Wait for a click on a candidate, Keep all or Stop (or the timeout: stop)."""
        active.waiting = True
        try:
            decision = active.decisions.get(timeout=DECISION_TIMEOUT)
        except queue.Empty:
            decision = "stop"
        finally:
            active.waiting = False
        if decision == "stop":
            active.session.stop()
        elif isinstance(decision, RegionChoice):
            active.session.choose_regions(decision)
        elif isinstance(decision, int):
            active.session.choose(decision)

    # -- quick events: each reaches only the run of the browser session that sends it -----------
    def _own(self, request: gr.Request) -> Active | None:
        key = getattr(request, "session_hash", None)
        return self.active.get(key) if key else None

    def stop(self, request: gr.Request) -> None:
        active = self._own(request)
        if active is not None and active.session.status == "running":
            active.session.stop()
            if active.waiting:
                active.decisions.put("stop")

    def keep_all(self, request: gr.Request) -> None:
        """Keep all: every candidate continues on its own (with regions painted: those regions
        from their candidates, each its own elsewhere)."""
        active = self._own(request)
        if active is not None and active.waiting:
            regions, active.regions = active.regions, []
            active.decisions.put(RegionChoice(tuple(regions)) if regions else None)

    def canvas(self, request: gr.Request):
        """The region canvas after a step: the latest result to paint on while the run steers
        several candidates, hidden otherwise."""
        active = self._own(request)
        session = None if active is None else active.session
        if session is None or not session.steps or session.done or len(session.alive) < 2 \
                or session.status != "running":
            return gr.update(visible=False)
        return region_canvas(session.steps[-1].image)

    def select(self, editor, evt: gr.SelectData, request: gr.Request):
        """A click on a candidate while the run waits: with a region painted on the canvas, that
        candidate is kept there (the canvas is cleared for the next region); without one, every
        candidate continues from it, or, after regions, it fills everywhere else. After the last
        step: the final image. Returns updates for the latest image, the files, the status and
        the canvas."""
        active = self._own(request)
        index = getattr(evt, "index", None)
        unchanged = (gr.update(),) * 4
        if active is None or not isinstance(index, int) or not 0 <= index < len(active.shown):
            return unchanged
        number = active.shown[index]
        if active.waiting:
            shown = tuple(active.session.steps[-1].image.shape[-2:]) if active.session.steps else None
            strokes = painted(editor, shown)
            if strokes is not None:
                active.regions.append((number, strokes))
                said = ", ".join(f"candidate {n}" for n, _ in active.regions)
                return (gr.update(), gr.update(), f"Regions so far: {said}. Paint another, click the candidate for "
                        "everywhere else, or Keep all (each candidate keeps its own elsewhere).",
                        region_canvas(active.session.steps[-1].image))
            regions, active.regions = active.regions, []
            active.decisions.put(RegionChoice(tuple(regions), rest=number) if regions else number)
            return unchanged
        session = active.session
        if session.status != "complete" or number not in session.alive:
            return unchanged
        session.choose(number)
        result = active.folder.finish(session)
        return (_array(result.final), self._files(active), self._status(session, result.steps[-1], final=True),
                gr.update())

    def load_input(self, path):
        """An upload (or the example): read and checked here (within max_pixels, from the file's
        header before any decoding), then shown in the editor for the mask; a file that is not an
        image, or one too large, gets a message and clears the editor. Runs in the queue, one
        upload at a time (restore.page.layout)."""
        if not path:
            return None, "Upload an image or pick the example, choose a task, press Start."
        name = Path(path).name
        try:
            x = load_image(path, mode="RGB", max_pixels=self.max_pixels)
        except UsageError as error:
            size = header_size(path)
            if size is not None and size[0] * size[1] > self.max_pixels:
                return None, f"**{too_large(name, *size, self.max_pixels)}**"
            reason = self._public(error).rsplit(": ", 1)[-1]
            return None, f"**{name} is not an image** ({reason}). Upload a PNG, JPEG, TIFF, BMP or WebP file."
        h, w = x.shape[-2:]
        return (to_uint8(x[0]).permute(1, 2, 0).numpy(),
                f"Loaded {name} ({w}x{h}). Choose a task and press Start.")

    # -- helpers ------------------------------------------------------------------------------
    def _save_input(self, editor, folder: Path, task: str, mode: str, size: int | None) -> Path:
        """The editor's image as input.png, and for inp_mask the brush strokes as mask.png (black =
        missing), cropped and resized as the image will be (to size x size for a model trained at
        one size; the image's own size otherwise)."""
        from PIL import Image

        background = (editor or {}).get("background") if isinstance(editor, dict) else editor
        layers = [layer for layer in ((editor or {}).get("layers") or [] if isinstance(editor, dict) else [])
                  if layer is not None]
        for image in (background, *layers):
            if isinstance(image, Refused):
                raise UsageError(image.message())
        if background is None:
            raise UsageError("upload an image (or pick the example) first")
        if not isinstance(background, Image.Image):
            raise UsageError("the input is not an image: upload one (or pick the example)")
        image = background.convert("RGB")
        path = folder / "input.png"
        image.save(path)
        if task == "inp_mask":
            strokes = np.zeros(image.size[::-1], bool)
            for layer in layers:
                layer = layer.convert("RGBA")
                if layer.size == image.size:
                    strokes |= np.asarray(layer)[..., 3] > 0
            if not strokes.any():
                raise UsageError("inp_mask: paint the missing parts on the image with the brush first")
            mask = Image.fromarray(np.where(strokes, 0, 255).astype(np.uint8))
            if mode != "observed" and size is not None:
                side = min(mask.size)
                left, top = (mask.width - side) // 2, (mask.height - side) // 2
                mask = mask.crop((left, top, left + side, top + side))
                mask = mask.resize((size, size), Image.Resampling.NEAREST)
            mask.save(folder / "mask.png")
        return path

    def _gallery_update(self, candidates, active: Active, final: bool = False):
        items = []
        for c in candidates:
            scores = [f"{c.psnr:.2f} dB" if c.psnr is not None else "",
                      f"LPIPS {c.lpips:.3f}" if c.lpips is not None else ""]
            items.append((_array(c.image), f"candidate {c.number}" + (": " + ", ".join(s for s in scores if s)
                                                                         if any(scores) else "")))
        label = "Candidates: click one to make it the final image" if final else "Candidates"
        return gr.update(value=items, visible=bool(items), label=label, selected_index=None)

    def _plot(self, result, folder: Path):
        """The scores' plot, as a file of the run's folder: Gradio hands the browser its cache copy."""
        if result.reference is None:
            return None
        path = folder / f"plot_{len(result.steps):03d}.png"
        metrics_figure(result, path)
        return str(path)

    def _files(self, active: Active) -> list[str]:
        """The downloads, as files of the run's folder: Gradio hands the browser its cache copies."""
        out = active.folder.out
        return [str(out / "final.png"), str(out / "metrics.json")] + sorted(str(p) for p in out.glob("final_*.png"))

    @staticmethod
    def _status(session, step, final: bool = False) -> str:
        scores = " · ".join(f"{name} {value:{spec}}" for name, value, spec in
                            (("PSNR", step.psnr, ".2f"), ("SSIM", step.ssim, ".3f"), ("LPIPS", step.lpips, ".3f"))
                            if value is not None)
        head = {"complete": "**Complete.**", "interrupted": "**Stopped**, keeping the latest result.",
                "time budget": "**Time budget spent.**"}.get(session.status, "Running.") if final else "Running."
        line = (f"{head} Step {step.index} of {session.solver.anytime_steps} · {step.nfe} of {session.nfe_total} "
                f"network calls · {step.seconds:.1f} s")
        if len(step.candidates) > 1:
            line += f" · showing candidate {step.lead}"
        return line + (f"\n\n{scores}" if scores else "")

    def _update(self, **values) -> tuple:
        order = ("status", "latest", "gallery", "plot", "files", "keep", "spread")
        return tuple(values[k] if k in values else gr.update() for k in order)

    def _message(self, text: str) -> tuple:
        return self._update(status=text)


def _array(image) -> np.ndarray | None:
    """(1, C, H, W) on [-1, 1] -> H x W x 3 uint8."""
    if image is None:
        return None
    a = to_uint8(image[0]).permute(1, 2, 0).cpu().numpy()
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a

