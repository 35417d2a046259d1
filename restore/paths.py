"""Where the shipped data lives: the bundled prior, the LPIPS backbone, the measured configs, the
example image and the photo manifests.

In the repository they are its top-level `data/` and `configs/` folders. A wheel (or `pip install
.`) copies the same files into the package, as `restore/_shipped/data/...` and
`restore/_shipped/configs/...` (setup.py's build step, `SHIPPED` there), so an installed package
finds them without the source tree. `SHIPPED_ROOT` is whichever of the two holds them: the package
copy when present, else the source tree.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_PACKAGED = PACKAGE_DIR / "_shipped"
#: the folder holding data/ and configs/: the package's copy in an installed wheel, else the clone
SHIPPED_ROOT = _PACKAGED if (_PACKAGED / "configs").is_dir() else PACKAGE_DIR.parent
DATA_DIR = SHIPPED_ROOT / "data"
CONFIG_DIR = SHIPPED_ROOT / "configs"
MODELS_DIR = DATA_DIR / "models"
LPIPS_WEIGHTS = DATA_DIR / "weights" / "lpips_alexnet_backbone.safetensors"
EXAMPLE_IMAGE = DATA_DIR / "examples" / "face.png"
TRAIN_SOURCES = DATA_DIR / "train_sources.csv"
FRESH_SOURCES = DATA_DIR / "fresh_sources.csv"


def shown(path: Path) -> str:
    """A shipped file as a run records it: relative to SHIPPED_ROOT ("configs/sr4_natural-ddpm.yaml"),
    the same string in a clone and in an installed wheel; any other path as given."""
    try:
        return str(Path(path).relative_to(SHIPPED_ROOT))
    except ValueError:
        return str(path)


def named_input(image):
    """An input as a person names it: `example` (when no file of that name is in the working
    folder) is the shipped example face, EXAMPLE_IMAGE, so a wheel's first command needs no path;
    anything else as given."""
    if isinstance(image, str) and image == "example" and not Path(image).exists():
        return str(EXAMPLE_IMAGE)
    return image
