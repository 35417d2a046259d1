"""Where the candidates disagree, measured: how well the per-pixel spread of K candidates
(restore.quality.spread) predicts the error of their mean, on a folder of clean images.

    python -m restore.studies.spread --data heldout/ --tasks inp_box,inp_random,color,sr4 \
        --candidates 4 --out spread.json

Each image and task: one restoration of K candidates (the task's measured config with the
bundled prior; sr4 with sigma_y 0.05, the others at their config's noise), no steering. After every
anytime step: the spread map, and the error of the candidates' mean against the clean image
(per pixel, the root mean square over colour, on [0, 1]), over the unmeasured region for inpainting
(its measured pixels are known: spread and error 0 there) and over the image otherwise.
Reported per task and step: the rank
(Spearman) correlation of the two over the pixels of each image, averaged over images; at the
last step, a calibration table: pixels pooled over images in spread deciles, each bin's mean
spread and root-mean-square error. Were the candidates exact posterior samples, the error of
their mean would be sqrt(1 + 1/K) times their spread (1.118 for K = 4): the ratio column says how
far the spread is from that.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from scipy.stats import spearmanr

from restore.evaluation.images import find_images
from restore.io.atomic import write_json
from restore.models.memory import keep_freed_memory
from restore.models.prior import load_prior
from restore.quality.spread import spread
from restore.restoration.job import prepare_job
from restore.restoration.session import Restoration
from restore.settings.compose import compose
from restore.settings.model_spec import BUNDLED

NOISY = {"sr4": 0.05}  # the tasks measured with measurement noise beyond their config's
BINS = 10


def run_one(path: Path, task: str, candidates: int, prior, device: str) -> list[dict]:
    """Every step's (spread map, error map of the candidates' mean), both (H, W) on [0, 1]."""
    given = {"task": task, "model": BUNDLED, "candidates": candidates, **({"sigma_y": NOISY[task]} if task in NOISY else {})}
    job = prepare_job(str(path), compose(given), model=prior, device=device)
    session = Restoration(job, score_calls=False)
    ref = (job.reference[0].cpu().double() + 1) / 2
    steps = []
    while (step := session.step()) is not None:
        x0 = torch.cat([c.image for c in step.candidates])
        mean = (x0.double().clamp(-1, 1) + 1) / 2
        error = (mean.mean(0) - ref).square().mean(0).sqrt()
        where = session.unmeasured  # inpainting: the measured pixels are known exactly (spread and error 0)
        keep = (lambda m: m.flatten()) if where is None else (lambda m: m[where])
        steps.append({"step": step.index, "nfe": step.nfe, "spread": keep(spread(x0).double()), "error": keep(error)})
    return steps


def summarise(runs: list[list[dict]], candidates: int) -> dict:
    per_step = []
    for j in range(len(runs[0])):
        rhos = [float(spearmanr(r[j]["spread"].flatten(), r[j]["error"].flatten()).statistic) for r in runs]
        mean = sum(rhos) / len(rhos)
        sd = math.sqrt(sum((v - mean) ** 2 for v in rhos) / max(1, len(rhos) - 1))
        per_step.append({"step": runs[0][j]["step"], "nfe": runs[0][j]["nfe"], "spearman": round(mean, 4),
                         "spearman_sd": round(sd, 4),
                         "mean_spread": round(sum(float(r[j]["spread"].mean()) for r in runs) / len(runs), 5),
                         "rmse_of_mean": round(math.sqrt(sum(float(r[j]["error"].square().mean()) for r in runs) / len(runs)), 5)})
    s = torch.cat([r[-1]["spread"].flatten() for r in runs])
    e = torch.cat([r[-1]["error"].flatten() for r in runs])
    order = s.argsort()
    bins = []
    for chunk in order.tensor_split(BINS):
        ms, rmse = float(s[chunk].mean()), float(e[chunk].square().mean().sqrt())
        bins.append({"mean_spread": round(ms, 5), "rmse": round(rmse, 5), "ratio": round(rmse / ms, 3) if ms > 0 else None})
    return {"steps": per_step, "calibration": bins, "ideal_ratio": round(math.sqrt(1 + 1 / candidates), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="a folder of clean images")
    parser.add_argument("--tasks", default="inp_box,inp_random,color,sr4")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="the summary (JSON)")
    parser.add_argument("--plot", type=Path, help="also the calibration plot (PNG): error against spread, by task")
    args = parser.parse_args(argv)
    keep_freed_memory()
    prior = load_prior(BUNDLED, device=args.device)
    images = find_images(args.data)
    report = {"data": str(args.data), "images": len(images), "candidates": args.candidates, "tasks": {}}
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        runs = []
        for i, path in enumerate(images, 1):
            runs.append(run_one(args.data / path, task, args.candidates, prior, args.device))
            print(f"{task}: {i}/{len(images)} {path}", flush=True)
        report["tasks"][task] = summarise(runs, args.candidates)
        write_json(args.out, report)  # after every task: a partial report survives an interruption
    if args.plot:
        plot_calibration(report, args.plot)
    return 0


def plot_calibration(report: dict, path: Path) -> None:
    """Error of the candidates' mean against their spread, in spread deciles, one line per task,
    with the line an exact posterior sampler would follow (sqrt(1 + 1/K) times the spread)."""
    from restore.quality.plots import plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    top = 0.0
    for task, summary in report["tasks"].items():
        bins = summary["calibration"]
        ax.plot([b["mean_spread"] for b in bins], [b["rmse"] for b in bins], marker="o", label=task)
        top = max(top, max(b["mean_spread"] for b in bins))
    k = report["candidates"]
    ax.plot([0, top], [0, top * math.sqrt(1 + 1 / k)], "k--", linewidth=1, label=f"exact sampler (K = {k})")
    ax.set_xlabel("spread of the candidates (per-pixel std, [0, 1])")
    ax.set_ylabel("RMS error of their mean")
    ax.set_title(f"{report['images']} images, K = {k}, last step (20 calls)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
