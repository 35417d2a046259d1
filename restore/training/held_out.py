"""Evaluate the bundled prior on held-out images (issue 3's model-card table).

    python scripts/eval_prior.py                      # table for the model card
    python scripts/eval_prior.py --splits 1x20,2x10,4x5,5x4,10x2 --tasks sr4,inp_box,deno
    python scripts/eval_prior.py --set heldout/ --model .train/run/model --device cuda   # a GPU, no packages

The held-out set is made from photos that were kept out of training (see restore.training.sources):
face crops of every excluded face photo (astronaut, the cameraman, messi5, basketball1; grey ones
repeated to RGB), resized to 256x256, and centre crops of the held-out non-face photos
(butterfly, squirrel, coffee). `--save-set DIR` writes them as PNGs (e.g. for evaluate.py), and
`--set DIR` reads them back from there (a machine without the packages: the GPU session);
`--root DIR` reads the photos from a folder where the packages were unpacked.
Each task is restored with DDRM at 20 network calls (and Nested DDRM 4 x 5 at the same cost),
next to the simple baseline: bicubic up-sampling for super-resolution, H^+ y otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from degradations import make_operator
from restore.io.atomic import write_json
from restore.io.images import save_image
from restore.models.prior import load_prior
from restore.quality.baselines import baseline, baseline_names
from restore.quality.metrics import lpips, psnr
from restore.settings.build import resolve_device
from restore.settings.model_spec import BUNDLED
from restore.training.sources import HELD_OUT, source_dir
from solvers import DDRM, NestedDDRM, make_generators

# (source, file, crop box (left, top, right, bottom) in pixels): the faces of the excluded photos.
FACES = [
    ("scikit-image", "astronaut.png", (140, 10, 340, 210)),
    ("scikit-image", "astronaut.png", (60, 0, 444, 384)),
    ("scikit-image", "camera.png", (200, 40, 340, 180)),
    ("opencv-doc", "messi5.jpg", (180, 45, 300, 165)),
    ("opencv-doc", "basketball1.png", (25, 55, 145, 175)),
]
TASK_SIGMA = {"sr4": 0.0, "sr_bicubic4": 0.0, "inp_box": 0.0, "color": 0.0, "deno": 0.1}


def to_tensor(image: Image.Image, size: int = 256) -> torch.Tensor:
    image = image.convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 127.5 - 1


def held_out_set(root: Path | None = None) -> dict[str, torch.Tensor]:
    images = {}
    for source, name, box in FACES:
        path = os.path.join(source_dir(source, root), name)
        images[f"face_{Path(name).stem}_{box[0]}_{box[1]}"] = to_tensor(Image.open(path).crop(box))
    for source, names in HELD_OUT.items():
        for name in names:
            image = Image.open(os.path.join(source_dir(source, root), name))
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            images[f"photo_{Path(name).stem}"] = to_tensor(image.crop((left, top, left + side, top + side)))
    return images


def missing_sources(root: Path | None = None) -> list[str]:
    """The packages whose held-out photos are not where `held_out_set` reads them, each with the
    command that installs it (empty: all there)."""
    files = [(source, name) for source, name, _ in FACES] + [(s, n) for s, names in HELD_OUT.items() for n in names]
    missing = sorted({source for source, name in files if not os.path.isfile(os.path.join(source_dir(source, root), name))})
    hints = {"scikit-image": "pip install scikit-image", "opencv-doc": "apt-get install opencv-doc"}
    return [f"{source} ({hints.get(source, source)})" for source in missing]


def saved_set(folder: Path) -> dict[str, torch.Tensor]:
    """The held-out images as `--save-set` wrote them (name -> (1, 3, 256, 256) in [-1, 1]), sorted."""
    paths = sorted(Path(folder).glob("*.png"))
    if not paths:
        raise SystemExit(f"error: no PNG in {folder}; write the set with `eval_prior.py --save-set {folder}`")
    images = {p.stem: Image.open(p) for p in paths}
    return {name: to_tensor(image, image.width) for name, image in images.items()}  # square, at their size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=BUNDLED)
    parser.add_argument("--tasks", default=",".join(TASK_SIGMA))
    parser.add_argument("--splits", default="1x20,4x5", help="outer x inner; 1xK is plain DDRM with K steps")
    parser.add_argument("--eta", type=float, default=0.85, help="DDRM's eta (inner eta for Nested)")
    parser.add_argument("--faces-only", action="store_true", help="only the face crops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--save-set", type=Path, help="write the held-out images as PNGs and exit")
    parser.add_argument("--set", type=Path, help="read the held-out images from this folder (written by --save-set)")
    parser.add_argument("--root", type=Path, help="read the photos under this folder instead of their installed places")
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda")
    args = parser.parse_args(argv)

    if not args.set and (missing := missing_sources(args.root)):  # one line, before anything is written
        where = f"under --root {args.root}" if args.root else "installed"
        print(f"error: the held-out photos are not {where}: missing {'; '.join(missing)}; install them, or point "
              "--root at a folder where the packages were unpacked (or use any folder of your photos with "
              "anytime-evaluate --data)", file=sys.stderr)
        raise SystemExit(2)
    images = saved_set(args.set) if args.set else held_out_set(args.root)
    if args.save_set:
        args.save_set.mkdir(parents=True, exist_ok=True)
        for name, image in images.items():
            save_image(image, args.save_set / f"{name}.png")
        print(f"wrote {len(images)} images to {args.save_set}")
        return
    device = resolve_device(args.device)
    prior = load_prior(args.model, device)
    splits = [tuple(int(v) for v in s.split("x")) for s in args.splits.split(",")]
    names = [n for n in images if n.startswith("face") or not args.faces_only]
    x = torch.cat([images[n] for n in names]).to(device)
    results = {}
    header = "| task | sigma_y | baseline | " + " | ".join(
        "DDRM %d" % k if n == 1 else "Nested %dx%d" % (n, k) for n, k in splits) + " |"
    print(f"{len(names)} held-out images ({sum(n.startswith('face') for n in names)} faces), eta {args.eta}; "
          "mean PSNR dB / LPIPS\n")
    print(header)
    print("|" + " --- |" * (3 + len(splits)))
    grey = (x[:, 0] == x[:, 1]).flatten(1).all(1) & (x[:, 1] == x[:, 2]).flatten(1).all(1)
    for task in args.tasks.split(","):
        sigma_y = TASK_SIGMA.get(task, 0.0)
        # colorization of a grey photo is trivial (H^+ y is exact): score colour photos only
        keep = [i for i in range(len(names)) if not (task == "color" and grey[i])]
        operator = make_operator(task, tuple(x.shape[-2:])).to(device)
        y = operator.observe(x[keep], sigma_y, make_generators([args.seed + i for i in keep], device))
        base = baseline_names(operator)[-1]
        row = {"baseline": baseline(base, operator, y)}  # bicubic for sr, else H^+ y (colour: the grey input)
        for n, k in splits:
            solver = (DDRM(prior, operator, steps=k, eta=args.eta) if n == 1
                      else NestedDDRM(prior, operator, n, k, eta=args.eta))
            row[f"{n}x{k}"] = torch.cat([
                solver.restore(y[j:j + 1], sigma_y, make_generators([args.seed + 1000 + i], device)).clamp(-1, 1)
                for j, i in enumerate(keep)])
        scores = {key: {"psnr": psnr(out, x[keep]).tolist(), "lpips": lpips(out, x[keep]).tolist()}
                  for key, out in row.items()}
        results[task] = {"sigma_y": sigma_y, "eta": args.eta, "baseline": base, "images": [names[i] for i in keep],
                         "scores": scores}
        cells = [f"{sum(s['psnr']) / len(s['psnr']):.2f} / {sum(s['lpips']) / len(s['lpips']):.3f}" for s in scores.values()]
        label = task if len(keep) == len(names) else f"{task} ({len(keep)} colour images)"
        print(f"| {label} | {sigma_y} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        write_json(args.json, results, indent=1)
