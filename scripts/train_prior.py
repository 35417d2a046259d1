"""Train the project's bundled natural-image DDPM prior (issue 3).

The model is a diffusers `UNet2DModel`, fully convolutional (no attention anywhere), trained with
exactly the CelebA-HQ DDPM schedule (linear betas 1e-4 .. 0.02, T = 1000, epsilon prediction;
Ho et al. 2020, eq. 14 loss), so every code path of the solvers is the one used with the real
model. Because it has no attention and 4 down-samplings, the same weights run on any image whose
sides are multiples of 16, in particular 256x256 faces.

Training data: natural photographs that ship inside packages (no download), see `SOURCES`.
Every photo showing a human face is excluded: faces are the held-out evaluation domain.

    python scripts/train_prior.py build-data --out .train/photos.npz
    python scripts/train_prior.py train --data .train/photos.npz --out .train/run --minutes 120

`train` is seedable and resumable (`--resume` continues from `<out>/checkpoint.pt`), shows a
progress bar with the loss, appends the loss to `<out>/loss.csv` and writes the EMA weights as a
diffusers folder `<out>/model/` (fp16 safetensors + config.json) at the end and at every checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

# Where each training photo comes from (all installed from package registries, none downloaded):
# - opencv-doc (Debian package, /usr/share/doc/opencv-doc/examples/data): OpenCV's sample images,
#   distributed under OpenCV's licence (Apache-2.0 / BSD-3 for older files; see the package's
#   copyright file). Excluded for faces: messi5, basketball1/2, left*/right* (a person holds the
#   chessboard), lena (already removed by Debian). Excluded as synthetic or grey: logos, charts,
#   text, chessboards, starry_night (a painting), pic1-6, HappyFish, ml.
# - scikit-image wheel (skimage/data): BSD-3 licensed package; the photos are public domain or
#   CC0 per skimage's data README (chelsea, coffee, rocket: CC0 / public domain; hubble_deep_field:
#   NASA public domain; motorcycle: Middlebury stereo data set, free for research use).
#   Excluded for faces: astronaut, camera (the cameraman).
# - scikit-learn wheel (sklearn/datasets/images): china.jpg, flower.jpg, CC-BY licensed photos
#   (see sklearn/datasets/images/README.txt).
OPENCV = "/usr/share/doc/opencv-doc/examples/data"
SOURCES = {
    "opencv-doc": [
        "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg",
        "building.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg", "graf1.png",
        "home.jpg", "leuvenA.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png", "stuff.jpg",
    ],
    "scikit-image": ["chelsea.png", "hubble_deep_field.jpg", "motorcycle_left.png", "rocket.jpg"],
    "scikit-learn": ["china.jpg", "flower.jpg"],
}
# Non-face photos held out of training, used for evaluation next to the face crops.
HELD_OUT = {
    "opencv-doc": ["butterfly.jpg", "squirrel_cls.jpg"],
    "scikit-image": ["coffee.png"],
}

# The architecture: 5 resolution levels, 1 ResNet block each, no attention (add_attention=False).
ARCHITECTURE = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(32, 64, 128, 192, 192),
    down_block_types=("DownBlock2D",) * 5,
    up_block_types=("UpBlock2D",) * 5,
    layers_per_block=1,
    add_attention=False,
    norm_num_groups=16,
    norm_eps=1e-6,
    freq_shift=1,
    flip_sin_to_cos=False,
    downsample_padding=0,
)
# The CelebA-HQ DDPM schedule (Ho et al. 2020).
SCHEDULE = dict(
    num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
    prediction_type="epsilon", clip_sample=False,
)


def source_dir(source: str) -> str:
    if source == "opencv-doc":
        return OPENCV
    if source == "scikit-image":
        import skimage

        return os.path.join(os.path.dirname(skimage.__file__), "data")
    if source == "scikit-learn":
        import sklearn.datasets

        return os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    raise KeyError(source)


def photo_paths(table: dict[str, list[str]]) -> list[str]:
    paths = []
    for source, names in table.items():
        for name in names:
            path = os.path.join(source_dir(source), name)
            if not os.path.exists(path):
                raise SystemExit(
                    f"error: training photo {path} not found; install the '{source}' package "
                    "(apt-get install opencv-doc; pip install scikit-image scikit-learn)"
                )
            paths.append(path)
    return paths


def build_data(out: Path) -> None:
    """Pack the training photos, each at full, 1/2 and 1/4 scale (antialiased), into one npz."""
    arrays = {}
    for path in photo_paths(SOURCES):
        image = Image.open(path).convert("RGB")
        stem = Path(path).stem
        for level in range(3):
            scaled = image.reduce(2**level) if level else image
            if min(scaled.size) >= 64:
                arrays[f"{stem}@{level}"] = np.asarray(scaled, dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    print(f"wrote {len(arrays)} images ({len(arrays) // 3}+ photos x 3 scales) to {out}")


class CropSampler:
    """Random crops (random position, zoom 1..1.5 source pixels per output pixel, horizontal flip)
    for a whole batch at once: all images sit in one (1, 3, N, H_max, W_max) volume and a 3-D
    `grid_sample` reads crop i from slice idx_i (the depth coordinate hits slice centres exactly)."""

    def __init__(self, arrays: list[np.ndarray], device: torch.device):
        h_max = max(a.shape[0] for a in arrays)
        w_max = max(a.shape[1] for a in arrays)
        volume = torch.zeros(1, 3, len(arrays), h_max, w_max)
        for i, a in enumerate(arrays):
            volume[0, :, i, : a.shape[0], : a.shape[1]] = torch.from_numpy(a).permute(2, 0, 1) / 127.5 - 1
        self.volume = volume.to(device)
        self.sizes = torch.tensor([[a.shape[0], a.shape[1]] for a in arrays], dtype=torch.float32, device=device)
        self.weights = self.sizes.prod(1).sqrt()  # favour large photos, but not in proportion to area
        self.device = device

    def sample(self, batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
        dev = self.device
        n, H, W = self.volume.shape[-3:]
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=generator)
        h, w = self.sizes[idx, 0], self.sizes[idx, 1]
        zoom = 1.0 + 0.5 * torch.rand(batch, device=dev, generator=generator)
        win = torch.minimum(size * zoom, torch.minimum(h, w))  # window side in source pixels
        y0 = torch.rand(batch, device=dev, generator=generator) * (h - win)
        x0 = torch.rand(batch, device=dev, generator=generator) * (w - win)
        flip = torch.rand(batch, device=dev, generator=generator) < 0.5
        u = (torch.arange(size, device=dev) + 0.5) / size  # output pixel centres in [0, 1]
        xs = x0[:, None] + win[:, None] * torch.where(flip[:, None], 1 - u, u)  # (B, S) source px
        ys = y0[:, None] + win[:, None] * u
        gx = (2 * xs / W - 1)[:, None, :].expand(batch, size, size)
        gy = (2 * ys / H - 1)[:, :, None].expand(batch, size, size)
        gz = ((2 * idx.float() + 1) / n - 1)[:, None, None].expand(batch, size, size)
        grid = torch.stack([gx, gy, gz], dim=-1)[None]  # (1, B, S, S, 3): x, y, depth
        crops = F.grid_sample(self.volume, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return crops[0].permute(1, 0, 2, 3).contiguous()  # (B, 3, S, S)


def make_model():
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=64, **ARCHITECTURE)


def save_model(ema, out: Path) -> None:
    """EMA weights as a diffusers folder, stored in fp16 (load_prior loads them as fp32)."""
    from diffusers import DDPMScheduler
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    ema.save_config(out)
    weights = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in ema.state_dict().items()}
    save_file(weights, out / "diffusion_pytorch_model.safetensors", metadata={"format": "pt"})
    DDPMScheduler(**SCHEDULE).save_pretrained(out)


def train(args: argparse.Namespace) -> None:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    data = np.load(args.data)
    sampler = CropSampler([data[k] for k in data.files], device)

    model = make_model().to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, 0).float().to(device)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    step, elapsed = 0, 0.0
    if args.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["generator"].to(gen.device) if device.type == "cpu" else state["generator"])
        step, elapsed = state["step"], state["elapsed"]
        print(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters, device {device}, {len(data.files)} training images")

    use_bf16 = args.bf16 if args.bf16 is not None else device.type == "cuda"
    if use_bf16:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    budget = args.minutes * 60.0
    log = open(out / "loss.csv", "a", newline="")
    writer = csv.writer(log)
    if log.tell() == 0:
        writer.writerow(["step", "loss", "minutes"])
    bar = tqdm(total=args.steps, initial=step, desc="train", dynamic_ncols=True)
    start = time.time() - elapsed
    running = None
    last_ckpt = time.time()

    def checkpoint():
        torch.save(
            {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
             "generator": gen.get_state(), "step": step, "elapsed": time.time() - start,
             "args": vars(args)},
            ckpt_path,
        )
        save_model(ema, out / "model")

    while step < args.steps and time.time() - start < budget:
        x0 = sampler.sample(args.batch, args.size, gen)
        t = torch.randint(0, 1000, (args.batch,), device=device, generator=gen)
        eps = torch.randn(x0.shape, device=device, generator=gen)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps  # forward process, Ho et al. eq. 4
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            pred = model(xt.contiguous(memory_format=torch.channels_last) if use_bf16 else xt, t).sample
        loss = F.mse_loss(pred.float(), eps)  # Ho et al. eq. 14
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        step += 1
        if step % args.log_every == 0:
            value = loss.item()
            running = value if running is None else 0.9 * running + 0.1 * value
            writer.writerow([step, f"{value:.5f}", f"{(time.time() - start) / 60:.2f}"])
            log.flush()
            bar.set_postfix(loss=f"{running:.4f}")
        bar.update(1)
        if time.time() - last_ckpt > args.checkpoint_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    bar.close()
    checkpoint()
    log.close()
    print(f"done: {step} steps in {(time.time() - start) / 60:.1f} min; EMA model in {out / 'model'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build-data", help="pack the training photos into one npz")
    b.add_argument("--out", type=Path, default=Path(".train/photos.npz"))
    t = sub.add_parser("train", help="train (or resume) the prior")
    t.add_argument("--data", type=Path, default=Path(".train/photos.npz"))
    t.add_argument("--out", type=Path, default=Path(".train/run"))
    t.add_argument("--steps", type=int, default=1_000_000, help="stop after this many steps")
    t.add_argument("--minutes", type=float, default=150.0, help="stop after this much training time")
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--size", type=int, default=64, help="crop side in pixels (multiple of 16)")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--warmup", type=int, default=500)
    t.add_argument("--ema", type=float, default=0.999)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None)
    t.add_argument("--log-every", type=int, default=25)
    t.add_argument("--checkpoint-minutes", type=float, default=10.0)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast and channels-last (default: on for CUDA)")
    args = parser.parse_args(argv)
    if args.command == "build-data":
        build_data(args.out)
    else:
        if not args.data.exists():
            sys.exit(f"error: {args.data} not found; run `python scripts/train_prior.py build-data` first")
        train(args)


if __name__ == "__main__":
    main()
