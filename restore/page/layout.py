"""The page's layout (Gradio Blocks) and its server: what restore.page.handlers' Page shows, bound to
localhost unless told otherwise, with every file it writes in one temporary folder.

Nothing is served by its path from that folder (no `allowed_paths`): the browser gets only Gradio's
uploads and its cache copies of what a handler hands it; and a file value a client sends is
honoured only if that browser uploaded the file or was handed it (restore.page.uploads, which
serve installs). The number fields, the slider and the
model menu pass their values to the handler as sent, which says in the status line what is wrong
with one (Gradio's own checks would end the event with a bare error); the editor refuses, from the
file's header, an image over the page's pixel limit before Gradio decodes it."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from degradations import TASKS
from restore.errors import UsageError
from restore.page.handlers import Page
from restore.page.limits import MAX_CALLS, MAX_CANDIDATES_PAGE, MAX_MODELS, MAX_PIXELS_PAGE, Refused
from restore.page.uploads import BrowserCookie, Received, guard
from restore.paths import EXAMPLE_IMAGE as EXAMPLE
from restore.settings.model_spec import BUNDLED
from restore.settings.schema import SOLVER_NAMES

MAX_UPLOAD = "20mb"


def as_sent(component):
    """`component` with its value reaching the handler as sent (None when empty, out of range as
    typed, any name in a menu): the handler says in the status line what is wrong with it, where
    Gradio's own checks would end the event with a bare error. (The instance's method is replaced:
    a subclass of a Gradio component would make Gradio write a .pyi file beside this module.)"""
    component.preprocess = lambda payload: payload
    return component


def bounded(editor: gr.ImageEditor, max_pixels: int) -> gr.ImageEditor:
    """`editor` putting a restore.page.handlers.Refused in place of an image whose header claims
    more than `max_pixels` pixels, instead of decoding it (Gradio decodes the editor's images before
    the handler runs)."""
    convert = editor.convert_and_format_image

    def guarded(file, flatten_on_white: bool = False):
        if file is not None:
            from io import BytesIO

            from PIL import Image

            try:
                with Image.open(file.path if hasattr(file, "path") else BytesIO(file)) as im:
                    width, height = im.size  # the header only
            except Exception:  # noqa: BLE001 - not an image: Gradio's own reading says so
                width = height = 0
            if width * height > max_pixels:
                name = Path(getattr(file, "orig_name", None) or "the image").name
                return Refused(name, width, height, max_pixels)
        return convert(file, flatten_on_white=flatten_on_white)

    editor.convert_and_format_image = guarded
    return editor


def build(page: Page) -> gr.Blocks:
    """The Gradio Blocks of the page."""
    with gr.Blocks(title="Anytime restoration", analytics_enabled=False) as demo:
        gr.Markdown("## Anytime restoration\nNested Diffusion around DDRM (or DDNM, DiffPIR, DPS): every outer step is a whole restoration. "
                    "Watch it sharpen, stop when it is good enough, steer it by choosing among candidates.")
        status = gr.Markdown("Upload an image or pick the example, choose a task, press Start.", elem_id="status",
                             render=False)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label=f"Image to restore (up to {MAX_UPLOAD.upper()})", type="filepath",
                                 elem_id="upload", height=90)
                editor = bounded(gr.ImageEditor(label="Input (for inp_mask: paint the missing parts with the brush)",
                                                type="pil", image_mode="RGBA", sources=[], elem_id="input",
                                                brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed",
                                                               default_size=24),
                                                transforms=[], layers=False, height=360), page.max_pixels)
                gr.Examples([[str(EXAMPLE)]], inputs=[upload], outputs=[editor, status], fn=page.load_input,
                            run_on_click=True, cache_examples=False, label="Example (public domain)",
                            elem_id="example")
                with gr.Row():
                    # deblur needs a kernel file, which the page does not take (the command line does)
                    task = gr.Dropdown([t for t in TASKS if t != "deblur"], value="sr4", label="Task", elem_id="task")
                    mode = gr.Radio(["simulation", "observed"], value="simulation", label="Mode",
                                    info="simulation: the input is clean, degrade then restore; observed: the input is "
                                         "the degraded image")
                # image_mode None: the upload's path as it is (the handler decodes it within max_pixels)
                reference = gr.Image(label="Reference (observed mode, optional: for the metrics)", type="filepath",
                                     image_mode=None, visible=False, height=160)
                with gr.Row():
                    sigma_y = as_sent(gr.Number(0.0, label="sigma_y ([0, 1] pixel scale)", minimum=0, step=0.01,
                                                elem_id="sigma_y"))
                    model = as_sent(gr.Dropdown(page.models.menu, value=BUNDLED, label="Model",
                                                allow_custom_value=page.models.allow_any_model, elem_id="model"))
                with gr.Row():
                    solver = gr.Dropdown(list(SOLVER_NAMES), value="nested", label="Solver",
                                         info="nested-<name>: anytime; nested = nested-ddrm")
                    seed = as_sent(gr.Number(0, label="Seed", precision=0, elem_id="seed"))
                with gr.Row():
                    outer = as_sent(gr.Number(4, label="Outer steps", precision=0, minimum=1, elem_id="outer"))
                    inner = as_sent(gr.Number(5, label="Inner steps", precision=0, minimum=1, elem_id="inner"))
                    steps = as_sent(gr.Number(20, label="DDRM steps", precision=0, minimum=1, elem_id="steps"))
                gr.Markdown(f"At most {page.max_calls} network calls per candidate (outer x inner, or DDRM steps).")
                candidates = as_sent(gr.Slider(1, page.max_candidates, value=1, step=1, label="Candidates K",
                                               elem_id="candidates"))
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column(scale=1):
                status.render()
                latest = gr.Image(label="Latest result", interactive=False, elem_id="latest", height=320)
                gallery = gr.Gallery(label="Candidates", visible=False, columns=4, height=220, allow_preview=False,
                                     elem_id="gallery", interactive=False)
                regions = bounded(gr.ImageEditor(
                    label="Steer by region: paint on the latest result, then click the candidate to keep there",
                    type="pil", image_mode="RGBA", sources=[], elem_id="regions", visible=False,
                    brush=gr.Brush(colors=["#00ff88"], color_mode="fixed", default_size=8),
                    transforms=[], layers=False, height=300), page.max_pixels)
                spread = gr.Image(label="Where the candidates disagree (per-pixel spread, with its scale)",
                                  visible=False, interactive=False, elem_id="spread", height=220)
                keep = gr.Button("Keep all", elem_id="keep", visible=False)
                plot = gr.Image(label="PSNR and LPIPS against network calls", interactive=False, elem_id="plot")
                files = gr.File(label="Download: final image and metrics.json", file_count="multiple",
                                interactive=False, elem_id="files")

        # decoded in the queue, one upload at a time (its own slot: a restoration does not hold it up)
        upload.upload(page.load_input, upload, [editor, status], concurrency_limit=1, concurrency_id="decode")
        mode.change(lambda m: gr.update(visible=m == "observed"), mode, reference, queue=False)
        inputs = [editor, reference, task, sigma_y, model, solver, outer, inner, steps, candidates, seed, mode]
        start.click(page.run, inputs, [status, latest, gallery, plot, files, keep, spread], concurrency_limit=1,
                    concurrency_id="restore", show_progress="minimal")
        stop.click(page.stop, None, None, queue=False)
        keep.click(page.keep_all, None, None, queue=False)
        gallery.select(page.select, regions, [latest, files, status, regions], queue=False, show_progress="hidden")
        # the region canvas follows each step by a quick event of its own (on the spread map, which
        # only the Start handler changes): as an output of the running Start handler it would be
        # pending, and a pending editor takes no brush strokes
        spread.change(page.canvas, None, regions, queue=False, show_progress="hidden")
    demo.queue(default_concurrency_limit=1)
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860, root: str | Path | None = None,
          models: dict[str, Any] | None = None, block: bool = True, quiet: bool = False, *,
          specs: Iterable[str] = (), warm: dict[str, Any] | None = None, allow_any_model: bool = False,
          max_models: int = MAX_MODELS, max_calls: int = MAX_CALLS, max_candidates: int = MAX_CANDIDATES_PAGE,
          max_pixels: int = MAX_PIXELS_PAGE):
    """Start the page; returns (demo, page, url). The temporary folder is `root` (default a new one).
    models, specs, warm, allow_any_model and the max_* limits: restore.page.handlers.Page's.

    Gradio keeps uploads and served files in root/uploads. It reads GRADIO_TEMP_DIR once when it
    is imported, for a folder of its own: set it to root/uploads before importing this module
    (scripts/app.py does), or that one folder lands in the system's temporary folder. Gradio hands
    the browser copies of the files a handler returns only from the system's temporary folder (or
    the working directory): `root` must lie there (the default does)."""
    root = Path(root or tempfile.mkdtemp(prefix="anytime-restore-page-"))
    if not any(root.resolve().is_relative_to(Path(p).resolve()) for p in (tempfile.gettempdir(), os.getcwd())):
        raise UsageError(f"the page's folder must lie in the system's temporary folder ({tempfile.gettempdir()}) "
                         f"or the working directory, got {root}")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    page = Page(root, models, specs=specs, warm=warm, allow_any_model=allow_any_model, max_models=max_models,
                max_calls=max_calls, max_candidates=max_candidates, max_pixels=max_pixels)
    demo = build(page)
    received = guard(demo, Received())  # a file value is honoured only if its browser sent or was handed it
    if not quiet:
        print(f"serving the page on http://{host}:{port} (Ctrl-C to stop); its files live in {root}", file=sys.stderr)
    # no allowed_paths: nothing of root is served by its path (only Gradio's uploads and cache copies)
    _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                            max_file_size=MAX_UPLOAD, ssr_mode=False, share=False,
                            show_error=False, quiet=True, footer_links=[], mcp_server=False, pwa=False,
                            enable_monitoring=False, run_history=False,
                            app_kwargs={"middleware": [Middleware(BrowserCookie, received=received)]})
    return demo, page, url
