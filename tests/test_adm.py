"""OpenAI guided-diffusion (ADM) checkpoints (restore/models/families/adm.py), proved offline on
random weights in guided-diffusion's key layout:

- at 256 x 256 the loaded network gives the eps of an independent implementation
  (tests/adm_reference.py) for both published architectures (FFHQ 256 and ImageNet 256
  unconditional) at reduced width (32 channels instead of 128 / 256, all else as published: levels,
  res blocks, attention levels, 64-channel heads, scale-shift norm, res-block resampling, learned
  variance); the full-width architectures, at 256 x 256, against deepinv's DiffUNet and the same
  reference in `python scripts/bench.py models` (building ImageNet's 553M parameters twice is too
  heavy for the suite);
- the architecture is read from the shapes; a short name's declared architecture is checked;
- a whole Nested DDRM restoration runs through an ADM file on the command line, in evaluate and
  through the API, and every solver runs with it;
- `--model ffhq` fetches its weights on first use into torch.hub's folder (a file:// URL stands in
  for the mirror) and without network says in one line what to download and where.
"""

from __future__ import annotations

import dataclasses
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from adm_reference import GuidedDiffusionUNet, randomised

from restore.errors import PriorNotFound
from restore.models.families import adm
from restore.models.network import size_multiple
from restore.models.prior import load_prior
from restore.models.registry import short_names
from solvers import SOLVERS

pytest.importorskip("azula")  # the adm extra (the dev extra installs it)
TINY = dict(width=32, mult=(1, 2), blocks=1, attention_levels=(1,))  # 2 levels, attention on 64 channels


def _save(model: torch.nn.Module, path: Path, **wrap) -> Path:
    state = model.state_dict()
    torch.save({wrap["key"]: {f"module.{k}": v for k, v in state.items()}} if wrap else state, path)
    return path


@pytest.fixture(scope="module")
def tiny_adm(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    reference = randomised(GuidedDiffusionUNet(**TINY), seed=3)
    return _save(reference, tmp_path_factory.mktemp("adm") / "tiny_adm.pt"), reference


@pytest.mark.parametrize("published", ["ffhq", "imagenet256"])
def test_both_architectures_give_the_reference_eps_at_256(tmp_path, published):
    card = short_names()[published][1].architecture
    reference = randomised(GuidedDiffusionUNet(width=32, mult=card["channel_mult"], blocks=card["num_res_blocks"],
                                               attention_levels=tuple(ds.bit_length() - 1 for ds in card["attention_ds"])))
    prior = load_prior(str(_save(reference, tmp_path / f"{published}_w32.pt")))
    assert prior.architecture == dict(card, model_channels=32, num_classes=None, out_channels=6)
    assert (prior.image_size, size_multiple(prior), prior.fixed_size) == (256, 32, True)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([617])
    with torch.no_grad():
        expected, got = reference(x, t), prior(x, t)
    assert expected.shape[1] == 6 and got.shape == x.shape  # the learned variance's 3 channels dropped
    torch.testing.assert_close(got, expected[:, :3], atol=1e-4, rtol=1e-4)
    assert float(expected[:, :3].std()) > 0.1  # not a trivially zero network


def test_recognised_by_keys_wrapped_or_not_and_refused_in_one_line(tmp_path, tiny_adm):
    path, reference = tiny_adm
    wrapped = _save(reference, tmp_path / "wrapped.ckpt", key="state_dict")  # a DataParallel prefix, a wrapper
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([100])
    with torch.no_grad():
        torch.testing.assert_close(load_prior(str(wrapped))(x, t), load_prior(str(path))(x, t))
    state = reference.state_dict()
    conditional = dict(state, **{"label_emb.weight": torch.zeros(10, 128)})
    torch.save(conditional, tmp_path / "cond.pt")
    broken = {k: v for k, v in state.items() if not k.startswith("output_blocks.3.")}
    torch.save(broken, tmp_path / "broken.pt")
    for name, why in (("cond.pt", "class-conditional"), ("broken.pt", "not a guided-diffusion")):
        with pytest.raises(PriorNotFound, match=why) as info:
            load_prior(str(tmp_path / name))
        assert "\n" not in str(info.value)


def test_without_azula_the_line_says_what_to_install(tiny_adm, monkeypatch):
    monkeypatch.setitem(sys.modules, "azula.plugins.adm", None)  # import fails as if not installed
    with pytest.raises(PriorNotFound, match="pip install azula"):
        load_prior(str(tiny_adm[0]))


@pytest.mark.parametrize("name", [*SOLVERS, "nested"])
def test_every_solver_runs_with_an_adm_prior(tiny_adm, name):
    from degradations import make_operator
    from solvers import NestedDDRM, make_generators

    prior = load_prior(str(tiny_adm[0]))
    op = make_operator("sr2", 32)
    y = op.observe(torch.rand(1, 3, 32, 32) * 2 - 1, 0.05, torch.Generator().manual_seed(0))
    solver = NestedDDRM(prior, op, inner_steps=[1, 1]) if name == "nested" else SOLVERS[name](prior, op, steps=2)
    assert torch.isfinite(solver.restore(y, 0.05, make_generators([0]))).all()


def test_a_nested_ddrm_restoration_on_the_command_line(tmp_path, tiny_adm, capsys):
    """scripts/restore.py's main in this process (the script is a two-line shim, run as a process
    by tests/test_cli_restore.py): a new interpreter would cost the suite 10 s of imports."""
    from PIL import Image

    from restore.cli import restore as cli_module
    from restore.cli.options import run_cli

    Image.new("RGB", (40, 36), (120, 60, 200)).save(tmp_path / "in.png")
    argv = ["--model", tiny_adm[0], "--task", "sr4", "--input", tmp_path / "in.png", "--size", "32", "--outer", "2",
            "--inner", "2", "--out", tmp_path / "out", "--device", "cpu"]
    assert run_cli(cli_module.main, [str(a) for a in argv]) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "final.png").is_file() and Image.open(tmp_path / "out" / "final.png").size == (32, 32)


def test_a_nested_ddrm_restoration_in_evaluate_and_the_api(tmp_path, tiny_adm):
    import csv

    from PIL import Image

    from restore import restore_image
    from restore.cli.evaluate import main
    from restore.cli.options import run_cli

    (tmp_path / "data").mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32), (40 * i, 90, 160)).save(tmp_path / "data" / f"{i}.png")
    argv = ["--data", tmp_path / "data", "--out", tmp_path / "eval", "--task", "sr4", "--model", tiny_adm[0],
            "--size", "32", "--outer", "2", "--inner", "2", "--solvers", "nested", "--quiet"]
    assert run_cli(main, [str(a) for a in argv]) == 0
    with open(tmp_path / "eval" / "per_image.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["solver"] == "nested"]
    assert {(r["image"], r["nfe"]) for r in rows} == {(f"{i}.png", n) for i in range(2) for n in ("2", "4")}
    result = restore_image(tmp_path / "data" / "0.png", "sr4", model=str(tiny_adm[0]), outer=2, inner=2, size=32,
                           seed=0, quiet=True)
    assert result.status == "complete" and result.final.shape == (1, 3, 32, 32) and len(result.steps) == 2


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """torch.hub's folder in tmp_path, and no network: any URL but file:// fails as offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    urlopen = urllib.request.urlopen

    def offline(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else str(request)
        if not url.startswith("file:"):
            raise urllib.error.URLError("[Errno -2] Name or service not known")
        return urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(torch.hub, "urlopen", offline, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_offline_the_short_name_says_what_to_download_and_where(cache, tmp_path, capsys):
    from restore.cli import restore as cli_module
    from restore.cli.options import run_cli

    with pytest.raises(PriorNotFound) as info:
        load_prior("imagenet256")
    line = str(info.value)
    assert "\n" not in line and "256x256_diffusion_uncond.pt" in line and str(cache / "256x256_diffusion_uncond.pt") in line
    assert "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt" in line
    img = tmp_path / "in.png"
    __import__("PIL.Image").Image.new("RGB", (32, 32)).save(img)
    code = run_cli(cli_module.main, ["--model", "ffhq", "--input", str(img), "--out", str(tmp_path / "o")])
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "huggingface.co/deepinv/diffunet" in errors[0]
    assert str(cache / "diffusion_ffhq_10m.pt") in errors[0] and not (tmp_path / "o").exists()
    assert not cache.exists() or not list(cache.iterdir())  # nothing half-written


def test_first_use_downloads_into_the_cache_then_reads_it(cache, tiny_adm, monkeypatch, capsys):
    path, reference = tiny_adm
    family, short = short_names()["ffhq"]
    arch = load_prior(str(path)).architecture
    monkeypatch.setitem(family.short_names, "ffhq", dataclasses.replace(short, source=path.as_uri(), architecture=arch))
    prior = load_prior("ffhq")
    assert (cache / "diffusion_ffhq_10m.pt").is_file() and "downloading" in capsys.readouterr().err
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([300])
    with torch.no_grad():
        torch.testing.assert_close(prior(x, t), reference(x, t)[:, :3], atol=1e-4, rtol=1e-4)
    monkeypatch.setitem(family.short_names, "ffhq", dataclasses.replace(short, source="https://offline.invalid/x.pt",
                                                                        architecture=arch))
    assert load_prior("ffhq").name == "ffhq" and "downloading" not in capsys.readouterr().err  # the cached file
    monkeypatch.setitem(family.short_names, "ffhq", short)  # the published architecture: this file is not it
    with pytest.raises(PriorNotFound, match="differs from the published one"):
        load_prior("ffhq")
