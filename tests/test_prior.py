"""Loading priors: original DDPM checkpoints (DDRM's celeba_hq.ckpt layout), diffusers folders."""

from __future__ import annotations

import pytest
import torch
from ddpm_reference import OriginalDDPM

from restore.errors import PriorNotFound
from restore.models.prior import celebahq_schedule, load_prior


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere (norm gains and biases too), so every mapped tensor matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("blocks,attn_levels", [(2, (2,)), (1, (1, 3))])
def test_original_checkpoint_gives_identical_eps(tmp_path, blocks, attn_levels):
    reference = randomised(OriginalDDPM(ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=blocks, attn_levels=attn_levels))
    path = tmp_path / "celeba_like.ckpt"
    torch.save(reference.state_dict(), path)
    prior = load_prior(str(path))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([10, 700])
    with torch.no_grad():
        expected = reference(x, t)
        got = prior(x, t)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()
    assert torch.allclose(prior.alphas_cumprod, celebahq_schedule())
    assert prior.name == "celeba_like"


def test_checkpoint_wrapped_in_state_dict_key(tmp_path):
    reference = randomised(OriginalDDPM(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_levels=()))
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(load_prior(str(path))(x, torch.tensor([5])), reference(x, torch.tensor([5])), atol=1e-4)


def test_diffusers_folder_round_trip(tmp_path):
    from diffusers import DDPMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=16, block_out_channels=(32, 32), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), layers_per_block=1, norm_num_groups=8)
    unet.save_pretrained(tmp_path / "m")
    DDPMScheduler(num_train_timesteps=500, beta_schedule="linear").save_pretrained(tmp_path / "m")
    prior = load_prior(str(tmp_path / "m"))
    assert prior.image_size == 16 and len(prior.alphas_cumprod) == 500
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        got, expected = prior(x, torch.tensor([3])), unet.eval()(x, torch.tensor([3])).sample
    # two separately loaded copies of a network: equal up to float kernel rounding, not bit for bit
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), (got - expected).abs().max()


def test_not_found_errors_are_one_line(tmp_path):
    for spec in [str(tmp_path / "missing.ckpt"), str(tmp_path / "nothing")]:
        with pytest.raises(PriorNotFound) as info:
            load_prior(spec)
        assert "\n" not in str(info.value)
    bad = tmp_path / "bad.ckpt"
    torch.save({"foo.weight": torch.zeros(3)}, bad)
    with pytest.raises(PriorNotFound, match="not an original DDPM"):
        load_prior(str(bad))


def test_unknown_model_id_fails_in_one_line():
    """Offline this fails at once (one quick request, no download retries); online the hub says no."""
    with pytest.raises(PriorNotFound) as info:
        load_prior("no-such-org/no-such-ddpm-model")
    assert "\n" not in str(info.value) and "no-such-ddpm-model" in str(info.value)


# --------------------------------------------------------------------------- the families' registry
TOY_FAMILY = '''
import torch
from restore.models.family import ModelFamily, ShortName
from restore.models.wrapper import Prior, celebahq_schedule

class Zero(torch.nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x)

FAMILY = ModelFamily(name="toy", title="a toy family", accepts="a .toy file", prediction="sample",
                     schedule="linear", recognises=lambda spec: spec.path.suffix == ".toy",
                     load=lambda spec: Prior(Zero(), celebahq_schedule(), spec.text, "sample"),
                     short_names={"toy-model": ShortName("nowhere", "the toy")})
'''


@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    """One more file in restore/models/families/ (its folder extended to tmp_path for the test)."""
    import sys

    from restore.models import families, registry

    (tmp_path / "toy_family.py").write_text(TOY_FAMILY)
    monkeypatch.setattr(families, "__path__", [*families.__path__, str(tmp_path)])
    registry.families.cache_clear()
    yield registry
    sys.modules.pop("restore.models.families.toy_family", None)
    registry.families.cache_clear()


def test_a_new_family_is_one_file(toy_family):
    from restore.cli.restore import build_parser

    assert "toy-model" in toy_family.model_help() and "a .toy file" in toy_family.model_help()
    prior = load_prior("toy-model")
    assert prior.prediction_type == "sample" and prior.name == "toy-model"
    x, t = torch.randn(1, 3, 8, 8), torch.tensor([500])
    a = prior.alphas_cumprod[500].float()
    torch.testing.assert_close(prior(x, t), x / (1 - a).sqrt())  # x0 = 0: eps = x_t / sqrt(1 - a)
    assert load_prior("some.toy").name == "some.toy"
    [model_flag] = [a for a in build_parser()._actions if "--model" in a.option_strings]
    assert "toy-model" in model_flag.help  # the command line's help, derived


def test_every_short_name_and_file_family_resolves():
    from restore.models.registry import families, family_of, short_names
    from restore.settings.model_spec import ALIASES, BUNDLED

    names = short_names()
    assert {BUNDLED, "celebahq", "ffhq", "imagenet256"} <= set(names)
    assert names["celebahq"][1].source == ALIASES["celebahq"]
    for name, (family, _) in names.items():
        assert family_of(name)[0] is family
    assert [f.name for f in families()] == ["bundled", "adm", "ddpm-checkpoint", "diffusers"]
    assert family_of("org/some-model")[0].name == "diffusers"


def test_the_docs_list_every_family_and_short_name():
    from pathlib import Path

    from restore.models.registry import families, short_names

    page = (Path(__file__).resolve().parents[1] / "docs" / "tasks-and-models.md").read_text()
    missing = [f"`{n}`" for n in short_names() if f"`{n}`" not in page]
    missing += [f.title for f in families() if f.title not in page]
    assert not missing, f"docs/tasks-and-models.md does not list {missing}"
