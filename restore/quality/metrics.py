"""Image quality metrics: PSNR, SSIM and LPIPS, per image.

Every metric takes two tensors of the same shape (B, C, H, W) with pixel values on the [-1, 1]
scale (C = 3 for colour, C = 1 for grey) and returns a (B,) float32 tensor on the first
argument's device (the reference is moved there). Each image is scored on its own, so the score
of an image does not depend on the batch it is in.

- `psnr`: per image, on the images mapped to [0, 1] and clamped to [0, 1] (DDRM's convention),
  10 log10(1 / mse) with the mse taken over all channels and pixels. The mse is floored at
  1e-10, so identical images score 100 dB instead of inf (results stay finite and averageable).
- `ssim`: `piq.ssim` on the clamped [0, 1] images (data_range 1, Gaussian window 11, sigma 1.5,
  k1 0.01, k2 0.03, and piq's default average-pool downsampling by round(short side / 256) for
  images whose short side is >= 384 px, as in Wang et al.'s reference code); colour images are scored per RGB channel and
  averaged (no conversion to luma). The window must fit the (downsampled) image: for images
  smaller than 11 px the window is shrunk to the largest odd size <= the short side (down to
  1 px, where SSIM reduces to its luminance/contrast terms on single pixels).
- `lpips`: LPIPS v0.1 with the AlexNet backbone (Zhang et al. 2018, the `lpips` package's linear
  heads), inputs clamped to [-1, 1], no resizing. Grey images (C = 1) are repeated to 3
  channels. The backbone is torchvision's ImageNet AlexNet, loaded offline (see
  `_find_backbone_weights`); if no weights can be found, or an image is smaller than 31 px on a
  side (AlexNet's pooling then runs out of pixels), the score is NaN ("null" in reports) and a
  one-line warning is issued; a random backbone is never used.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import torch

from restore.paths import LPIPS_WEIGHTS

__all__ = [
    "psnr",
    "ssim",
    "lpips",
    "lpips_available",
    "compute_all",
    "LPIPS_WEIGHTS_ENV",
    "SHIPPED_LPIPS_WEIGHTS",
    "LPIPS_MIN_SIZE",
]

#: environment variable naming a backbone weight file (.safetensors or torchvision .pth); when
#: set, it is the only file tried
LPIPS_WEIGHTS_ENV = "RESTORE_LPIPS_WEIGHTS"
#: the backbone converted by scripts/convert_lpips_weights.py (see data/weights/README.md), shipped
#: with the package (restore.paths)
SHIPPED_LPIPS_WEIGHTS = LPIPS_WEIGHTS
#: torchvision's file name for AlexNet_Weights.IMAGENET1K_V1 in the torch hub cache
TORCHVISION_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
#: smallest image side AlexNet's LPIPS features are defined for
LPIPS_MIN_SIZE = 31

PSNR_MSE_FLOOR = 1e-10  # -> at most 100 dB
SSIM_KERNEL_SIZE = 11

# torchvision alexnet `features` indices of the five convolutions, with their shapes
ALEXNET_CONV_SHAPES = {
    0: (64, 3, 11, 11),
    3: (192, 64, 5, 5),
    6: (384, 192, 3, 3),
    8: (256, 384, 3, 3),
    10: (256, 256, 3, 3),
}


# --------------------------------------------------------------------------- helpers
def _check_pair(x: torch.Tensor, ref: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (torch.is_tensor(x) and torch.is_tensor(ref)):
        raise TypeError(f"{name}: expected two tensors, got {type(x).__name__} and {type(ref).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name}: expected (B, C, H, W) tensors, got shape {tuple(x.shape)}")
    if x.shape != ref.shape:
        raise ValueError(f"{name}: shapes differ: {tuple(x.shape)} vs {tuple(ref.shape)}")
    return x.float(), ref.to(device=x.device, dtype=torch.float32)


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- PSNR / SSIM
def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of `x` against `ref` ((B, C, H, W) in [-1, 1]) -> (B,).

    Measured on the images mapped to [0, 1] and clamped (peak 1): 10 log10(1 / mse), mse over
    C, H, W. The mse is floored at 1e-10, so identical images give 100 dB, never inf."""
    x, ref = _check_pair(x, ref, "psnr")
    mse = (_to_unit(x) - _to_unit(ref)).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse.clamp_min(PSNR_MSE_FLOOR))


def _ssim_kernel_size(h: int, w: int) -> int:
    """piq's window (11) shrunk to fit the image piq actually filters (after its downsampling)."""
    side = min(h, w)
    f = max(1, round(side / 256))  # piq.ssim's average-pool factor (downsample=True)
    if f > 1:
        side = side // f
    k = min(SSIM_KERNEL_SIZE, side)
    return max(1, k if k % 2 == 1 else k - 1)


def ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of `x` against `ref` ((B, C, H, W) in [-1, 1]) -> (B,).

    `piq.ssim` on the clamped [0, 1] images (data_range 1, reduction 'none', default window 11,
    shrunk to the largest odd size <= the short side for smaller images)."""
    import piq

    x, ref = _check_pair(x, ref, "ssim")
    k = _ssim_kernel_size(x.shape[-2], x.shape[-1])
    return piq.ssim(_to_unit(x), _to_unit(ref), kernel_size=k, data_range=1.0, reduction="none").float()


# --------------------------------------------------------------------------- LPIPS
_lock = threading.Lock()
_NOT_LOOKED_UP = object()
_backbone = _NOT_LOOKED_UP  # dict[str, Tensor] (cpu) | None once looked up
_unavailable_reason = ""
_models: dict[str, torch.nn.Module] = {}
_warned: set[str] = set()


def _torchvision_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_ALEXNET_FILE


def _find_backbone_weights() -> tuple[Path | None, str]:
    """Where the AlexNet backbone comes from: (file, "") or (None, why not). Nothing is downloaded.

    Order: $RESTORE_LPIPS_WEIGHTS if set (then only that file), torchvision's own cached
    `alexnet-owt-7be5be79.pth` in the torch hub cache, the shipped
    data/weights/lpips_alexnet_backbone.safetensors."""
    env = os.environ.get(LPIPS_WEIGHTS_ENV, "").strip()
    if env:
        p = Path(env).expanduser()
        return (p, "") if p.is_file() else (None, f"${LPIPS_WEIGHTS_ENV}={env} is not a file")
    for p in (_torchvision_cache_file(), SHIPPED_LPIPS_WEIGHTS):
        if p.is_file():
            return p, ""
    return None, (
        f"no AlexNet weights (looked for {_torchvision_cache_file()} and {SHIPPED_LPIPS_WEIGHTS}; "
        f"run scripts/convert_lpips_weights.py or set ${LPIPS_WEIGHTS_ENV})"
    )


def _read_backbone(path: Path) -> dict[str, torch.Tensor]:
    """The five conv layers, as torchvision `features.N.{weight,bias}` float32 cpu tensors."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path), device="cpu")
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
    out = {}
    for idx, shape in ALEXNET_CONV_SHAPES.items():
        for part, shp in (("weight", shape), ("bias", shape[:1])):
            key = f"features.{idx}.{part}"
            t = sd.get(key) if isinstance(sd, dict) else None
            if not torch.is_tensor(t):
                raise ValueError(f"{path.name} lacks {key}")
            if tuple(t.shape) != shp:
                raise ValueError(f"{path.name}: {key} has shape {tuple(t.shape)}, expected {shp}")
            t = t.float()
            if not torch.isfinite(t).all():
                raise ValueError(f"{path.name}: {key} is not finite")
            out[key] = t
    return out


def _get_backbone() -> dict[str, torch.Tensor] | None:
    """The backbone state (looked up once per process); None if unavailable."""
    global _backbone, _unavailable_reason
    with _lock:
        if _backbone is _NOT_LOOKED_UP:
            path, why = _find_backbone_weights()
            if path is None:
                _backbone, _unavailable_reason = None, why
            else:
                try:
                    _backbone = _read_backbone(path)
                except Exception as exc:  # corrupt / foreign file: unavailable, not a crash
                    _backbone = None
                    _unavailable_reason = f"cannot read {path}: {exc}".replace("\n", " ")
        return _backbone


def _warn_once(key: str, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _reset_lpips_cache() -> None:
    """Forget the looked-up weights, built models and issued warnings (for tests)."""
    global _backbone, _unavailable_reason
    with _lock:
        _backbone = _NOT_LOOKED_UP
        _unavailable_reason = ""
        _models.clear()
        _warned.clear()


def lpips_available() -> bool:
    """Whether LPIPS can be computed (backbone weights found and readable)."""
    return _get_backbone() is not None


def _build_model(device: torch.device) -> torch.nn.Module | None:
    backbone = _get_backbone()
    if backbone is None:
        return None
    key = str(device)
    with _lock:
        model = _models.get(key)
        if model is not None:
            return model
        import lpips as lpips_pkg

        with warnings.catch_warnings():  # torchvision's deprecation noise about `pretrained`
            warnings.simplefilter("ignore")
            # pnet_rand: no torchvision download; pretrained: lpips' own linear heads (in its wheel)
            model = lpips_pkg.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
        with torch.no_grad():
            for sl, idx in zip(slices, ALEXNET_CONV_SHAPES):
                conv = getattr(sl, str(idx))  # lpips keeps torchvision's module names in its slices
                conv.weight.copy_(backbone[f"features.{idx}.weight"])
                conv.bias.copy_(backbone[f"features.{idx}.bias"])
        model = model.float().eval().requires_grad_(False).to(device)
        _models[key] = model
        return model


def lpips(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image LPIPS (v0.1, AlexNet) of `x` against `ref` ((B, C, H, W) in [-1, 1]) -> (B,).

    C must be 1 (repeated to 3 channels) or 3. NaN for every image, with a one-line warning,
    when the backbone weights are unavailable or the images are smaller than 31 px a side."""
    x, ref = _check_pair(x, ref, "lpips")
    b, c, h, w = x.shape
    if c not in (1, 3):
        raise ValueError(f"lpips: expected 1 or 3 channels, got {c}")
    nan = torch.full((b,), float("nan"), dtype=torch.float32, device=x.device)
    model = _build_model(x.device)
    if model is None:
        _warn_once("unavailable", f"LPIPS unavailable: {_unavailable_reason}; reported as null")
        return nan
    if min(h, w) < LPIPS_MIN_SIZE:
        _warn_once(f"size{h}x{w}", f"LPIPS undefined for {h}x{w} images (AlexNet needs >= {LPIPS_MIN_SIZE} px a side); reported as null")
        return nan
    if c == 1:
        x, ref = x.expand(b, 3, h, w), ref.expand(b, 3, h, w)
    with torch.no_grad():
        d = model(x.clamp(-1.0, 1.0), ref.clamp(-1.0, 1.0), normalize=False)
    return d.reshape(b).float()


def compute_all(x: torch.Tensor, ref: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"psnr", "ssim", "lpips"}: each a (B,) tensor on x's device (lpips may be NaN)."""
    return {"psnr": psnr(x, ref), "ssim": ssim(x, ref), "lpips": lpips(x, ref)}
