"""OpenAI's guided-diffusion U-Net (ADM; Dhariwal & Nichol 2021, sec. 3; Nichol & Dhariwal 2021):
the FFHQ 256 model released with DPS (`ffhq_10m.pt`) and the ImageNet 256 unconditional one
(`256x256_diffusion_uncond.pt`), which DPS, DiffPIR, DDNM, DAPS and RED-diff benchmark with.

- Recognised by its keys (time_embed, input_blocks, middle_block, output_blocks, out).
- The architecture is read from the state dict's shapes (`architecture`): base width from
  time_embed.0, levels and res blocks per level from where the up path's up-samplers sit, channel
  multipliers from each level's first res block, attention levels from its qkv layers,
  scale-shift norm from emb_layers' width (2 x channels), res-block up/down-sampling, learned
  variance from out.2 (6 channels for 3). What shapes cannot show is declared: 64 channels per
  attention head in the legacy head-then-qkv order (the setting of both published models and of
  guided-diffusion's other 256 px ones). The short names also declare each file's architecture,
  checked against what its shapes give, so a wrong or damaged download is refused.
- Learned variance (Improved DDPM, sec. 3.1): the first 3 output channels are eps, the other 3
  interpolate the log variance; the solvers here use the schedule's variances and ignore them.
- Schedule: the linear one, betas 1e-4 .. 0.02 over T = 1000, as both were trained
  (guided-diffusion's get_named_beta_schedule("linear", 1000)); the network takes t in [0, 999].
- The network is built by azula's ADM plugin (`azula.plugins.adm.make_model(...).backbone`:
  guided-diffusion's UNetModel with its key layout, MIT; `pip install azula`), so OpenAI's files
  load with load_state_dict as they are.
- Image size: guided-diffusion's models end their down path at 8 x 8, so a model with L levels
  was trained at 8 * 2^(L - 1) (6 levels: 256); they were trained on one size of aligned or
  centre-cropped images, so restorations default to it. Class-conditional files (label_emb) are
  refused: the solvers give no labels.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import torch

from restore.errors import PriorNotFound, one_line
from restore.models.family import ModelFamily, ShortName, Spec, fetch
from restore.models.wrapper import Prior, celebahq_schedule

#: what the shapes do not show (module docstring)
HEAD_CHANNELS = 64
FFHQ = dict(in_channels=3, model_channels=128, channel_mult=(1, 1, 2, 2, 4, 4), num_res_blocks=1, attention_ds=(16,),
            learn_sigma=True, use_scale_shift_norm=True, resblock_updown=True)
IMAGENET256 = dict(FFHQ, model_channels=256, num_res_blocks=2, attention_ds=(8, 16, 32))


def _blocks(state: dict, prefix: str) -> list[int]:
    return sorted({int(m[1]) for k in state if (m := re.match(rf"{prefix}\.(\d+)\.", k))})


def architecture(state: dict[str, torch.Tensor]) -> dict:
    """guided-diffusion's UNetModel arguments read from a state dict's shapes (module docstring);
    a ValueError says what does not fit."""
    inputs, outputs = _blocks(state, "input_blocks"), _blocks(state, "output_blocks")
    model_channels = state["time_embed.0.weight"].shape[1]
    in_channels = state["input_blocks.0.0.weight"].shape[1]
    out_channels = state["out.2.weight"].shape[0]

    def layers(j: int) -> int:
        return len(_blocks(state, rf"output_blocks\.{j}"))

    # an up path block holds a res block, then attention (qkv) if its level has it, then the up-sampler
    ups = [j for j in outputs if layers(j) > 1 + (f"output_blocks.{j}.1.qkv.weight" in state)]
    per_level = ups[0] + 1 if ups else len(outputs)
    levels = len(outputs) // max(per_level, 1)
    if per_level < 2 or levels * per_level != len(outputs) or len(inputs) != levels * per_level:
        raise ValueError(f"{len(inputs)} input and {len(outputs)} output blocks fit no guided-diffusion U-Net")
    first = [1 + level * per_level for level in range(levels)]  # each level's first res block
    widths = [state[f"input_blocks.{i}.0.out_layers.3.weight"].shape[0] for i in first]
    down = per_level  # the first down-sampling block
    return dict(
        in_channels=in_channels,
        model_channels=model_channels,
        channel_mult=tuple(w // model_channels if w % model_channels == 0 else w / model_channels for w in widths),
        num_res_blocks=per_level - 1,
        attention_ds=tuple(2**level for level, i in enumerate(first) if f"input_blocks.{i}.1.qkv.weight" in state),
        learn_sigma=out_channels == 2 * in_channels,
        use_scale_shift_norm=state["input_blocks.1.0.emb_layers.1.weight"].shape[0] == 2 * widths[0],
        resblock_updown=levels > 1 and f"input_blocks.{down}.0.in_layers.0.weight" in state,
        num_classes=state["label_emb.weight"].shape[0] if "label_emb.weight" in state else None,
        out_channels=out_channels,
    )


def image_size(config: dict) -> int:
    """The size a guided-diffusion model of these levels was trained at (module docstring)."""
    return 8 * 2 ** (len(config["channel_mult"]) - 1)


def build(config: dict) -> torch.nn.Module:
    """guided-diffusion's UNetModel of `config` (architecture's keys), weights left uninitialised."""
    try:
        from azula.nn.utils import skip_init
        from azula.plugins.adm import make_model
    except ImportError:
        raise PriorNotFound("guided-diffusion (ADM) models need azula: pip install azula "
                            "(or pip install 'anytime-restore[adm]')") from None
    size = image_size(config)
    if config["out_channels"] not in (config["in_channels"], 2 * config["in_channels"]):
        raise ValueError(f"{config['out_channels']} output channels for {config['in_channels']} input ones")
    for ds in config["attention_ds"]:
        width = int(config["channel_mult"][ds.bit_length() - 1] * config["model_channels"])
        if width % HEAD_CHANNELS:
            raise ValueError(f"attention over {width} channels, not a multiple of {HEAD_CHANNELS} per head")
    with skip_init():
        denoiser = make_model(
            learn_var=config["learn_sigma"], image_channels=config["in_channels"], image_size=size,
            attention_resolutions=tuple(size // ds for ds in config["attention_ds"]),
            channel_mult=config["channel_mult"], num_channels=config["model_channels"], num_classes=None,
            num_res_blocks=config["num_res_blocks"], num_head_channels=HEAD_CHANNELS,
            use_scale_shift_norm=config["use_scale_shift_norm"], resblock_updown=config["resblock_updown"],
            use_new_attention_order=False)
    return denoiser.backbone


def prior_of(state: dict[str, torch.Tensor], name: str, expected: dict | None = None) -> Prior:
    """The eps prior of a guided-diffusion state dict (module docstring); one-line PriorNotFound
    when it does not fit. expected: the architecture a known file must have."""
    try:
        config = architecture(state)
    except (KeyError, ValueError, IndexError) as error:
        raise PriorNotFound(f"{name}: not a guided-diffusion (ADM) U-Net ({one_line(error)[:120]})") from None
    if config["num_classes"]:
        raise PriorNotFound(f"{name}: a class-conditional guided-diffusion model ({config['num_classes']} classes) "
                            "needs labels, which the solvers do not give; use an unconditional one")
    if expected and any(config[k] != v for k, v in expected.items()):
        wrong = {k: config[k] for k, v in expected.items() if config[k] != v}
        raise PriorNotFound(f"{name}: the file's architecture differs from the published one ({wrong}); "
                            "delete it and download it again")
    try:
        unet = build(config)
        unet.load_state_dict(state, strict=True)
    except PriorNotFound:
        raise
    except Exception as error:  # noqa: BLE001 - extra or missing layers, wrong shapes: one line
        raise PriorNotFound(f"{name}: does not load as a guided-diffusion (ADM) U-Net ({one_line(error)[:160]})") from None
    levels = len(config["channel_mult"])
    layout = SimpleNamespace(block_out_channels=tuple(int(m * config["model_channels"]) for m in config["channel_mult"]),
                             layers_per_block=config["num_res_blocks"])
    prior = Prior(unet.float(), celebahq_schedule(), name, "epsilon", image_size(config), 2 ** (levels - 1), layout)
    prior.fixed_size = True
    prior.architecture = config
    return prior


def _recognises(spec: Spec) -> bool:
    state = spec.state
    return state is not None and "input_blocks.0.0.weight" in state and "time_embed.0.weight" in state


def _load(spec: Spec) -> Prior:
    if spec.short is not None:
        file = Spec(spec.text, path=fetch(spec.text, spec.short))
        if file.state is None:
            raise PriorNotFound(f"model {spec.text!r}: {file.path} does not read as a checkpoint ({file.error}); "
                                "delete it and run again to download it anew")
        return prior_of(file.state, spec.text, spec.short.architecture)
    return prior_of(spec.state, spec.path.stem)


FAMILY = ModelFamily(
    name="adm",
    title="OpenAI guided-diffusion (ADM) U-Net checkpoints",
    accepts="a guided-diffusion .pt (ffhq_10m.pt, 256x256_diffusion_uncond.pt)",
    prediction="epsilon (first 3 of 6 output channels; the learned variance is ignored)",
    schedule="linear 1e-4 .. 0.02, T = 1000 (as trained)",
    recognises=_recognises,
    load=_load,
    short_names={
        "ffhq": ShortName("https://huggingface.co/deepinv/diffunet/resolve/main/diffusion_ffhq_10m.pt",
                          "guided-diffusion FFHQ 256 (DPS's ffhq_10m.pt, 93.6M parameters), deepinv's mirror",
                          filename="diffusion_ffhq_10m.pt", size="357 MB", architecture=FFHQ),
        "imagenet256": ShortName("https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
                                 "guided-diffusion ImageNet 256 unconditional (552.8M parameters), OpenAI's URL",
                                 filename="256x256_diffusion_uncond.pt", size="2.1 GB", architecture=IMAGENET256),
    },
    order=10,
    example="guided-diffusion's ffhq_10m.pt",
)
