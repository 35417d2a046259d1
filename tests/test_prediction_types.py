"""Any prediction type: a network predicting x0 ("sample") or v ("v_prediction") becomes an eps
prior in one place (restore.models.wrapper.Prior), so every solver restores the same with it as
with the eps form. The exact Gaussian prior (tests/gaussian_prior.py) written as an x0 and as a v
network is the model whose answer is known; diffusers folders carry the type in their scheduler
config; a schedule or a prediction type the solvers cannot use is refused in one line."""

from __future__ import annotations

import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import make_operator
from restore.errors import PriorNotFound
from restore.models.prior import DiffusersPrior, Prior, load_prior
from solvers import SOLVERS, Nested, make_generators

SIZE = 8


def gaussian(seed: int = 0) -> GaussianPrior:
    g = torch.Generator().manual_seed(seed)
    mu = 0.3 * torch.randn(3, SIZE, SIZE, generator=g, dtype=torch.float64)
    std = 0.1 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g, dtype=torch.float64)
    return GaussianPrior(mu, std)


class Predicts(torch.nn.Module):
    """The Gaussian prior's exact denoiser as a network predicting x0 or v."""

    def __init__(self, exact: GaussianPrior, kind: str):
        super().__init__()
        self.exact, self.kind = exact, kind

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x0 = self.exact.posterior_mean_x0(x_t, t)
        if self.kind == "sample":
            return x0
        a = self.exact.alphas_cumprod[t].to(x_t).view(-1, 1, 1, 1)
        return a.sqrt() * self.exact(x_t, t) - (1 - a).sqrt() * x0  # v = sqrt(a) eps - sqrt(1 - a) x0


@pytest.fixture(scope="module")
def priors():
    exact = gaussian()
    return {"epsilon": exact, **{kind: Prior(Predicts(exact, kind), exact.alphas_cumprod, f"gauss-{kind}", kind)
                                 for kind in ("sample", "v_prediction")}}


@pytest.mark.parametrize("kind", ["sample", "v_prediction"])
def test_the_wrapper_gives_the_exact_eps(priors, kind):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    for t in (0, 1, 250, 600, 999):
        tt = torch.full((4,), t)
        torch.testing.assert_close(priors[kind](x, tt), priors["epsilon"](x, tt), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
@pytest.mark.parametrize("name", list(SOLVERS))
def test_every_solver_restores_the_same_from_x0_and_v_networks(priors, name, nested):
    op = make_operator("sr2", SIZE).to("cpu", torch.float64)
    g = torch.Generator().manual_seed(1)
    x = priors["epsilon"].mu + priors["epsilon"].std * torch.randn(2, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    y = op.observe(x, 0.05, torch.Generator().manual_seed(3))
    finals = {}
    for kind, prior in priors.items():
        solver = SOLVERS[name](prior, op, steps=4)
        if nested:
            solver = Nested(solver, inner_steps=[2, 2])
        finals[kind] = solver.restore(y, 0.05, make_generators([5, 6]))
    for kind in ("sample", "v_prediction"):
        torch.testing.assert_close(finals[kind], finals["epsilon"], atol=1e-6, rtol=1e-6)


def _folder(tmp_path, **scheduler):
    from diffusers import DDPMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=16, block_out_channels=(32, 32), down_block_types=("DownBlock2D",) * 2,
                       up_block_types=("UpBlock2D",) * 2, layers_per_block=1, norm_num_groups=8, add_attention=False)
    folder = tmp_path / "m"
    unet.save_pretrained(folder)
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", **scheduler).save_pretrained(folder)
    return folder, unet.eval()


@pytest.mark.parametrize("kind", ["sample", "v_prediction"])
def test_a_diffusers_folder_says_its_prediction_type(tmp_path, kind):
    folder, unet = _folder(tmp_path, prediction_type=kind)
    prior = load_prior(str(folder))
    assert prior.prediction_type == kind
    x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([40, 700])
    a = prior.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    with torch.no_grad():
        out, eps = unet(x, t).sample, prior(x, t)
    # the prediction rebuilt from the eps the prior gives is the network's output
    rebuilt = (x - (1 - a).sqrt() * eps) / a.sqrt() if kind == "sample" else (eps - (1 - a).sqrt() * x) / a.sqrt()
    torch.testing.assert_close(rebuilt, out, atol=1e-4, rtol=1e-4)


def test_a_v_prediction_folder_restores_through_the_api(tmp_path):
    from restore import restore_image

    folder, _ = _folder(tmp_path, prediction_type="v_prediction")
    result = restore_image(torch.zeros(1, 3, 32, 32), "sr2", model=str(folder), outer=2, inner=2, seed=0, quiet=True)
    assert result.status == "complete" and torch.isfinite(result.final).all()


@pytest.mark.parametrize("config,why", [
    (dict(prediction_type="flow"), "predicts 'flow'"),
    (dict(rescale_betas_zero_snr=True), "zero terminal SNR"),
])
def test_an_unusable_prediction_type_or_schedule_is_one_line(tmp_path, config, why):
    folder, _ = _folder(tmp_path, **config)
    with pytest.raises(PriorNotFound, match=why) as info:
        load_prior(str(folder))
    assert "\n" not in str(info.value)


def test_a_scheduler_without_betas_is_one_line(tmp_path):
    from diffusers import ScoreSdeVeScheduler

    folder, _ = _folder(tmp_path)
    (folder / "scheduler_config.json").unlink()
    ScoreSdeVeScheduler().save_pretrained(folder)
    with pytest.raises(PriorNotFound, match="no discrete beta schedule") as info:
        load_prior(str(folder))
    assert "\n" not in str(info.value) and "ScoreSdeVeScheduler" in str(info.value)


def test_a_wrapper_refuses_an_unknown_prediction_type():
    with pytest.raises(PriorNotFound, match="predicts 'score'"):
        Prior(torch.nn.Identity(), gaussian().alphas_cumprod, "x", "score")
    from diffusers import UNet2DModel

    unet = UNet2DModel(sample_size=8, block_out_channels=(32,), down_block_types=("DownBlock2D",),
                       up_block_types=("UpBlock2D",), layers_per_block=1, norm_num_groups=8)
    assert DiffusersPrior(unet, gaussian().alphas_cumprod, "u").prediction_type == "epsilon"
