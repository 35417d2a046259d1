"""Figures for a trained prior's model card: the loss curve and a grid of unconditional samples.

    python scripts/prior_card.py --loss .train/run/loss.csv --model data/models/natural-ddpm

Samples use diffusers' DDIM scheduler (Song et al. 2021, eta = 0, 50 steps) from a fixed seed.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from diffusers import DDIMScheduler  # noqa: E402

from restore.io.images import save_image  # noqa: E402
from restore.models.prior import load_prior  # noqa: E402
from restore.paths import MODELS_DIR  # noqa: E402


def loss_curve(csv_path: Path, out: Path) -> None:
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    loss = [float(r["loss"]) for r in rows]
    smooth, value = [], loss[0]
    for v in loss:
        value = 0.9 * value + 0.1 * v
        smooth.append(value)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(steps, loss, alpha=0.3, label="batch loss")
    ax.plot(steps, smooth, label="moving average")
    ax.set_yscale("log")
    ax.set_xlabel("training step (batch 32, 128x128 crops)")
    ax.set_ylabel("epsilon MSE")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


@torch.no_grad()
def samples(model: str, out: Path, count: int, size: int, steps: int, seed: int) -> None:
    prior = load_prior(model)
    scheduler = DDIMScheduler(num_train_timesteps=len(prior.alphas_cumprod), beta_start=1e-4, beta_end=0.02,
                              beta_schedule="linear", clip_sample=False, set_alpha_to_one=True)
    scheduler.set_timesteps(steps)
    x = torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed))
    for t in scheduler.timesteps:
        eps = prior(x, torch.full((count,), int(t)))
        x = scheduler.step(eps, t, x, eta=0.0).prev_sample
    rows = [torch.cat(list(x[i:i + 4]), dim=2) for i in range(0, count, 4)]
    save_image(torch.cat(rows, dim=1)[None].clamp(-1, 1), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loss", type=Path, required=True, help="loss.csv written by train_prior.py")
    parser.add_argument("--model", default="natural-ddpm")
    parser.add_argument("--out", type=Path, default=None, help="default: the model folder")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out or Path(args.model)
    if not out.is_dir():
        out = MODELS_DIR / args.model
    loss_curve(args.loss, out / "loss.png")
    samples(args.model, out / "samples.png", args.count, args.size, args.steps, args.seed)
    print(f"wrote {out / 'loss.png'} and {out / 'samples.png'}")


if __name__ == "__main__":
    main()
