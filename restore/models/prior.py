"""Load a pretrained DDPM as a prior satisfying the solvers' protocol: `prior(x_t, t) -> eps`
with `alphas_cumprod`, plus `.image_size` and `.name`.

Accepted specs (see `load_prior`):
- "natural-ddpm": the project's bundled prior (data/models/natural-ddpm, shipped with the package:
  restore.paths; trained by scripts/train_prior.py on natural photos; runs offline);
- "celebahq": alias of diffusers' `google/ddpm-ema-celebahq-256` (Ho et al.'s CelebA-HQ DDPM);
- any diffusers model id, or a local diffusers folder (config.json + weights, optionally in a
  `unet/` subfolder, scheduler config beside it or in `scheduler/`);
- a `.ckpt` / `.pt` file with an original DDPM state dict (DDRM's `celeba_hq.ckpt`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from restore.errors import PriorNotFound, one_line
from restore.paths import MODELS_DIR
from restore.settings.model_spec import ALIASES, BUNDLED

__all__ = ["DiffusersPrior", "PriorNotFound", "celebahq_schedule", "load_prior"]


def celebahq_schedule() -> torch.Tensor:
    """alphas_cumprod of Ho et al.'s DDPMs: linear betas 1e-4 .. 0.02, T = 1000."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


class DiffusersPrior(torch.nn.Module):
    """An epsilon-predicting `UNet2DModel` with its noise schedule.

    Calls cast x_t to the network's dtype and return eps in x_t's dtype; extra output channels
    (a learned variance) are dropped. `fixed_size`: the model was trained on aligned images of
    `image_size` (CelebA-HQ faces, Ho et al.'s checkpoints), so restorations default to that
    size; otherwise (the bundled prior, trained on random crops) they default to the input's own."""

    fixed_size = False

    def __init__(self, unet, alphas_cumprod: torch.Tensor, name: str):
        super().__init__()
        self.unet = unet.eval().requires_grad_(False)
        self.register_buffer("alphas_cumprod", alphas_cumprod.to(torch.float64), persistent=False)
        self.name = name
        size = unet.config.sample_size
        self.image_size = int(size if isinstance(size, int) else size[0])

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = self.unet(x_t.to(self.dtype), t).sample
        return eps[:, : x_t.shape[1]].to(x_t.dtype)


def _schedule_from(source: str, subfolders: tuple[str, ...], **kwargs) -> torch.Tensor | None:
    from diffusers import DDPMScheduler

    for subfolder in subfolders:
        try:
            scheduler = DDPMScheduler.from_pretrained(source, subfolder=subfolder, **kwargs)
        except (OSError, ValueError, EnvironmentError):
            continue
        if scheduler.config.prediction_type != "epsilon":
            raise PriorNotFound(f"{source}: only epsilon-prediction models are supported "
                                f"(its scheduler says {scheduler.config.prediction_type})")
        return scheduler.alphas_cumprod
    return None


def _load_diffusers(source: str, name: str, **kwargs) -> DiffusersPrior:
    from diffusers import UNet2DModel

    errors = []
    for subfolder in (None, "unet"):
        try:
            unet = UNet2DModel.from_pretrained(source, subfolder=subfolder, torch_dtype=torch.float32,
                                               low_cpu_mem_usage=False, **kwargs)
            break
        except (OSError, ValueError, EnvironmentError) as error:
            errors.append(error)
    else:
        raise errors[0]
    alphas_cumprod = _schedule_from(source, (None, "scheduler"), **kwargs)
    if alphas_cumprod is None:
        alphas_cumprod = celebahq_schedule()
    return DiffusersPrior(unet, alphas_cumprod, name)


def _load_checkpoint(path: Path) -> DiffusersPrior:
    from diffusers import UNet2DModel

    from restore.models.checkpoint import load_original_checkpoint

    try:  # torch.load with weights_only=True: a file that is not a checkpoint runs no code
        config, state = load_original_checkpoint(str(path))
        unet = UNet2DModel(sample_size=256, **config)
        missing, unexpected = unet.load_state_dict(state, strict=False)
    except Exception as error:  # noqa: BLE001 - unpickling, a foreign state dict, shapes: all one line
        raise PriorNotFound(f"{path}: not an original DDPM checkpoint ({one_line(error)[:160]}); give DDRM's "
                            "celeba_hq.ckpt or a file of its layout") from None
    if missing or unexpected:
        raise PriorNotFound(f"{path}: layers do not match a DDPM UNet (missing {missing[:3]}, unexpected {unexpected[:3]})")
    # Ho et al.'s checkpoints carry no schedule: they all use the linear 1e-4 .. 0.02, T = 1000 one.
    return DiffusersPrior(unet, celebahq_schedule(), path.stem)


def load_prior(spec: str = BUNDLED, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> DiffusersPrior:
    """Load a prior by name, model id, folder or checkpoint file (see the module docstring).

    Local files need no network. A model id is looked up in the local Hugging Face cache first;
    only when absent is it downloaded, and without network a one-line PriorNotFound says what to do."""
    name = ALIASES.get(spec, spec)
    path = Path(os.path.expanduser(name))
    if spec == BUNDLED or (Path(spec).name == spec and (MODELS_DIR / spec).is_dir()):  # a bare name only
        folder = MODELS_DIR / spec
        if not (folder / "config.json").exists():
            raise PriorNotFound(f"bundled prior {spec!r} is missing from {folder}; reinstall the project")
        prior = _load_diffusers(str(folder), spec)
    elif path.suffix in (".ckpt", ".pt", ".pth", ".bin") and path.is_file():
        prior = _load_checkpoint(path)
    elif path.is_dir():
        try:
            prior = _load_diffusers(str(path), path.name)
        except Exception as error:  # noqa: BLE001 - a missing config, foreign or damaged weights: one line
            raise PriorNotFound(f"{path}: not a diffusers UNet2DModel folder ({str(error).splitlines()[0]})") from None
    elif path.suffix or name.startswith((".", "/", "~")):
        raise PriorNotFound(f"model {spec!r} not found: give an existing folder or .ckpt/.pt file, "
                            f"{BUNDLED!r}, 'celebahq' or a diffusers model id")
    else:
        prior = _load_hub(name, spec)
    # CelebA-HQ and Ho et al.'s checkpoints (CelebA-HQ, LSUN, CIFAR-10): aligned images of one size
    prior.fixed_size = prior.fixed_size or path.suffix in (".ckpt", ".pt", ".pth", ".bin") or "celeba" in name.lower()
    return prior.to(device=device, dtype=dtype) if dtype != torch.float32 else prior.to(device)


def _load_hub(model_id: str, spec: str) -> DiffusersPrior:
    try:
        return _load_diffusers(model_id, spec, local_files_only=True)
    except (OSError, ValueError):
        pass
    advice = (f"with no network, download it elsewhere (huggingface-cli download {model_id} --local-dir DIR) "
              f"and pass DIR, or use the bundled prior {BUNDLED!r}")
    try:  # one quick request: without network it fails at once, where a download retries for a minute
        from huggingface_hub import HfApi

        HfApi().model_info(model_id, timeout=10)
    except Exception as error:  # noqa: BLE001 - no network, unknown id, refused access: all end here
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise PriorNotFound(f"cannot reach model {model_id!r} ({reason}); {advice}") from None
    try:
        return _load_diffusers(model_id, spec)
    except (OSError, ValueError) as error:
        raise PriorNotFound(f"cannot load model {model_id!r} ({str(error).splitlines()[0][:120]}); {advice}") from None

