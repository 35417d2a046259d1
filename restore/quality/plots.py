"""Figures: quality against network calls (the Nested Diffusion paper's Fig. 4 view)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (("psnr", "PSNR (dB), higher is better"), ("lpips", "LPIPS, lower is better"))


def plot_anytime(
    curves: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, title: str = ""
) -> None:
    """Write a two-panel PNG: PSNR and LPIPS against network calls (NFE).

    curves: label -> {"nfe": [...], "psnr": [...], "lpips": [...]}, optionally "psnr_std" and
    "lpips_std" (drawn as bands) and "style": "line" | "points" (points for sparse anytime
    outputs such as Nested's outer results). NaN values (an unavailable metric) are skipped."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (key, label) in zip(axes, PANELS):
        for name, curve in curves.items():
            pairs = [(n, v, s) for n, v, s in zip(curve["nfe"], curve.get(key, []),
                                                   curve.get(f"{key}_std", [math.nan] * len(curve["nfe"])))
                     if v is not None and not math.isnan(v)]
            if not pairs:
                continue
            nfe, values, stds = zip(*pairs)
            marker = "o" if curve.get("style") == "points" else "."
            line = ax.plot(nfe, values, marker=marker, label=name, linewidth=1.5)[0]
            if not all(math.isnan(s) for s in stds):
                lo = [v - (0 if math.isnan(s) else s) for v, s in zip(values, stds)]
                hi = [v + (0 if math.isnan(s) else s) for v, s in zip(values, stds)]
                ax.fill_between(nfe, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_xlabel("network calls (NFE)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
