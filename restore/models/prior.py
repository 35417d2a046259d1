"""Load a pretrained diffusion model as a prior satisfying the solvers' protocol: `prior(x_t, t) ->
eps` with `alphas_cumprod`, plus `.image_size`, `.fixed_size` and `.name`.

The families a `--model` spec may name, one declaration each in restore/models/families/
(restore.models.registry finds them):
- bundled: "natural-ddpm", the project's prior (data/models/natural-ddpm, shipped with the package;
  trained by scripts/train_prior.py on natural photos; runs offline);
- adm: OpenAI guided-diffusion checkpoints (`ffhq_10m.pt`, `256x256_diffusion_uncond.pt`), by
  file or by the short names "ffhq" and "imagenet256" (fetched on first use);
- ddpm-checkpoint: a `.ckpt` / `.pt` file with an original DDPM state dict (DDRM's `celeba_hq.ckpt`);
- diffusers: any diffusers model id, a local diffusers folder (config.json + weights, optionally
  in a `unet/` subfolder, scheduler config beside it or in `scheduler/`), and "celebahq", Ho et
  al.'s CelebA-HQ DDPM (`google/ddpm-ema-celebahq-256`); epsilon, sample or v prediction.
The wrapper that turns every prediction type into eps: restore.models.wrapper.
"""

from __future__ import annotations

from restore.errors import PriorNotFound
from restore.models.registry import load_prior
from restore.models.wrapper import DiffusersPrior, Prior, celebahq_schedule

__all__ = ["DiffusersPrior", "Prior", "PriorNotFound", "celebahq_schedule", "load_prior"]
