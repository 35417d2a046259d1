"""bf16 and fp16 restorations against fp32 on the held-out images: what 16-bit arithmetic in the
network costs in quality.

    python scripts/bench.py precision --data heldout/ [--model natural-ddpm] [--tasks sr4,inp_box,deno]
                                      [--precisions fp32,bf16,fp16] [--device auto] [--json PATH]

`--data`: a folder of square PNGs (`python scripts/eval_prior.py --save-set heldout/` writes the 8
held-out images). Per task (sigma_y as in the prior's card: 0.1 for deno, else 0), every image
is degraded once, with its own seed, and restored by Nested DDRM (--outer x --inner, default the
toolkit's 4 x 5) once per precision from the same measurement and the same noise seeds, with the
network configured by restore.models.precision.configure_network (autocast: only the network's
convolutions and matrix products change precision; the solver stays fp32). Reported per task and
precision: mean PSNR and LPIPS against the clean image, their differences from fp32 (mean, and
the largest per image), and how far each restoration is from the fp32 one (PSNR between them).
A precision the device cannot run (fp16 on a CPU) is listed as skipped with the reason.
A trained prior is needed for the quality numbers to mean anything (the default, the bundled one).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from degradations import make_operator
from restore.io.atomic import write_json
from restore.models.precision import PRECISIONS, configure_network
from restore.models.prior import load_prior
from restore.quality.metrics import lpips, psnr
from restore.settings.build import resolve_device
from restore.settings.model_spec import BUNDLED
from restore.training.held_out import TASK_SIGMA, saved_set
from solvers import NestedDDRM, make_generators


def restore_all(prior, task: str, x: torch.Tensor, precisions: list[str], outer: int, inner: int, seed: int):
    """{precision: (B, 3, H, W) restorations or the reason it was skipped}, and the seconds each took."""
    sigma_y = TASK_SIGMA.get(task, 0.0)
    device = x.device
    operator = make_operator(task, tuple(x.shape[-2:])).to(device)
    seeds = range(seed, seed + x.shape[0])
    y = operator.observe(x, sigma_y, make_generators(seeds, device))
    out: dict[str, torch.Tensor | str] = {}
    seconds: dict[str, float] = {}
    for precision in precisions:
        try:
            net = configure_network(prior, precision)
        except ValueError as error:  # fp16 on a CPU
            out[precision] = str(error).splitlines()[0]
            continue
        solver = NestedDDRM(net, operator, outer_steps=outer, inner_steps=inner)
        began = time.perf_counter()
        with torch.no_grad():
            out[precision] = solver.restore(y, sigma_y, make_generators([s + 1000 for s in seeds], device)).clamp(-1, 1)
        seconds[precision] = time.perf_counter() - began  # the first includes warm-up: a speed of no meaning
    return out, seconds


def compare(x: torch.Tensor, outs: dict, seconds: dict) -> list[dict]:
    reference = outs.get("fp32")
    if not isinstance(reference, torch.Tensor):
        raise SystemExit("error: fp32 is the reference: keep it in --precisions")
    base_p, base_l = psnr(reference, x), lpips(reference, x)
    rows = []
    for precision, out in outs.items():
        if not isinstance(out, torch.Tensor):
            rows.append({"precision": precision, "skipped": out})
            continue
        p, q = psnr(out, x), lpips(out, x)
        agree = psnr(out, reference)
        rows.append({"precision": precision, "psnr": p.mean().item(), "lpips": q.mean().item(),
                     "dpsnr": (p - base_p).mean().item(), "dpsnr_max": (p - base_p).abs().max().item(),
                     "dlpips": (q - base_l).mean().item(), "dlpips_max": (q - base_l).abs().max().item(),
                     "psnr_to_fp32": agree.clamp(max=100).mean().item() if precision != "fp32" else None,
                     "seconds": seconds[precision],
                     "per_image_psnr": p.tolist(), "per_image_lpips": q.tolist()})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py precision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of square PNGs (eval_prior.py --save-set)")
    parser.add_argument("--model", default=BUNDLED)
    parser.add_argument("--tasks", default="sr4,inp_box,deno")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--outer", type=int, default=4)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    precisions = args.precisions.split(",")
    if not set(precisions) <= set(PRECISIONS):
        parser.error(f"--precisions: some of {','.join(PRECISIONS)}")
    device = resolve_device(args.device)
    images = saved_set(args.data)
    x = torch.cat(list(images.values())).to(device)
    prior = load_prior(args.model, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    result = {"device": name, "torch": torch.__version__, "model": args.model, "images": list(images),
              "solver": f"Nested DDRM {args.outer} x {args.inner}", "tasks": {}}
    print(f"{name}, torch {torch.__version__}; {args.model}, {len(images)} images of {x.shape[-1]} px, "
          f"Nested DDRM {args.outer} x {args.inner}; mean over the images, differences against fp32\n")
    print("| task | precision | PSNR dB | LPIPS | PSNR - fp32 (largest) | LPIPS - fp32 (largest) | PSNR to the fp32 "
          "restoration | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for task in args.tasks.split(","):
        outs, seconds = restore_all(prior, task, x, precisions, args.outer, args.inner, args.seed)
        rows = compare(x, outs, seconds)
        result["tasks"][task] = {"sigma_y": TASK_SIGMA.get(task, 0.0), "rows": rows}
        for r in rows:
            if "skipped" in r:
                print(f"| {task} | {r['precision']} | skipped: {r['skipped']} | | | | | |")
                continue
            agree = "-" if r["psnr_to_fp32"] is None else f"{r['psnr_to_fp32']:.1f}"
            print(f"| {task} | {r['precision']} | {r['psnr']:.2f} | {r['lpips']:.4f} | {r['dpsnr']:+.3f} "
                  f"({r['dpsnr_max']:.3f}) | {r['dlpips']:+.4f} ({r['dlpips_max']:.4f}) | {agree} | {r['seconds']:.1f} |",
                  flush=True)
        if args.json:
            write_json(args.json, result, indent=1)
    sys.stdout.flush()
    return 0
