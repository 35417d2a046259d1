"""Anytime curves of several solver configurations on one task, paired image by image.

    python scripts/anytime_study.py --data heldout/ --task inp_box --size 128 --tiles 2 \
        --configs ddrm nested:5,5,5,5 nested:2,3,5,10 nested:8,6,4,2 --out study_inp_box.json

A configuration is `solver[:budgets][@outer_eta][/outer_times][%outer_noise][^outer_power][~inner_power]`
(outer_power: Nested's default, 2, unless given; ^1 is the paper's even outer grid;
`nested:5,5,5,5/950,850,600,250%1` gives the outer times and re-noises with fresh noise; `~0.5` gathers the calls
of every inner run but the last at its top, Nested's inner_power): `ddrm` (or ddnm, diffpir, dps) runs as many
calls as the first nested budget list sums to (20 if none); `nested:2,3,5,10` nests DDRM (or
`nested-ddnm:...` another solver) with those inner budgets. Every configuration sees the same
measurements and the same sampler seed per image (common random numbers), so differences are
paired. `--tiles 2` loads each image at 2 x size and cuts it into 2 x 2 tiles of size x size
(four test images per photo, for a larger set at a small size).

Scores: at every anytime output, PSNR and LPIPS against the reference. The anytime score of a
run is the area under its curve over 0..N calls divided by N, with the curve held at the last
output (before the first one: the pseudo-inverse H^+ y, what a person has at 0 calls): the mean
quality a person stopping at a uniformly random moment would keep. Reported per configuration:
final and anytime PSNR / LPIPS, and the paired difference to the first configuration with its
standard error over images.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from degradations import make_operator
from restore.evaluation.images import find_images, load_batch
from restore.io.atomic import write_json
from restore.models.prior import load_prior
from restore.quality.metrics import compute_all
from restore.restoration.seeds import image_seeds
from restore.settings.build import build_solver, resolve_device
from restore.settings.model_spec import BUNDLED
from restore.settings.schema import SOLVER_NAMES, Settings
from solvers.options import parse_times
from solvers import make_generators


def parse_config(text: str, total: int, eta: float = Settings.eta) -> Settings:
    text, _, inner_power = text.partition("~")
    text, _, power = text.partition("^")
    text, _, noise = text.partition("%")
    text, _, times = text.partition("/")
    name, _, outer_eta = text.partition("@")
    name, _, budgets = name.partition(":")
    if name not in SOLVER_NAMES:
        raise SystemExit(f"error: unknown solver {name!r} in {text!r}; valid: {', '.join(SOLVER_NAMES)}")
    inner = [int(b) for b in budgets.split(",")] if budgets else 5
    options = {"outer_power": float(power)} if power else {}  # else Settings' default
    if times:
        options["outer_times"] = parse_times(times)
    if noise:
        options["outer_noise"] = float(noise)
    if inner_power:
        options["inner_power"] = float(inner_power)
    return Settings(solver=name, eta=eta, inner=inner, outer=4 if not budgets else len(inner), steps=total,
                    outer_eta=float(outer_eta or 0.0), **options).validate()


def load_tiles(data: Path, rels: list[str], size: int, tiles: int) -> tuple[list[str], torch.Tensor]:
    big = load_batch(data, rels, size * tiles, torch.device("cpu"))
    names, parts = [], []
    for rel, image in zip(rels, big):
        for i in range(tiles):
            for j in range(tiles):
                names.append(f"{rel}#{i}{j}" if tiles > 1 else rel)
                parts.append(image[:, i * size:(i + 1) * size, j * size:(j + 1) * size])
    return names, torch.stack(parts)


def anytime_area(nfes: list[int], values: list[float], start: float, total: int) -> float:
    """Mean of the step curve over 0..total calls (held at the last output; `start` before the first)."""
    area, level, last = 0.0, start, 0
    for n, v in zip(nfes, values):
        area += level * (n - last)
        level, last = v, n
    return (area + level * (total - last)) / total


def run_config(settings, prior, op, x, y, sigma_y, seeds, batch):
    solver = build_solver(settings, prior, op)
    curves = []  # per image: (nfes, psnr, lpips)
    for lo in range(0, len(x), batch):
        sl = slice(lo, lo + batch)
        nfes, scores = [], []
        for record in solver.sample(y[sl], sigma_y, make_generators(seeds[sl])):
            nfes.append(record.nfe)
            scores.append(compute_all(record.x0.clamp(-1, 1), x[sl]))
        for i in range(len(x[sl])):
            curves.append((nfes, [float(s["psnr"][i]) for s in scores], [float(s["lpips"][i]) for s in scores]))
        print(f"  {lo + len(x[sl])}/{len(x)} images", file=sys.stderr, flush=True)
    return curves


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    d = [p - q for p, q in zip(a, b)]
    mean = sum(d) / len(d)
    se = (sum((v - mean) ** 2 for v in d) / (len(d) - 1) / len(d)) ** 0.5 if len(d) > 1 else math.nan
    return mean, se


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--task", default="sr4")
    parser.add_argument("--sigma-y", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--tiles", type=int, default=1)
    parser.add_argument("--configs", nargs="+", default=["ddrm", "nested:5,5,5,5"])
    parser.add_argument("--model", default=BUNDLED)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eta", type=float, default=Settings.eta, help="DDRM's (and DDNM's) eta, every configuration")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--zero-rule", choices=["1d", "product"], help="deblur_* and sr_bicubic*: how small "
                        "singular values are zeroed (degradations.separable.ZERO_RULES)")
    parser.add_argument("--zero-below", type=float, help="deblur_*, sr_bicubic*: singular values below this "
                        "count as unmeasured (default 3e-2)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    rels = find_images(args.data)[: args.limit]
    if not rels:
        print(f"error: no images under --data {args.data}: give a folder of .png/.jpg files", file=sys.stderr)
        return 2
    device = resolve_device("auto")
    prior = load_prior(args.model, device=device)
    names, x = load_tiles(Path(args.data), rels, args.size, args.tiles)
    x = x.to(device)
    options = {"zero_rule": args.zero_rule} if args.zero_rule else {}
    if args.zero_below is not None:
        options["zero_below"] = args.zero_below
    op = make_operator(args.task, args.size, **options).to(device, torch.float32)
    zeros = int((op.singulars() == 0).sum()) + op.n - op.m
    print(f"{args.task}: {zeros} of {op.n} spectral components unmeasured", file=sys.stderr)
    obs = [image_seeds(args.seed, name)[0] for name in names]
    seeds = [image_seeds(args.seed, name)[1] for name in names]
    y = torch.cat([op.observe(x[i:i + 1], args.sigma_y, make_generators([obs[i]], device)) for i in range(len(x))])
    start = compute_all(op.H_pinv(y).clamp(-1, 1), x)
    budgets = next((parse_config(c, 20).budgets for c in args.configs if ":" in c), [5] * 4)
    total = sum(budgets)
    results = {}
    for text in args.configs:
        settings = parse_config(text, total, args.eta)
        print(f"{text}: {settings.label}", file=sys.stderr)
        curves = run_config(settings, prior, op, x, y, args.sigma_y, seeds, args.batch)
        results[text] = {
            "final_psnr": [c[1][-1] for c in curves], "final_lpips": [c[2][-1] for c in curves],
            "any_psnr": [anytime_area(c[0], c[1], float(start["psnr"][i]), total) for i, c in enumerate(curves)],
            "any_lpips": [anytime_area(c[0], c[2], float(start["lpips"][i]), total) for i, c in enumerate(curves)],
            "first_nfe": curves[0][0][0], "mean_curve": {
                "nfe": curves[0][0], "psnr": [sum(c[1][k] for c in curves) / len(curves) for k in range(len(curves[0][0]))],
                "lpips": [sum(c[2][k] for c in curves) / len(curves) for k in range(len(curves[0][0]))]}}
    base = args.configs[0]
    print(f"{args.task} sigma_y={args.sigma_y} size={args.size} images={len(names)} calls={total}; "
          f"paired differences to {base} (+- standard error)")
    print(f"{'config':<22} {'final PSNR':>11} {'dPSNR':>14} {'final LPIPS':>11} {'dLPIPS':>16} "
          f"{'any PSNR':>9} {'d':>14} {'any LPIPS':>9} {'d':>16}")
    for text, r in results.items():
        row = [f"{text:<22}"]
        for key, fmt in (("final_psnr", "{:11.2f}"), ("final_lpips", "{:11.4f}"), ("any_psnr", "{:9.2f}"),
                         ("any_lpips", "{:9.4f}")):
            mean = sum(r[key]) / len(r[key])
            d, se = paired(r[key], results[base][key])
            r[key + "_mean"], r[key + "_diff"], r[key + "_se"] = mean, d, se
            row.append(fmt.format(mean) + f" {d:+7.3f}+-{se:.3f}")
        print(" ".join(row))
    if args.out:
        write_json(args.out, {"task": args.task, "sigma_y": args.sigma_y, "size": args.size,
                              "images": names, "calls": total, "configs": results}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
