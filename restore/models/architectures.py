"""The U-Net configurations the project builds: the bundled prior's (and its attention variant),
trained by restore.training with the CelebA-HQ DDPM schedule, and Ho et al.'s CelebA-HQ network
with random weights, for timing and for tests of the real model's code paths."""

from __future__ import annotations

import math

from restore.models.wrapper import DiffusersPrior, celebahq_schedule

# The bundled model's architecture: 5 resolution levels, 1 ResNet block each, no attention.
ARCHITECTURE = dict(
    in_channels=3,
    out_channels=3,
    block_out_channels=(32, 64, 128, 192, 192),
    down_block_types=("DownBlock2D",) * 5,
    up_block_types=("UpBlock2D",) * 5,
    layers_per_block=1,
    add_attention=False,
    norm_num_groups=16,
    norm_eps=1e-6,
    freq_shift=1,
    flip_sin_to_cos=False,
    downsample_padding=0,
)
ATTENTION_CHANNELS = (32, 64, 128, 160, 192, 192)  # 13.6 M parameters, 27 MB in fp16
# The CelebA-HQ DDPM schedule (Ho et al. 2020).
SCHEDULE = dict(
    num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
    prediction_type="epsilon", clip_sample=False,
)


def architecture(attention: bool = False, channels: tuple[int, ...] | None = None, norm_groups: int = 16) -> dict:
    """ARCHITECTURE, or the attention variant: attention blocks in the last two levels."""
    ch = tuple(channels or (ATTENTION_CHANNELS if attention else ARCHITECTURE["block_out_channels"]))
    n, k = len(ch), (min(2, len(ch)) if attention else 0)
    arch = dict(ARCHITECTURE, block_out_channels=ch, norm_num_groups=norm_groups, add_attention=attention,
                down_block_types=("DownBlock2D",) * (n - k) + ("AttnDownBlock2D",) * k,
                up_block_types=("AttnUpBlock2D",) * k + ("UpBlock2D",) * (n - k))
    if attention:
        arch["attention_head_dim"] = math.gcd(32, *ch[n - k:])
    return arch


def make_model(attention: bool = False, channels: tuple[int, ...] | None = None, norm_groups: int = 16):
    """A new (randomly initialised) U-Net of `architecture(...)`, trained at 256 x 256."""
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=256, **architecture(attention, channels, norm_groups))


def celebahq_architecture() -> DiffusersPrior:
    """Ho et al.'s CelebA-HQ UNet (113.7M parameters) with random weights: for timing only."""
    from diffusers import UNet2DModel

    unet = UNet2DModel(
        sample_size=256, block_out_channels=(128, 128, 256, 256, 512, 512),
        down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
        layers_per_block=2, norm_eps=1e-6, freq_shift=1, flip_sin_to_cos=False, downsample_padding=0,
        attention_head_dim=None,
    )
    return DiffusersPrior(unet, celebahq_schedule(), "celebahq-architecture (random weights)")
