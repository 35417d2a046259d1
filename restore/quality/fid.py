"""FID and KID between two sets of images, with torch-fidelity's Inception-v3.

Which FID: the standard one of the restoration papers' tables (Heusel et al. 2017, eq. 6,
||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) over the 2048-d pool features of the
TensorFlow Inception-v3 graph "pt_inception-2015-12-05" that pytorch-fid and the TTUR code use),
computed with torch-fidelity: its FeatureExtractorInceptionV3 ("inception-v3-compat", feature
"2048") takes 8-bit images and resizes them to 299 x 299 with its TensorFlow-1.x-compatible
bilinear interpolation, and its `fid_statistics_to_metric` / `kid_features_to_metric` do the
arithmetic. KID (Binkowski et al. 2018) is the unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over 100 random subsets of min(1000, n) images.
Not clean-fid's "clean" resize, and not DAPS's evaluate_fid.py (torchvision's ImageNet
classifier Inception with piq's FID): numbers from those differ.

Chosen over torchmetrics (whose FID wraps the same torch-fidelity extractor and keeps running
sums, not the per-image features a resumable, sharded run needs) and clean-fid (another resize,
so not what the tables used).

The weights (95 MB) are downloaded on first use into torch's hub cache with a progress bar;
without network, `load_inception` returns None after one line saying what to fetch and where to
put it, and the caller goes on with the other metrics. FID from few images is biased upward:
`fid_kid` reports how many images it rests on and a warning below `FID_MIN_IMAGES`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

#: where torch-fidelity keeps its Inception weights
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
#: a weight file to use instead of the hub cache's
INCEPTION_WEIGHTS_ENV = "RESTORE_INCEPTION_WEIGHTS"
#: below this many images FID's covariance (2048 x 2048) is singular: the number is biased upward
#: and comparable only with an FID from as many images
FID_MIN_IMAGES = 2048
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class FeatureNet(Protocol):
    """What FID reads images through: `name`, `dim`, and a call taking 8-bit images
    (B, 3, H, W) uint8 to features (B, dim)."""

    name: str
    dim: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


def inception_weights_path() -> Path:
    """Where the Inception weights are looked for: $RESTORE_INCEPTION_WEIGHTS, else torch's hub
    cache (<torch hub dir>/checkpoints/weights-inception-2015-12-05-6726825d.pth), where
    torch-fidelity itself downloads them."""
    given = os.environ.get(INCEPTION_WEIGHTS_ENV)
    if given:
        return Path(given).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def missing_weights_line(path: Path, why: str = "") -> str:
    """The one line an offline run prints: what to fetch, where to put it, what still runs."""
    because = f" ({why})" if why else ""
    return (f"FID and KID skipped: the Inception weights could not be downloaded{because}; fetch {INCEPTION_URL} "
            f"and put it at {path} (or set {INCEPTION_WEIGHTS_ENV}=FILE); PSNR, SSIM and LPIPS are computed as usual")


def _download(url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    torch.hub.download_url_to_file(url, str(partial), progress=True)  # tqdm bar on stderr
    os.replace(partial, path)


class InceptionFeatures:
    """torch-fidelity's FID Inception-v3, 2048-d pool features of 8-bit images (module docstring)."""

    name = "inception-v3-compat (torch-fidelity, pool3 2048)"
    dim = 2048

    def __init__(self, weights: Path, device: torch.device | str = "cpu") -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.device = torch.device(device)
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(weights)).to(self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.to(self.device))[0].double().cpu()


def load_inception(device: torch.device | str = "cpu", download: bool = True,
                   note: Callable[[str], None] | None = None) -> InceptionFeatures | None:
    """The Inception feature network, downloading its weights on first use (with a progress
    bar); None, after one line through `note` (default: stderr), when they cannot be had."""
    say = note or (lambda line: print(f"note: {line}", file=sys.stderr))
    path = inception_weights_path()
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        say("FID and KID skipped: torch-fidelity is not installed (pip install torch-fidelity); "
            "PSNR, SSIM and LPIPS are computed as usual")
        return None
    if not path.is_file():
        if not download or os.environ.get(INCEPTION_WEIGHTS_ENV):
            say(missing_weights_line(path, "not found"))
            return None
        try:
            _download(INCEPTION_URL, path)
        except Exception as error:  # noqa: BLE001 - no network, a proxy, a full disk: all the same line
            say(missing_weights_line(path, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"))
            return None
    try:
        return InceptionFeatures(path, device)
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file
        say(f"FID and KID skipped: cannot load the Inception weights {path} ({type(error).__name__}); delete it to "
            f"download again, or fetch {INCEPTION_URL}; PSNR, SSIM and LPIPS are computed as usual")
        return None


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images on [-1, 1] (B, 3, H, W) -> the 8-bit images a PNG of them holds (FID is computed on
    saved images in the papers' codes)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def frechet_distance(features_1: np.ndarray | torch.Tensor, features_2: np.ndarray | torch.Tensor) -> float:
    """FID between two feature sets (n, d): Gaussian fits (mean, unbiased covariance) and the
    Frechet distance between them (torch-fidelity's fid_features_to_statistics and
    fid_statistics_to_metric)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    s1 = fid_features_to_statistics(torch.as_tensor(np.asarray(features_1, dtype=np.float64)))
    s2 = fid_features_to_statistics(torch.as_tensor(np.asarray(features_2, dtype=np.float64)))
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def kernel_inception_distance(features_1, features_2, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets) between two feature sets: torch-fidelity's estimator with the
    cubic polynomial kernel, subsets of min(subset_size, n_1, n_2) images."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    f1 = torch.as_tensor(np.asarray(features_1, dtype=np.float64))
    f2 = torch.as_tensor(np.asarray(features_2, dtype=np.float64))
    size = min(subset_size, len(f1), len(f2))
    out = kid_features_to_metric(f1, f2, kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def fid_kid(real: np.ndarray, fake: np.ndarray, min_images: int = FID_MIN_IMAGES) -> dict:
    """FID and KID of `fake` against `real` features, with how many images they rest on and,
    under `min_images`, a warning. Fewer than 2 images: None values."""
    n = min(len(real), len(fake))
    if n < 2:
        return {"fid": None, "kid": None, "kid_std": None, "images": n,
                "warning": f"FID needs at least 2 images, got {n}"}
    kid, kid_std = kernel_inception_distance(real, fake)
    out = {"fid": frechet_distance(real, fake), "kid": kid, "kid_std": kid_std, "images": n, "warning": None}
    if n < min_images:
        out["warning"] = (f"FID from {n} images (fewer than {min_images}): biased upward, comparable only with an FID "
                          f"from {n} images of the same set")
    return out


def _read_uint8(path: Path, size: int | None) -> torch.Tensor:
    """An image file as 8-bit RGB (1, 3, H, W), centre-cropped to a square and resized (bicubic)
    to `size` when given."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if size:
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]


@torch.no_grad()
def folder_features(folder: str | Path, net: FeatureNet, size: int | None = None, batch: int = 16,
                    names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Features of the images of a folder (its image files, sorted, or `names`), each
    centre-cropped and resized to `size` when given: (names, (n, dim))."""
    folder = Path(folder)
    if names is None:
        names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"))
    chunks = []
    for start in range(0, len(names), batch):
        images = torch.cat([_read_uint8(folder / name, size) for name in names[start : start + batch]])
        chunks.append(np.asarray(net(images), dtype=np.float64))
    return names, (np.concatenate(chunks) if chunks else np.zeros((0, net.dim)))


def fid_folders(real: str | Path, fake: str | Path, net: FeatureNet, size: int | None = None) -> dict:
    """FID and KID of the images in folder `fake` against those in `real` (fid_kid)."""
    return fid_kid(folder_features(real, net, size)[1], folder_features(fake, net, size)[1])
