"""What the local web page does (scripts/app.py, `anytime-app`; its layout: restore.page.layout):
watch a restoration sharpen, stop it, draw a mask, choose among candidates. The Start button's
handler steps a `restore.restoration.session.Restoration` through `restore.outputs.live.run_steps`
(no second sampling loop); Stop, a click on a candidate and "Keep all" are quick events that steer
the run in progress.

One restoration runs at a time (the model needs the machine); other jobs wait in Gradio's queue,
which shows their place. With several candidates the run waits after each step for a click on a
candidate (every candidate continues from it) or "Keep all"; after DECISION_TIMEOUT seconds
without either it stops and keeps its latest result. After the last step a click on a candidate
makes it the final image. Everything a run writes (uploads, the output folder with final.png and
metrics.json, plots) lives under one temporary folder, removed when the page stops.
"""

from __future__ import annotations

import queue
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from restore.errors import UsageError
from restore.io.images import load_image, to_uint8
from restore.models.loading import quiet_loading
from restore.models.prior import load_prior
from restore.outputs.figures import metrics_figure
from restore.outputs.live import LiveFolder, run_steps
from restore.restoration.job import prepare_job
from restore.restoration.session import Cancelled, Restoration
from restore.settings.build import resolve_device
from restore.settings.compose import compose
from restore.settings.model_spec import BUNDLED

DECISION_TIMEOUT = 600.0
MAX_KEPT = 16  # finished runs kept in memory (one per browser session, the oldest dropped first)


@dataclass
class Active:
    """A browser session's restoration: the session, its folder, the decision it waits for."""

    session: Any
    folder: Any
    shown: list[int] = field(default_factory=list)  # candidate numbers, in the gallery's order
    decisions: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    waiting: bool = False


class Page:
    """The page's state: the temporary folder, the loaded models, the runs by browser session.

    models: extra choices for the model menu, name -> a loaded prior (tests use a slow tiny one)."""

    def __init__(self, root: str | Path, models: dict[str, Any] | None = None):
        self.root = Path(root)
        self.extra_models = dict(models or {})
        self.priors: dict[str, Any] = dict(self.extra_models)
        self.active: dict[str, Active] = {}
        self.lock = threading.Lock()
        self.count = 0

    # -- the run ------------------------------------------------------------------------------
    def run(self, editor, reference, task, sigma_y, model, solver, outer, inner, steps, candidates, seed, mode,
            request: gr.Request):
        """The Start button: a generator of page updates (status, latest, gallery, plot, files)."""
        key = request.session_hash
        with self.lock:
            self.count += 1
            folder = self.root / "runs" / f"{self.count:04d}"
        try:
            folder.mkdir(parents=True)
            prior = self._prior(model or BUNDLED)
            fixed = int(prior.image_size) if getattr(prior, "fixed_size", False) else None
            image = self._save_input(editor, folder, task, mode, fixed)
            chosen = dict(task=task, sigma_y=float(sigma_y), model=model or BUNDLED, solver=solver, outer=int(outer),
                          inner=int(inner), steps=int(steps), seed=int(seed), candidates=int(candidates),
                          mask=str(folder / "mask.png") if task == "inp_mask" else None)
            settings = compose(chosen)  # eta, outer grid: the measured ones
            job = prepare_job(image, settings, observed=mode == "observed", reference=reference, model=prior)
            session = Restoration(job, score_calls=False)  # the page shows each step's scores
        except (UsageError, OSError) as error:
            shutil.rmtree(folder, ignore_errors=True)
            yield self._message(f"**Cannot start:** {error}")
            return
        active = Active(session, LiveFolder(folder / "out"))
        with self.lock:  # keep the last run of each browser session (for a final pick), within reason
            finished = [k for k, a in self.active.items() if k != key and a.session.status != "running"]
            for k in finished[: max(0, len(self.active) - MAX_KEPT)]:
                del self.active[k]
            self.active[key] = active
        notes = "".join(f"\n\n_note: {n}_" for n in job.notes)
        yield self._update(status=f"Running: {session.nfe_total} network calls planned.{notes}", files=None,
                           gallery=self._gallery_update([], active), latest=None, plot=None)
        try:
            for step in run_steps(session, active.folder):
                result = session.result()
                plot = self._plot(result, folder)
                several = len(session.alive) > 1
                active.shown = list(session.alive)
                gallery = self._gallery_update(step.candidates if several else [], active)
                status = self._status(session, step)
                if several and not session.done:
                    status += "\n\n**Click a candidate to continue every candidate from it, or Keep all.**"
                waiting = several and not session.done
                yield self._update(status=status, latest=_array(step.image), gallery=gallery, plot=plot,
                                   keep=gr.update(visible=waiting))
                if waiting:
                    self._decide(active)
                    yield self._update(keep=gr.update(visible=False))
        except Cancelled:
            yield self._message("Stopped before the first result: nothing to keep.")
            return
        result = active.folder.finish(session)
        yield self._update(status=self._status(session, result.steps[-1], final=True),
                           latest=_array(result.final), files=self._files(active), plot=self._plot(result, folder),
                           gallery=self._gallery_update(result.steps[-1].candidates if len(result.finals) > 1 else [],
                                                        active, final=True))

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
        elif isinstance(decision, int):
            active.session.choose(decision)

    # -- quick events -------------------------------------------------------------------------
    def stop(self, request: gr.Request) -> None:
        active = self.active.get(request.session_hash)
        if active is not None and active.session.status == "running":
            active.session.stop()
            if active.waiting:
                active.decisions.put("stop")

    def keep_all(self, request: gr.Request) -> None:
        active = self.active.get(request.session_hash)
        if active is not None and active.waiting:
            active.decisions.put(None)

    def select(self, evt: gr.SelectData, request: gr.Request):
        """A click on a candidate: continue from it (while waiting), or pick it as the final image
        (after the last step). Returns updates for the latest image, the files and the status."""
        active = self.active.get(request.session_hash)
        if active is None or evt.index is None or evt.index >= len(active.shown):
            return gr.update(), gr.update(), gr.update()
        number = active.shown[evt.index]
        if active.waiting:
            active.decisions.put(number)
            return gr.update(), gr.update(), gr.update()
        session = active.session
        if session.status != "complete" or number not in session.alive:
            return gr.update(), gr.update(), gr.update()
        session.choose(number)
        result = active.folder.finish(session)
        return _array(result.final), self._files(active), self._status(session, result.steps[-1], final=True)

    def load_input(self, path):
        """An upload (or the example): read and checked here, then shown in the editor for the
        mask; a file that is not an image gets a message and clears the editor."""
        if not path:
            return None, "Upload an image or pick the example, choose a task, press Start."
        try:
            x = load_image(path, mode="RGB")
        except UsageError as error:
            reason = str(error).rsplit(": ", 1)[-1]
            return None, f"**{Path(path).name} is not an image** ({reason}). Upload a PNG, JPEG, TIFF, BMP or WebP file."
        h, w = x.shape[-2:]
        return (to_uint8(x[0]).permute(1, 2, 0).numpy(),
                f"Loaded {Path(path).name} ({w}x{h}). Choose a task and press Start.")

    # -- helpers ------------------------------------------------------------------------------
    def _prior(self, spec: str):
        """A loaded prior for the model menu's entry (kept for later runs)."""
        if spec not in self.priors:
            with quiet_loading():
                self.priors[spec] = load_prior(spec, device=resolve_device("auto"))
        return self.priors[spec]

    def _save_input(self, editor, folder: Path, task: str, mode: str, size: int | None) -> Path:
        """The editor's image as input.png, and for inp_mask the brush strokes as mask.png (black =
        missing), cropped and resized as the image will be (to size x size for a model trained at
        one size; the image's own size otherwise)."""
        from PIL import Image

        background = (editor or {}).get("background") if isinstance(editor, dict) else editor
        if background is None:
            raise UsageError("upload an image (or pick the example) first")
        image = background.convert("RGB")
        path = folder / "input.png"
        image.save(path)
        if task == "inp_mask":
            strokes = np.zeros(image.size[::-1], bool)
            for layer in (editor or {}).get("layers") or []:
                if layer is not None:
                    strokes |= np.asarray(layer.convert("RGBA"))[..., 3] > 0
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
            scores = [f"{c.psnr:.2f} dB" if c.psnr is not None else "", f"LPIPS {c.lpips:.3f}" if c.lpips is not None else ""]
            items.append((_array(c.image), f"candidate {c.number}" + (": " + ", ".join(s for s in scores if s)
                                                                         if any(scores) else "")))
        label = "Candidates: click one to make it the final image" if final else "Candidates"
        return gr.update(value=items, visible=bool(items), label=label, selected_index=None)

    def _plot(self, result, folder: Path):
        if result.reference is None:
            return None
        path = folder / f"plot_{len(result.steps):03d}.png"
        metrics_figure(result, path)
        return str(path)

    def _files(self, active: Active) -> list[str]:
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
        order = ("status", "latest", "gallery", "plot", "files", "keep")
        return tuple(values[k] if k in values else gr.update() for k in order)

    def _message(self, text: str) -> tuple:
        return self._update(status=text)


def _array(image) -> np.ndarray | None:
    """(1, C, H, W) on [-1, 1] -> H x W x 3 uint8."""
    if image is None:
        return None
    a = to_uint8(image[0]).permute(1, 2, 0).cpu().numpy()
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a
