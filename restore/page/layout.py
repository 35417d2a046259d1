"""The page's layout (Gradio Blocks) and its server: what restore.page.handlers' Page shows, bound to
localhost unless told otherwise, with every file it writes in one temporary folder."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from degradations import TASKS
from restore.page.handlers import Page
from restore.paths import EXAMPLE_IMAGE as EXAMPLE
from restore.settings.model_spec import BUNDLED
from restore.settings.schema import SOLVER_NAMES

MAX_UPLOAD = "20mb"
MODELS = [BUNDLED, "celebahq"]


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
                editor = gr.ImageEditor(label="Input (for inp_mask: paint the missing parts with the brush)",
                                        type="pil", image_mode="RGBA", sources=[], elem_id="input",
                                        brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=24),
                                        transforms=[], layers=False, height=360)
                gr.Examples([[str(EXAMPLE)]], inputs=[upload], outputs=[editor, status], fn=page.load_input,
                            run_on_click=True, cache_examples=False, label="Example (public domain)")
                with gr.Row():
                    task = gr.Dropdown(list(TASKS), value="sr4", label="Task", elem_id="task")
                    mode = gr.Radio(["simulation", "observed"], value="simulation", label="Mode",
                                    info="simulation: the input is clean, degrade then restore; observed: the input is "
                                         "the degraded image")
                reference = gr.Image(label="Reference (observed mode, optional: for the metrics)", type="filepath",
                                     visible=False, height=160)
                with gr.Row():
                    sigma_y = gr.Number(0.0, label="sigma_y ([0, 1] pixel scale)", minimum=0, step=0.01)
                    model = gr.Dropdown([*MODELS, *page.extra_models], value=BUNDLED, label="Model",
                                        allow_custom_value=True, elem_id="model")
                with gr.Row():
                    solver = gr.Dropdown(list(SOLVER_NAMES), value="nested", label="Solver",
                                         info="nested-<name>: anytime; nested = nested-ddrm")
                    seed = gr.Number(0, label="Seed", precision=0)
                with gr.Row():
                    outer = gr.Number(4, label="Outer steps", precision=0, minimum=1, elem_id="outer")
                    inner = gr.Number(5, label="Inner steps", precision=0, minimum=1, elem_id="inner")
                    steps = gr.Number(20, label="DDRM steps", precision=0, minimum=1)
                candidates = gr.Slider(1, 8, value=1, step=1, label="Candidates K", elem_id="candidates")
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column(scale=1):
                status.render()
                latest = gr.Image(label="Latest result", interactive=False, elem_id="latest", height=320)
                gallery = gr.Gallery(label="Candidates", visible=False, columns=4, height=220, allow_preview=False,
                                     elem_id="gallery", interactive=False)
                keep = gr.Button("Keep all", elem_id="keep", visible=False)
                plot = gr.Image(label="PSNR and LPIPS against network calls", interactive=False, elem_id="plot")
                files = gr.File(label="Download: final image and metrics.json", file_count="multiple",
                                interactive=False, elem_id="files")

        upload.upload(page.load_input, upload, [editor, status], queue=False)
        mode.change(lambda m: gr.update(visible=m == "observed"), mode, reference, queue=False)
        inputs = [editor, reference, task, sigma_y, model, solver, outer, inner, steps, candidates, seed, mode]
        start.click(page.run, inputs, [status, latest, gallery, plot, files, keep], concurrency_limit=1,
                    concurrency_id="restore", show_progress="minimal")
        stop.click(page.stop, None, None, queue=False)
        keep.click(page.keep_all, None, None, queue=False)
        gallery.select(page.select, None, [latest, files, status], queue=False)
    demo.queue(default_concurrency_limit=1)
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860, root: str | Path | None = None,
          models: dict[str, Any] | None = None, block: bool = True, quiet: bool = False):
    """Start the page; returns (demo, page, url). The temporary folder is `root` (default a new one).

    Gradio keeps uploads and served files in root/uploads. It reads GRADIO_TEMP_DIR once when it
    is imported, for a folder of its own: set it to root/uploads before importing this module
    (scripts/app.py does), or that one folder lands in the system's temporary folder."""
    root = Path(root or tempfile.mkdtemp(prefix="anytime-restore-page-"))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    page = Page(root, models)
    demo = build(page)
    if not quiet:
        print(f"serving the page on http://{host}:{port} (Ctrl-C to stop); its files live in {root}", file=sys.stderr)
    _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                            max_file_size=MAX_UPLOAD, allowed_paths=[str(root)], ssr_mode=False, share=False,
                            show_error=False, quiet=True, footer_links=[], mcp_server=False, pwa=False,
                            enable_monitoring=False)
    return demo, page, url
