"""Write the study set: the 8 held-out images of eval_prior.py plus 8 photos from packages that no
training run has used, each a 256 x 256 PNG (centre square, resized with antialiasing).

    python scripts/study_set.py --out study/
    python scripts/anytime_study.py --data study/ --tiles 2 --size 128 --task inp_box ...

Why: the held-out 8 are enough for a model card, not for paired differences of a few tenths of a
dB on inpainting, whose spread over images is large (README, "Where Nested falls behind"). With
`--tiles 2` this set gives 64 tiles of 128 x 128 (the bundled prior's training size) from 16
photos. The extra photos are in neither the bundled prior's training photos nor
data/train_sources.csv (a future retraining must keep them out too):
- matplotlib's sample photo of Grace Hopper (a face; US Navy, public domain);
- gradio's example photos cheetah.jpg, tower.jpg and test_data/cheetah2.jpg (Apache-2.0 package);
- Plasma's wallpapers BytheWater, ColdRipple, DarkestHour and Grey (plasma-workspace-wallpapers,
  LGPL-3 per metadata.json), the photographs left out of training for their colours
  (monochrome or tinted: fine for inpainting, super-resolution and denoising).
A package that is missing stops with the command that installs it.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from pathlib import Path

from PIL import Image

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.imageio import save_image

PLASMA = "/usr/share/wallpapers/{}/contents/images/1920x1080.jpg"
# (name, registry, package, path: inside the installed PyPI module, or absolute for Debian)
EXTRA = [
    ("face_grace_hopper", "pypi", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    ("photo_cheetah", "pypi", "gradio", "gradio/media_assets/images/cheetah.jpg"),
    ("photo_tower", "pypi", "gradio", "gradio/media_assets/images/tower.jpg"),
    ("photo_cheetah2", "pypi", "gradio", "gradio/test_data/cheetah2.jpg"),
] + [(f"photo_plasma_{n}", "debian", "plasma-workspace-wallpapers", PLASMA.format(n))
     for n in ("BytheWater", "ColdRipple", "DarkestHour", "Grey")]


def extra_path(registry: str, package: str, path: str) -> Path:
    if registry == "debian":
        return Path(path)
    spec = importlib.util.find_spec(path.split("/")[0])
    if spec is None or not spec.submodule_search_locations:
        return Path("/nonexistent") / path
    return Path(list(spec.submodule_search_locations)[0]).parent / path


@functools.cache
def _eval_prior():
    """scripts/eval_prior.py (the held-out set and its resizing), loaded by path."""
    spec = importlib.util.spec_from_file_location("eval_prior", Path(__file__).with_name("eval_prior.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def square(image: Image.Image, size: int = 256):
    eval_prior = _eval_prior()
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return eval_prior.to_tensor(image.crop((left, top, left + side, top + side)), size)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    missing = [(package, registry, path) for _, registry, package, path in EXTRA
               if not extra_path(registry, package, path).is_file()]
    if missing:
        package, registry, path = missing[0]
        how = f"apt-get install {package}" if registry == "debian" else f"pip install {package}"
        print(f"error: {path} not found: install {package} ({how})", file=sys.stderr)
        return 2
    images = _eval_prior().held_out_set()
    for name, registry, package, path in EXTRA:
        images[name] = square(Image.open(extra_path(registry, package, path)).convert("RGB"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        target = args.out / f"{name}.png"
        if target.exists():
            print(f"error: {target} exists; choose an empty --out folder", file=sys.stderr)
            return 2
    for name, image in images.items():
        save_image(image, args.out / f"{name}.png")
    print(f"wrote {len(images)} images to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
