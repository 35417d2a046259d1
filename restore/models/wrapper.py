"""The prior wrapper: a denoising network and its noise schedule, called as every solver calls a
prior, `prior(x_t, t) -> eps`, with `prior.alphas_cumprod`.

Networks are trained to predict one of three things about x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps
(Ho et al. 2020, eq. 4): the noise eps ("epsilon", eq. 12), the clean image x0 ("sample"), or
v = sqrt(a_t) eps - sqrt(1 - a_t) x0 ("v_prediction", Salimans & Ho 2022, sec. 4 / appendix D).
`Prior.forward` turns each into eps here and nowhere else, so every solver works with any of them:

    sample:        eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)
    v_prediction:  eps = sqrt(a_t) v + sqrt(1 - a_t) x_t

Extra output channels (a learned variance: guided-diffusion's last 3 of 6, Nichol & Dhariwal
2021, sec. 3.1) are dropped: the solvers here use the schedule's variances, not the network's.
A schedule that cannot be used is refused in one line: it must fall strictly from a_0 <= 1 and
end above 0 (a zero terminal SNR leaves x0 = (x_t - sqrt(1 - a) eps) / sqrt(a) undefined at T).
"""

from __future__ import annotations

import torch

from restore.errors import PriorNotFound

PREDICTIONS = ("epsilon", "sample", "v_prediction")


def celebahq_schedule() -> torch.Tensor:
    """alphas_cumprod of the linear schedule, betas 1e-4 .. 0.02 over T = 1000 (Ho et al. 2020,
    sec. 4): Ho et al.'s DDPMs (CelebA-HQ among them) and guided-diffusion's "linear" models."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def check_schedule(alphas_cumprod: torch.Tensor, name: str) -> torch.Tensor:
    """alphas_cumprod as float64, or a one-line PriorNotFound saying why the solvers cannot use it."""
    a = torch.as_tensor(alphas_cumprod, dtype=torch.float64).detach().cpu()
    if a.ndim != 1 or len(a) < 2 or not bool(torch.isfinite(a).all()):
        raise PriorNotFound(f"{name}: its noise schedule is not a finite 1-D alphas_cumprod of >= 2 steps")
    if float(a[-1]) <= 0.0:
        raise PriorNotFound(f"{name}: its schedule ends at alphas_cumprod = 0 (zero terminal SNR), where the solvers' "
                            "x0 = (x_t - sqrt(1 - a) eps) / sqrt(a) is undefined; use a model trained without it")
    if float(a[0]) > 1.0 or not bool((a[1:] < a[:-1]).all()):
        raise PriorNotFound(f"{name}: its alphas_cumprod must fall strictly from <= 1; this schedule cannot be used")
    return a


def to_epsilon(output: torch.Tensor, x_t: torch.Tensor, a_t: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The noise eps that a network output of `prediction_type` stands for (module docstring);
    a_t: alphas_cumprod at each image's time, broadcastable to x_t."""
    if prediction_type == "epsilon":
        return output
    if prediction_type == "sample":
        return (x_t - a_t.sqrt() * output) / (1 - a_t).sqrt()
    if prediction_type == "v_prediction":
        return a_t.sqrt() * output + (1 - a_t).sqrt() * x_t
    raise ValueError(f"unknown prediction type {prediction_type!r}")


class Prior(torch.nn.Module):
    """A network (`unet`: called as unet(x_t, t)) with its schedule, as the solvers call a prior.

    prediction_type: what the network predicts (PREDICTIONS); image_size: the size it was
    trained at; fixed_size: trained on aligned images of that one size (faces, ImageNet crops), so
    restorations default to it (restore.restoration.sizing); otherwise to the input's own size.
    size_multiple: the side multiple the network runs on (restore.models.network pads to it);
    layout: its channels per level and blocks per level (block_out_channels, layers_per_block), for
    the memory estimate of restore.models.network, when the network has no diffusers config.
    Calls cast x_t to the network's dtype and return eps in x_t's dtype."""

    fixed_size = False

    def __init__(self, unet, alphas_cumprod: torch.Tensor, name: str, prediction_type: str = "epsilon",
                 image_size: int = 256, size_multiple: int = 1, layout=None):
        super().__init__()
        if prediction_type not in PREDICTIONS:
            raise PriorNotFound(f"{name}: it predicts {prediction_type!r}; the solvers can use a network that "
                                f"predicts {', '.join(PREDICTIONS)}")
        self.unet = unet.eval().requires_grad_(False)
        self.register_buffer("alphas_cumprod", check_schedule(alphas_cumprod, name), persistent=False)
        self.name, self.prediction_type = name, prediction_type
        self.image_size, self.size_multiple, self.layout = int(image_size), int(size_multiple), layout

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters(), self.alphas_cumprod).device

    @property
    def dtype(self) -> torch.dtype:
        """The network's dtype (a network without parameters: the default dtype; it is then
        called in x_t's own dtype)."""
        return next(self.unet.parameters(), torch.empty(0)).dtype

    def network(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's raw output for x (in the network's dtype); subclasses adapt the call."""
        return self.unet(x, t)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        weight = next(self.unet.parameters(), None)
        out = self.network(x_t if weight is None else x_t.to(weight.dtype), t)[:, : x_t.shape[1]].to(x_t.dtype)
        if self.prediction_type == "epsilon":
            return out
        t = torch.as_tensor(t, device=self.alphas_cumprod.device).reshape(-1)
        a_t = self.alphas_cumprod[t.long()].to(device=x_t.device, dtype=x_t.dtype).view(-1, 1, 1, 1)
        return to_epsilon(out, x_t, a_t, self.prediction_type)


class DiffusersPrior(Prior):
    """A diffusers `UNet2DModel` (its output's `.sample`), image_size from its config."""

    def __init__(self, unet, alphas_cumprod: torch.Tensor, name: str, prediction_type: str = "epsilon"):
        size = unet.config.sample_size
        super().__init__(unet, alphas_cumprod, name, prediction_type, int(size if isinstance(size, int) else size[0]))

    def network(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t).sample
