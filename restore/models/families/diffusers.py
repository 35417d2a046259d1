"""diffusers `UNet2DModel`s: a local folder (config.json and weights, optionally in `unet/`, the
scheduler config beside them or in `scheduler/`) or a model id on the Hugging Face hub, looked up in
the local cache first and downloaded only when absent. Short name: `celebahq`, Ho et al.'s CelebA-HQ
256 DDPM. The prediction type and the schedule are read from the scheduler config (no config: the
linear 1000-step schedule, epsilon); a scheduler without a discrete beta schedule (score-SDE VE,
EDM, flow matching) is refused in one line."""

from __future__ import annotations

import torch

from restore.errors import PriorNotFound, one_line
from restore.models.family import ModelFamily, ShortName, Spec
from restore.models.wrapper import DiffusersPrior, celebahq_schedule
from restore.settings.model_spec import ALIASES, BUNDLED


def _scheduler_config(source: str, **kwargs) -> dict | None:
    """The scheduler config of a folder or model id (beside the model or in `scheduler/`), or None."""
    from diffusers import DDPMScheduler

    for subfolder in (None, "scheduler"):
        try:
            return dict(DDPMScheduler.load_config(source, subfolder=subfolder, **kwargs))
        except (OSError, ValueError, EnvironmentError):
            continue
    return None


def schedule_of(source: str, name: str, **kwargs) -> tuple[torch.Tensor, str]:
    """(alphas_cumprod, prediction type) from the scheduler config; one-line PriorNotFound when the
    config has no discrete beta schedule the solvers can use."""
    from diffusers import DDPMScheduler

    config = _scheduler_config(source, **kwargs)
    if config is None:  # Ho et al.'s checkpoints converted without a scheduler: their linear schedule
        return celebahq_schedule(), "epsilon"
    kind = config.get("_class_name", "a scheduler")
    if "num_train_timesteps" not in config or not ({"beta_schedule", "trained_betas"} & set(config)):
        raise PriorNotFound(f"{name}: its {kind} has no discrete beta schedule (alphas_cumprod over "
                            "num_train_timesteps), which the solvers need; use a DDPM/DDIM-scheduled model")
    usable = {k: v for k, v in config.items() if not k.startswith("_")}
    try:
        scheduler = DDPMScheduler.from_config(usable)
    except (NotImplementedError, ValueError, TypeError) as error:
        raise PriorNotFound(f"{name}: its schedule cannot be used ({one_line(error)[:120]})") from None
    return scheduler.alphas_cumprod, str(config.get("prediction_type", "epsilon"))


def load_diffusers(source: str, name: str, **kwargs) -> DiffusersPrior:
    """The UNet2DModel of a folder or model id (itself or its `unet/`) with its schedule."""
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
    if getattr(unet.config, "class_embed_type", None) or getattr(unet.config, "num_class_embeds", None):
        raise PriorNotFound(f"{name}: a class-conditional UNet2DModel needs class labels, which the solvers do not give")
    alphas_cumprod, prediction = schedule_of(source, name, **kwargs)
    return DiffusersPrior(unet, alphas_cumprod, name, prediction)


def _load_hub(model_id: str, spec: str) -> DiffusersPrior:
    try:
        return load_diffusers(model_id, spec, local_files_only=True)
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
        return load_diffusers(model_id, spec)
    except (OSError, ValueError) as error:
        if isinstance(error, PriorNotFound):
            raise
        raise PriorNotFound(f"cannot load model {model_id!r} ({str(error).splitlines()[0][:120]}); {advice}") from None


def _is_model_id(text: str) -> bool:
    """'org/name' or 'name': not a path (no suffix, no leading '.', '/' or '~')."""
    from pathlib import Path

    return bool(text) and not Path(text).suffix and not text.startswith((".", "/", "~"))


def _recognises(spec: Spec) -> bool:
    return spec.short is not None or spec.path.is_dir() or (_is_model_id(spec.text) and not spec.path.exists())


def _load(spec: Spec) -> DiffusersPrior:
    if spec.short is not None:
        prior = _load_hub(spec.short.source, spec.text)
    elif spec.path.is_dir():
        try:
            prior = load_diffusers(str(spec.path), spec.path.name)
        except PriorNotFound:
            raise
        except Exception as error:  # noqa: BLE001 - a missing config, foreign or damaged weights: one line
            raise PriorNotFound(f"{spec.path}: not a diffusers UNet2DModel folder ({str(error).splitlines()[0]})") from None
    else:
        prior = _load_hub(spec.text, spec.text)
    # CelebA-HQ's DDPMs were trained on aligned faces of one size: restorations default to it
    prior.fixed_size = "celeba" in (spec.short.source if spec.short else spec.text).lower()
    return prior


FAMILY = ModelFamily(
    name="diffusers",
    title="diffusers UNet2DModel (a folder or a Hugging Face model id)",
    accepts="a diffusers folder or model id",
    prediction="read from its scheduler config: epsilon, sample (x0) or v_prediction",
    schedule="its scheduler config's betas (DDPM/DDIM family); none: linear 1e-4 .. 0.02, T = 1000",
    recognises=_recognises,
    load=_load,
    short_names={"celebahq": ShortName(ALIASES["celebahq"], "Ho et al.'s CelebA-HQ 256 DDPM, 113.7M parameters, "
                                       "downloaded by huggingface_hub on first use")},
    order=90,  # last: any other bare name is taken for a model id
)
