"""Every model family's network at 256 x 256: the CPU (or GPU) time of one call, and, for the
guided-diffusion (ADM) architectures at full width, the same eps as deepinv's DiffUNet.

    python scripts/bench.py models                          # all four, timing and the ADM checks
    nice -n 10 python scripts/bench.py models --models ffhq --calls 3 --json models.json

Per model, a network of the family's architecture, random weights except the bundled prior (timing
and equality only, never quality): the bundled prior (its weights, in the package); Ho et al.'s
CelebA-HQ U-Net (diffusers, the network of `celebahq` and of DDRM's `.ckpt`); the guided-diffusion
FFHQ 256 and ImageNet 256 unconditional U-Nets. Each call is batch 1, fp32, t = 500, after one
warm-up call; the median of `--calls` is reported, with the call's FLOPs (torch.utils.flop_counter,
2 per multiply-add: a figure that does not depend on how busy the machine is) and the GFLOP/s.

The ADM check (`--no-check` skips it): deepinv's DiffUNet (`large_model` False: FFHQ, True:
ImageNet 256), an implementation of its own, built with pretrained=None and its weights drawn at
random (every tensor: its zero-initialised output layers would make any two networks agree), is
saved as a state dict in guided-diffusion's key layout, loaded by this project's `load_prior`
(architecture read from the shapes, network built by azula), and both give eps at 256 x 256; the
inferred architecture must be the published one (restore/models/families/adm.py's cards). Needs
deepinv (`pip install -e ".[bench]"`) and, for ImageNet, about 7 GB of memory.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch

from restore.bench.common import SIZE, sync
from restore.bench.cpu_flops import flops
from restore.io.atomic import write_json
from restore.models.architectures import celebahq_architecture
from restore.models.prior import load_prior
from restore.models.registry import short_names
from restore.settings.build import resolve_device
from restore.settings.model_spec import BUNDLED

MODELS = (BUNDLED, "celebahq-arch", "ffhq", "imagenet256")


def randomise(network: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every weight random (1-D norm gains near 1, biases near 0, the rest N(0, 1 / fan_in))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in network.named_parameters():
            if p.ndim == 1:
                p.copy_(float(name.endswith("weight")) + 0.05 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
    return network.eval()


def seconds_per_call(prior, device: torch.device, calls: int) -> list[float]:
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)).to(device)
    t = torch.full((1,), 500, device=device)
    times = []
    with torch.no_grad():
        prior(x, t)  # warm-up
        for _ in range(calls):
            sync(device)
            start = time.perf_counter()
            prior(x, t)
            sync(device)
            times.append(time.perf_counter() - start)
    return times


def adm_against_deepinv(name: str, device: torch.device, calls: int, check: bool) -> dict:
    """The loaded ADM network of `name`'s architecture: its time per call and (check) its eps
    against deepinv's DiffUNet with the same random weights."""
    import deepinv

    reference = randomise(deepinv.models.DiffUNet(large_model=name == "imagenet256", pretrained=None))
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("sqrt_")}  # deepinv's own buffers
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}_random.pt"
        torch.save(state, path)
        del state
        prior = load_prior(str(path), device=device)
    card = short_names()[name][1].architecture
    row = {"parameters": sum(p.numel() for p in prior.unet.parameters()),
           "architecture_is_published": all(prior.architecture[k] == v for k, v in card.items())}
    row["seconds"], row["flops"] = seconds_per_call(prior, device, calls), flops(prior.cpu(), SIZE)
    prior.to(device)
    if check:
        reference = reference.to(device)
        x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2)).to(device)
        t = torch.tensor([10, 900], device=device)
        with torch.no_grad():
            ours, theirs = prior(x, t), reference.forward_diffusion(x, t)[:, :3]
        row["max_abs_eps_difference"] = float((ours - theirs).abs().max())
        row["eps_scale"] = float(theirs.abs().max())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"any of {', '.join(MODELS)}")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--no-check", action="store_true", help="ADM: time only, no comparison with deepinv")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, {SIZE}x{SIZE}, batch 1, fp32")
    rows = {}
    for name in (m.strip() for m in args.models.split(",") if m.strip()):
        if name in ("ffhq", "imagenet256"):
            row = adm_against_deepinv(name, device, args.calls, not args.no_check)
        else:
            prior = celebahq_architecture() if name == "celebahq-arch" else load_prior(name)
            prior = prior.to(device)
            row = {"parameters": sum(p.numel() for p in prior.unet.parameters()),
                   "seconds": seconds_per_call(prior, device, args.calls), "flops": flops(prior.cpu(), SIZE)}
            del prior
        row["median_seconds"] = statistics.median(row["seconds"])
        rows[name] = row
        check = (f", eps vs deepinv: max |diff| {row['max_abs_eps_difference']:.2e} of {row['eps_scale']:.2f}, "
                 f"architecture published: {row['architecture_is_published']}") if "eps_scale" in row else ""
        print(f"{name:14s} {row['parameters'] / 1e6:7.1f}M parameters  {row['flops'] / 1e9:7.1f} GFLOP  "
              f"{row['median_seconds']:7.2f} s/call ({row['flops'] / 1e9 / row['median_seconds']:.0f} GFLOP/s) "
              f"(calls {', '.join(f'{s:.2f}' for s in row['seconds'])}){check}", flush=True)
    if args.json:
        write_json(Path(args.json), {"device": str(device), "threads": torch.get_num_threads(), "size": SIZE,
                                     "models": rows})
    return 0
