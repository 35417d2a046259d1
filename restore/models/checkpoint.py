"""Convert an original DDPM state dict (Ho et al.'s layout, as in DDRM's `celeba_hq.ckpt`) to a
diffusers `UNet2DModel`.

The original layout names layers temb.dense.{0,1}, conv_in, down.i.block.j.{norm1,conv1,
temb_proj,norm2,conv2,nin_shortcut}, down.i.attn.j.{norm,q,k,v,proj_out} (1x1 convolutions),
down.i.downsample.conv, mid.{block_1,attn_1,block_2}, up.i.* (stored with i = resolution level,
so up.0 is the highest resolution, the reverse of diffusers' up_blocks) and norm_out, conv_out.
The architecture (channels, multipliers, blocks per level, attention levels) is read off the
tensor shapes, so any checkpoint of this family converts, not only CelebA-HQ's.
"""

from __future__ import annotations

import re

import torch

RESNET = {"norm1": "norm1", "conv1": "conv1", "temb_proj": "time_emb_proj", "norm2": "norm2",
          "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def infer_config(state: dict[str, torch.Tensor]) -> dict:
    """UNet2DModel config of an original-layout DDPM state dict (GroupNorm with 32 groups, as in
    the original code)."""
    levels = sorted({int(m.group(1)) for k in state if (m := re.match(r"down\.(\d+)\.", k))})
    if not levels or "conv_in.weight" not in state:
        raise ValueError("not an original DDPM state dict (no conv_in / down.* layers)")
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"down\.0\.block\.(\d+)\.", k))})
    channels = [state[f"down.{i}.block.0.conv2.weight"].shape[0] for i in levels]
    attention = [any(k.startswith(f"down.{i}.attn.") for k in state) for i in levels]
    return dict(
        in_channels=state["conv_in.weight"].shape[1],
        out_channels=state["conv_out.weight"].shape[0],
        block_out_channels=tuple(channels),
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        layers_per_block=len(blocks),
        attention_head_dim=None,
        norm_num_groups=32,
        norm_eps=1e-6,
        freq_shift=1,
        flip_sin_to_cos=False,
        downsample_padding=0,
        act_fn="silu",
        add_attention=any(k.startswith("mid.attn_1.") for k in state),
    )


def convert_key(key: str, levels: int) -> str:
    """Original DDPM parameter name -> UNet2DModel parameter name."""
    rules = [
        (r"temb\.dense\.0\.(.*)", r"time_embedding.linear_1.\1"),
        (r"temb\.dense\.1\.(.*)", r"time_embedding.linear_2.\1"),
        (r"norm_out\.(.*)", r"conv_norm_out.\1"),
        (r"(conv_in|conv_out)\.(.*)", r"\1.\2"),
        (r"down\.(\d+)\.downsample\.conv\.(.*)", r"down_blocks.\1.downsamplers.0.conv.\2"),
        (r"mid\.block_(\d)\.(\w+)\.(.*)", lambda m: f"mid_block.resnets.{int(m[1]) - 1}.{RESNET[m[2]]}.{m[3]}"),
        (r"mid\.attn_1\.(\w+)\.(.*)", lambda m: f"mid_block.attentions.0.{ATTENTION[m[1]]}.{m[2]}"),
        (r"down\.(\d+)\.block\.(\d+)\.(\w+)\.(.*)", lambda m: f"down_blocks.{m[1]}.resnets.{m[2]}.{RESNET[m[3]]}.{m[4]}"),
        (r"down\.(\d+)\.attn\.(\d+)\.(\w+)\.(.*)", lambda m: f"down_blocks.{m[1]}.attentions.{m[2]}.{ATTENTION[m[3]]}.{m[4]}"),
        (r"up\.(\d+)\.block\.(\d+)\.(\w+)\.(.*)", lambda m: f"up_blocks.{levels - 1 - int(m[1])}.resnets.{m[2]}.{RESNET[m[3]]}.{m[4]}"),
        (r"up\.(\d+)\.attn\.(\d+)\.(\w+)\.(.*)", lambda m: f"up_blocks.{levels - 1 - int(m[1])}.attentions.{m[2]}.{ATTENTION[m[3]]}.{m[4]}"),
        (r"up\.(\d+)\.upsample\.conv\.(.*)", lambda m: f"up_blocks.{levels - 1 - int(m[1])}.upsamplers.0.conv.{m[2]}"),
    ]
    for pattern, replacement in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(f"unexpected layer {key!r} in an original DDPM checkpoint")


def convert_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """(UNet2DModel config, converted state dict). Attention 1x1 conv kernels become linear weights."""
    config = infer_config(state)
    levels = len(config["block_out_channels"])
    converted = {}
    for key, value in state.items():
        new_key = convert_key(key, levels)
        if ".attentions." in new_key and new_key.endswith(".weight") and value.ndim == 4:
            value = value[:, :, 0, 0]
        converted[new_key] = value
    return config, converted

