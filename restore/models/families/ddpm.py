"""Ho et al.'s DDPM checkpoints in their original layout (DDRM's `celeba_hq.ckpt`: conv_in,
down.i.block.j, mid, up.i, conv_out), converted to a diffusers UNet2DModel on load with the
architecture read off the tensor shapes (restore.models.checkpoint). They carry no schedule: all
of them use the linear 1e-4 .. 0.02, T = 1000 one, and predict epsilon."""

from __future__ import annotations

from restore.errors import PriorNotFound, one_line
from restore.models.family import ModelFamily, Spec
from restore.models.wrapper import DiffusersPrior, celebahq_schedule


def _recognises(spec: Spec) -> bool:
    state = spec.state
    return state is not None and "conv_in.weight" in state and any(k.startswith("down.") for k in state)


def _load(spec: Spec) -> DiffusersPrior:
    from diffusers import UNet2DModel

    from restore.models.checkpoint import convert_state_dict

    try:
        config, state = convert_state_dict(spec.state)
        unet = UNet2DModel(sample_size=256, **config)
        missing, unexpected = unet.load_state_dict(state, strict=False)
    except Exception as error:  # noqa: BLE001 - a foreign layer, wrong shapes: one line
        raise PriorNotFound(f"{spec.path}: not an original DDPM checkpoint ({one_line(error)[:160]}); give DDRM's "
                            "celeba_hq.ckpt or a file of its layout") from None
    if missing or unexpected:
        raise PriorNotFound(f"{spec.path}: layers do not match a DDPM UNet (missing {missing[:3]}, unexpected {unexpected[:3]})")
    prior = DiffusersPrior(unet, celebahq_schedule(), spec.path.stem)
    prior.fixed_size = True  # CelebA-HQ, LSUN, CIFAR-10: aligned images of one size
    return prior


FAMILY = ModelFamily(
    name="ddpm-checkpoint",
    title="Ho et al.'s DDPM, original layout (DDRM's celeba_hq.ckpt)",
    accepts="an original-layout DDPM .ckpt (DDRM's celeba_hq.ckpt)",
    prediction="epsilon",
    schedule="linear 1e-4 .. 0.02, T = 1000 (the file carries none; Ho et al.'s)",
    recognises=_recognises,
    load=_load,
    order=20,
    example="DDRM's celeba_hq.ckpt",
)
