"""What a restoration hands back: its anytime steps (each with every candidate's preview and
scores) and the result object that reports and front ends read. Data only: no sampling, no files.

Candidates are numbered from 1 here and everywhere a person sees them (files, metrics.json, the
command line, the page); `solvers.Run` counts them from 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


def num(value: torch.Tensor | float | None) -> float | None:
    """A JSON-ready float: None for None, NaN and inf."""
    if value is None:
        return None
    v = float(value)
    return None if math.isnan(v) or math.isinf(v) else round(v, 6)


@dataclass
class Candidate:
    """One candidate's preview at one step: number (from 1), image (1, C, H, W) on [-1, 1] on the
    CPU (None for the steps before a resume: their images are the step files), and its scores
    (None without a reference; lpips also when unavailable)."""

    number: int
    image: torch.Tensor | None
    psnr: float | None = None
    ssim: float | None = None
    lpips: float | None = None

    def scores(self) -> dict[str, float | None]:
        return {"psnr": self.psnr, "ssim": self.ssim, "lpips": self.lpips}


@dataclass
class Step:
    """One anytime output: an outer result (Nested DDRM) or a network call's prediction (DDRM).

    index: 1-based; nfe: network calls made so far (per candidate); t: the diffusion time it was
    made at; seconds: restoration time so far (scoring excluded); candidates: every candidate's
    preview; lead: the number of the candidate shown as the result (the one chosen after this
    step, else the last chosen, else the lowest number). image, psnr, ssim, lpips: the lead's.
    spread: with several candidates, where they disagree (H, W) on the CPU (restore.quality.spread;
    None before a resume); spread_summary: its mean over the image, inside and outside the
    unmeasured region."""

    index: int
    nfe: int
    t: int
    seconds: float
    candidates: list[Candidate]
    lead: int = 1
    spread: torch.Tensor | None = None
    spread_summary: dict[str, float | None] | None = None

    def candidate(self, number: int) -> Candidate:
        for c in self.candidates:
            if c.number == number:
                return c
        raise KeyError(f"step {self.index} has no candidate {number}")

    @property
    def image(self) -> torch.Tensor | None:
        return self.candidate(self.lead).image

    @property
    def psnr(self) -> float | None:
        return self.candidate(self.lead).psnr

    @property
    def ssim(self) -> float | None:
        return self.candidate(self.lead).ssim

    @property
    def lpips(self) -> float | None:
        return self.candidate(self.lead).lpips

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.index, "nfe": self.nfe, "t": self.t, **self.candidate(self.lead).scores(),
                "seconds": round(self.seconds, 4), "lead": self.lead,
                "candidates": [{"candidate": c.number, **c.scores()} for c in self.candidates],
                **({} if self.spread_summary is None else {"spread": self.spread_summary})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Step":
        """A step saved by as_dict (images are not saved: None)."""
        cands = [Candidate(c["candidate"], None, c["psnr"], c["ssim"], c["lpips"]) for c in d["candidates"]]
        return cls(d["step"], d["nfe"], d["t"], d["seconds"], cands, d["lead"], spread_summary=d.get("spread"))


@dataclass
class RestoreResult:
    """A restoration as it stands (complete, stopped or still running). Images are (1, C, H, W)
    CPU tensors on [-1, 1].

    final: the lead candidate's latest result; finals: every candidate left, by number;
    observation: the measurement as an image (low-resolution, grey, noisy, blurred or masked);
    measurement: y, (1, m); reference: the clean image scored against (None in observed mode
    without a reference); baselines: {"pinv", "bicubic" (sr tasks)}; steps: the anytime outputs;
    per_call: every call's {"nfe", "kind", "t", "candidate", "psnr", "lpips"}; metrics: the
    JSON-ready summary written to metrics.json; notes: the one-line notices."""

    final: torch.Tensor
    finals: dict[int, torch.Tensor]
    observation: torch.Tensor
    measurement: torch.Tensor
    reference: torch.Tensor | None
    baselines: dict[str, torch.Tensor]
    steps: list[Step]
    per_call: list[dict[str, Any]]
    metrics: dict[str, Any]
    settings: Any
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """"running", "complete", "interrupted" or "time budget"."""
        return self.metrics["status"]

    @property
    def stopped_early(self) -> bool:
        return bool(self.metrics.get("stopped_early"))

    @property
    def chosen(self) -> int:
        """The number of the candidate `final` shows."""
        return self.metrics["chosen"]

    @property
    def records(self) -> list[Step]:
        """Alias of `steps`."""
        return self.steps
