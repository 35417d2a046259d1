"""What the page shows and reads beside the gallery while a run steers several candidates: the
heat map of where they disagree, and the canvas a person paints regions on (read back as masks
at the result's size)."""

from __future__ import annotations

import gradio as gr
import numpy as np

from restore.io.images import to_uint8
from restore.outputs.figures import spread_map
from restore.page.limits import Refused


def spread_update(step):
    """The heat map of where the candidates disagree (restore.outputs.figures.spread_map), shown
    beside the gallery while there are several candidates."""
    if step.spread is None:
        return gr.update(value=None, visible=False)
    return gr.update(value=np.asarray(spread_map(step.spread)), visible=True)


def region_canvas(image):
    """The region canvas with the latest result as its background, nothing painted."""
    a = to_uint8(image[0]).permute(1, 2, 0).cpu().numpy()
    a = np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a
    return gr.update(value={"background": a, "layers": [], "composite": a}, visible=True)


def painted(editor, shown: tuple[int, int] | None) -> np.ndarray | None:
    """The painted pixels of the region canvas (H, W) bool at the result's size, or None when
    nothing is painted (or the canvas is not the result's size: a stale or forged value)."""
    if not isinstance(editor, dict) or shown is None:
        return None
    mask = np.zeros(shown, bool)
    for layer in editor.get("layers") or []:
        if layer is None or isinstance(layer, Refused):
            continue
        a = np.asarray(layer.convert("RGBA"))[..., 3] > 0
        if a.shape == mask.shape:
            mask |= a
    return mask if mask.any() else None
