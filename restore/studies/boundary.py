"""What the Fourier blurs' periodic boundary costs on a photo blurred by a real lens, and two ways
around it, measured image by image:

    python scripts/boundary_study.py --data heldout/ --size 128 --sigma-y 0.01 --out boundary.json

A real photo's blur is not periodic: at its edges the lens took light from outside the frame. So
the scene here is larger than the photo by `--scene` pixels a side (>= the kernel's radius), and
y is the centre of its blur: no pixel of y wraps. Then, at 20 calls, on the same y:
- periodic: the photo restored at its own size with the circular blur;
- reflect q: y extended by reflection by q pixels a side (q = --pads times the kernel's side, up to a multiple of 8),
             restored there with the circular blur, the centre kept (the wrap then mixes only
             made-up border pixels), with Wiener, DDRM and DiffPIR;
- exact q:   an image q pixels larger a side than y, blurred and cropped (H = crop . blur,
             H^T = blur^T . zero-pad), known through H and H^T only: DiffPIR with its CG data step.
Scores on the photo's frame (the centre), all of it and its `band`-pixel border alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from degradations.fourier import CroppedBlur, FourierBlur
from degradations.kernels import disk_kernel, motion_kernel
from restore.evaluation.images import find_images, load_batch
from restore.io.atomic import write_json
from restore.models.prior import load_prior
from restore.quality.baselines import baseline
from restore.quality.metrics import compute_all, psnr
from restore.restoration.seeds import image_seeds
from restore.settings.build import resolve_device
from restore.settings.model_spec import BUNDLED
from solvers import DDRM, DiffPIR, make_generators

KERNELS = {"deblur_motion": lambda: motion_kernel(0), "deblur_disk": lambda: disk_kernel(3.0)}


def scores(x: torch.Tensor, ref: torch.Tensor, band: int) -> dict[str, float]:
    """PSNR / LPIPS on the frame, and PSNR on its border band alone."""
    x = x.clamp(-1, 1)
    m = compute_all(x, ref)
    inner = torch.zeros_like(ref[:, :1], dtype=torch.bool)
    inner[..., band:-band, band:-band] = True
    err = ((x - ref) / 2).square().mean(1, keepdim=True)
    border = err.masked_select(~inner).mean()
    return {"psnr": float(m["psnr"][0]), "lpips": float(m["lpips"][0]),
            "psnr_border": float(-10 * torch.log10(border)), "psnr_inside": float(psnr(x[..., band:-band, band:-band],
                                                                                       ref[..., band:-band, band:-band])[0])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--size", type=int, default=128, help="the photo's side")
    parser.add_argument("--scene", type=int, default=32, help="pixels of scene beyond each edge of the photo")
    parser.add_argument("--pads", default="1,2", help="margins restored beyond the photo, in kernel sides")
    parser.add_argument("--band", type=int, default=16, help="border band scored on its own")
    parser.add_argument("--tasks", default="deblur_motion,deblur_disk")
    parser.add_argument("--sigma-y", type=float, default=0.01)
    parser.add_argument("--lambda", dest="lam", type=float, default=1.0, help="DiffPIR's lambda")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    names = find_images(args.data)[: args.limit]
    if not names:
        print(f"error: no images under --data {args.data}: give a folder of .png/.jpg files", file=sys.stderr)
        return 2
    device = resolve_device("auto")
    prior = load_prior(BUNDLED, device=device)
    size, scene, s = args.size, args.scene, args.sigma_y
    rows = []
    for task in args.tasks.split(","):
        kernel = KERNELS[task]()
        side = max(kernel.shape)
        if side // 2 > scene:
            print(f"error: --scene {scene} is less than the kernel's radius {side // 2}", file=sys.stderr)
            return 2
        camera = CroppedBlur(3, size, size, kernel, scene).to(device)
        periodic = FourierBlur(3, size, size, kernel).to(device)
        for name in names:
            x_scene = load_batch(Path(args.data), [name], size + 2 * scene, device)
            x = x_scene[..., scene:-scene, scene:-scene]
            obs, seed = image_seeds(0, name)
            y = camera.observe(x_scene, s, make_generators([obs], device))  # (1, 3 h w): the photo

            def run(solver, measurement: torch.Tensor) -> torch.Tensor:
                return solver.restore(measurement, s, make_generators([seed], device))

            runs = {"blurred": camera.to_image(y), "wiener periodic": baseline("wiener", periodic, y, s),
                    "ddrm periodic": run(DDRM(prior, periodic), y),
                    "diffpir periodic": run(DiffPIR(prior, periodic, lambda_=args.lam), y)}
            for k in (float(v) for v in args.pads.split(",")):
                q = 8 * -(-int(round(k * side)) // 8)  # a multiple of 8: the U-Net needs sides of 16 n
                padded = FourierBlur(3, size + 2 * q, size + 2 * q, kernel).to(device)
                y_pad = padded.from_image(F.pad(y.view(1, 3, size, size), [q] * 4, mode="reflect"))
                exact = CroppedBlur(3, size, size, kernel, q).to(device)
                runs[f"wiener reflect {q}"] = baseline("wiener", padded, y_pad, s)[..., q:-q, q:-q]
                runs[f"ddrm reflect {q}"] = run(DDRM(prior, padded), y_pad)[..., q:-q, q:-q]
                runs[f"diffpir reflect {q}"] = run(DiffPIR(prior, padded, lambda_=args.lam), y_pad)[..., q:-q, q:-q]
                runs[f"diffpir exact {q} (CG)"] = exact.crop(run(DiffPIR(prior, exact, lambda_=args.lam), y))
            for method, out in runs.items():
                rows.append({"task": task, "image": name, "method": method, **scores(out, x, args.band)})
            print(f"{task} {name}: " + ", ".join(f"{r['method']} {r['psnr']:.2f}" for r in rows[-len(runs):]),
                  file=sys.stderr, flush=True)
    print(f"\n{len(names)} images at {size} px, sigma_y {s}, DiffPIR lambda {args.lam}; "
          f"PSNR (dB) on the photo's frame / its inside / its {args.band}-px border, LPIPS")
    print("| task | method | PSNR | inside | border | LPIPS |\n| --- | --- | --- | --- | --- | --- |")
    for task in args.tasks.split(","):
        for method in dict.fromkeys(r["method"] for r in rows if r["task"] == task):
            sel = [r for r in rows if r["task"] == task and r["method"] == method]
            mean = {k: np.mean([r[k] for r in sel]) for k in ("psnr", "psnr_inside", "psnr_border", "lpips")}
            print(f"| {task} | {method} | {mean['psnr']:.2f} | {mean['psnr_inside']:.2f} | "
                  f"{mean['psnr_border']:.2f} | {mean['lpips']:.3f} |")
    if args.out:
        write_json(args.out, {"settings": dict(vars(args)), "rows": rows}, indent=1)
    return 0
