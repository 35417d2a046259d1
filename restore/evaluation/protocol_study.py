"""The boundary study of docs/studies/protocol.md: how far a protocol's reflected blurs are from
their circular versions, on the measurements and on two runs' restorations.

    python -m restore.evaluation.protocol_study measurements --protocol daps-ffhq --data heldout/
    python -m restore.evaluation.protocol_study paired results/daps64 results/daps64_circular

`measurements`: for each blur task of the protocol, the PSNR between the circular blur of its
kernel and the reference's (reflected) blur of every image at the protocol's size, noiseless, and
the share of pixels more than 1/255 apart. `paired`: per task and solver both runs hold, the mean
final PSNR of each and their per-image difference, mean +- standard error.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
import torch

from degradations import FourierBlur
from restore.evaluation.images import find_images, load_batch
from restore.evaluation.protocol import load_protocol
from restore.evaluation.protocol_ops import build_task, gaussian_kernel_2d, reference_motion_kernel
from restore.quality.metrics import psnr


def measurement_gap(protocol_name: str, data: Path, seed: int = 42) -> list[str]:
    protocol = load_protocol(protocol_name)
    rels = find_images(data)
    size = protocol.size
    x = load_batch(data, rels, (size, size), torch.device("cpu"))
    lines = []
    for task, spec in protocol.tasks.items():
        if spec["operator"] not in ("gaussian_blur", "motion_blur") or spec.get("boundary", "reflect") != "reflect":
            continue
        draw = spec.get("draw") or {}
        rng_seed = int(draw.get("seed", draw.get("seed_base", seed)))
        ops = build_task(spec, size, np.random.RandomState(rng_seed))
        reference = ops.forward.to_image(ops.forward.H(x))
        if spec["operator"] == "gaussian_blur":
            kernel = gaussian_kernel_2d(int(spec["size"]), float(spec["intensity"]))
        else:
            kernel = reference_motion_kernel(int(spec["size"]), float(spec["intensity"]), np.random.RandomState(rng_seed))
        flipped = kernel[::-1, ::-1].copy() if spec.get("convolution", "correlation") == "correlation" else kernel
        circular = FourierBlur(3, size, size, torch.from_numpy(np.ascontiguousarray(flipped)), zero_below=0.0)
        blurred = circular.to_image(circular.H(x))
        values = psnr(blurred, reference)
        apart = float(((reference - blurred).abs().amax(1) > 2 / 255).float().mean())  # 1/255 on [0, 1]
        lines.append(f"{task}: circular vs reflected measurement, {len(rels)} images at {size}: PSNR mean "
                     f"{float(values.mean()):.2f} dB (min {float(values.min()):.2f}); pixels more than 1/255 apart: "
                     f"{apart:.3f}")
    return lines


def _finals(path: Path) -> dict[tuple[str, str], float]:
    last: dict[tuple[str, str], tuple[int, float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key, nfe = (row["solver"], row["image"]), int(row["nfe"])
            if key not in last or nfe > last[key][0]:
                last[key] = (nfe, float(row["psnr"]))
    return {k: v[1] for k, v in last.items()}


def paired(first: Path, second: Path) -> list[str]:
    a, b = _finals(first / "per_image.csv"), _finals(second / "per_image.csv")
    lines = []
    for group in sorted({k[0] for k in a} & {k[0] for k in b}):
        keys = [k for k in a if k[0] == group and k in b]
        d = [a[k] - b[k] for k in keys]
        mean = sum(d) / len(d)
        se = math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1) / len(d)) if len(d) > 1 else float("nan")
        lines.append(f"{group}: {first.name} {sum(a[k] for k in keys) / len(keys):.2f} dB, {second.name} "
                     f"{sum(b[k] for k in keys) / len(keys):.2f} dB, difference {mean:+.2f} +- {se:.2f} dB "
                     f"({len(d)} images)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restore.evaluation.protocol_study", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("measurements")
    m.add_argument("--protocol", required=True)
    m.add_argument("--data", required=True)
    p = sub.add_parser("paired")
    p.add_argument("first")
    p.add_argument("second")
    args = parser.parse_args(argv)
    lines = measurement_gap(args.protocol, Path(args.data)) if args.what == "measurements" else \
        paired(Path(args.first), Path(args.second))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
