"""Train the project's bundled natural-image DDPM prior (issues 3 and 12).

The model is a diffusers `UNet2DModel` trained with exactly the CelebA-HQ DDPM schedule (linear
betas 1e-4 .. 0.02, T = 1000, epsilon prediction; Ho et al. 2020, eq. 14 loss), so every code path
of the solvers is the one used with the real model. Two architectures:
- default (`ARCHITECTURE` in restore.models.architectures, the bundled model's): 5 levels, fully
  convolutional, no attention; runs on any image whose sides are multiples of 16.
  `--init data/models/natural-ddpm` continues it.
- `--attention`: 6 levels (32, 64, 128, 160, 192, 192) with self-attention in the two lowest levels
  (16x16 and 8x8 at 256x256) and the mid block, for global structure; sides multiples of 32.
  13.6 M parameters (27 MB in fp16); 51 GFLOP per 256x256 call against the default's 53, and
  measured 1.05-1.09x its time on the project's 2-core CPU (about 3 s a call there, both).

Training data: the photographs listed in `data/train_sources.csv` (see restore.training.sources), all
from installed packages; no face, none of the evaluation photos (`HELD_OUT`).

    python scripts/train_prior.py build-data --out .train/photos.npz
    python scripts/train_prior.py train --data .train/photos.npz --out .train/run --minutes 120 --attention

Crops: 256x256 by default, at a random scale (log-uniform, 1 to 4 source pixels per output
pixel, antialiased), random position, horizontal flip, and a small hue/saturation jitter.
`train` is seedable and resumable (`--resume` continues from `<out>/checkpoint.pt`, architecture
included), shows a progress bar with the loss, appends the loss to `<out>/loss.csv` and writes
the EMA weights as a diffusers folder `<out>/model/` (fp16 safetensors + config.json) at the end
and at every checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from restore.errors import one_line
from restore.models.architectures import SCHEDULE, make_model
from restore.training.crops import CropSampler, colour_jitter
from restore.training.sources import MANIFEST, build_data, load_photos


def save_model(ema, out: Path) -> None:
    """EMA weights as a diffusers folder, stored in fp16 (load_prior loads them as fp32)."""
    from diffusers import DDPMScheduler
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    ema.save_config(out)
    weights = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in ema.state_dict().items()}
    save_file(weights, out / "diffusion_pytorch_model.safetensors", metadata={"format": "pt"})
    DDPMScheduler(**SCHEDULE).save_pretrained(out)


def initial_model(args, state: dict | None):
    """The network: the checkpoint's architecture when resuming, a model folder's (--init), or a new one."""
    from diffusers import UNet2DModel

    if state is not None:
        return UNet2DModel.from_config(state["config"])
    if args.init:
        return UNet2DModel.from_pretrained(args.init, torch_dtype=torch.float32)
    channels = tuple(int(c) for c in args.channels.split(",")) if args.channels else None
    return make_model(args.attention, channels, args.norm_groups)


def _load_checkpoint(path: Path, device: torch.device) -> dict:
    """A training checkpoint read back with weights_only=True (a crafted file runs no code), and
    checked to hold what `train` saves; one line otherwise."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 - not a checkpoint, or one of an older train_prior.py
        sys.exit(f"error: {path} is not a training checkpoint of this script ({one_line(error)[:160]}); "
                 "delete it or train without --resume")
    wanted = {"model": dict, "ema": dict, "opt": dict, "generator": torch.Tensor, "step": int, "elapsed": float,
              "config": dict}
    wrong = [k for k, kind in wanted.items() if not isinstance(state, dict) or not isinstance(state.get(k), kind)]
    if wrong:
        sys.exit(f"error: {path} is not a training checkpoint of this script (no valid {', '.join(wrong)}); "
                 "delete it or train without --resume")
    return state


def train(args: argparse.Namespace) -> None:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    photos = load_photos(args.data)
    sampler = CropSampler(list(photos.values()), device, levels=int(math.log2(max(args.max_zoom, 1))) + 1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    resume = args.resume and ckpt_path.exists()
    state = _load_checkpoint(ckpt_path, device) if resume else None
    model = initial_model(args, state).to(device)
    multiple = 2 ** (len(model.config.block_out_channels) - 1)
    if args.size % multiple:
        sys.exit(f"error: --size {args.size} must be a multiple of {multiple} for this architecture")
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, 0).float().to(device)
    step, elapsed = 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["generator"].cpu())  # a generator's state is a CPU byte tensor, a CUDA one's too
        step, elapsed = state["step"], state["elapsed"]
        print(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters ({2 * n_params / 1e6:.1f} MB in fp16), attention "
          f"{'yes' if model.config.add_attention else 'no'}, device {device}, {len(photos)} training photos")

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
             "config": dict(model.config),
             "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}},
            ckpt_path,
        )
        save_model(ema, out / "model")

    while step < args.steps and time.time() - start < budget:
        x0 = sampler.sample(args.batch, args.size, gen, args.max_zoom)
        x0 = colour_jitter(x0, gen, args.hue, args.saturation)
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
    b.add_argument("--manifest", type=Path, default=MANIFEST)
    b.add_argument("--root", type=Path, help="read the photos under this folder instead of their installed places")
    b.add_argument("--max-side", type=int, default=1024, help="downscale photos to this long side")
    b.add_argument("--quality", type=int, default=95, help="store as JPEG of this quality; 0: raw uint8 arrays")
    b.add_argument("--skip-missing", action="store_true", help="leave out the photos of missing packages")
    t = sub.add_parser("train", help="train (or resume) the prior")
    t.add_argument("--data", type=Path, default=Path(".train/photos.npz"))
    t.add_argument("--out", type=Path, default=Path(".train/run"))
    t.add_argument("--steps", type=int, default=1_000_000, help="stop after this many steps (in all)")
    t.add_argument("--minutes", type=float, default=150.0, help="stop after this much training time (in all)")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--size", type=int, default=256, help="crop side in pixels")
    t.add_argument("--max-zoom", type=float, default=4.0, help="largest downscaling of a crop")
    t.add_argument("--hue", type=float, default=5.0, help="hue jitter, degrees (0: off)")
    t.add_argument("--saturation", type=float, default=0.1, help="saturation jitter, relative (0: off)")
    t.add_argument("--attention", action=argparse.BooleanOptionalAction, default=False,
                   help="the 6-level variant with attention at 16x16 and 8x8")
    t.add_argument("--channels", help="channels per level, e.g. 16,32 (tests and smoke runs)")
    t.add_argument("--norm-groups", type=int, default=16)
    t.add_argument("--init", type=Path, help="start from this diffusers model folder (e.g. data/models/natural-ddpm)")
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
        build_data(args.out, args.manifest, args.root, args.max_side, args.quality, args.skip_missing)
    else:
        if not args.data.exists():
            sys.exit(f"error: {args.data} not found; run `python scripts/train_prior.py build-data` first")
        train(args)
