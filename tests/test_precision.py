"""restore.models.precision.configure_network on CPU with a tiny U-Net (and on a CUDA GPU: `pytest -m
cuda`), and `bench.py gpu` without a GPU."""

import copy
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from restore.models.precision import PRECISIONS, ConfiguredNetwork, configure_network
from restore.models.prior import DiffusersPrior, celebahq_schedule

REPO = Path(__file__).resolve().parents[1]
# bf16 vs fp32 eps of the tiny random U-Net: measured 0.011 relative error (t = 50, 500, 900;
# the bundled prior at 256x256: 0.004-0.005); the bound leaves a 4x margin.
BF16_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def prior():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=32, block_out_channels=(16, 32), down_block_types=("DownBlock2D",) * 2,
                       up_block_types=("UpBlock2D",) * 2, layers_per_block=1, norm_num_groups=8,
                       add_attention=False)
    model = DiffusersPrior(unet, celebahq_schedule(), "tiny")
    model.fixed_size = True
    return model


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()


def inputs(seed=0, t=500):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 32, 32, generator=g), torch.full((2,), t)


@pytest.mark.parametrize("t", [50, 500, 900])
def test_bf16_close_to_fp32_and_float32_out(prior, t):
    x, tt = inputs(t=t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "bf16 is slow on this CPU"
        net = configure_network(prior, "bf16")
    with torch.no_grad():
        reference, eps = prior(x, tt), net(x, tt)
    assert eps.dtype == torch.float32 and eps.shape == x.shape and eps.is_contiguous()
    assert 0 < relative_error(eps, reference) < BF16_TOLERANCE  # 16-bit: close, not identical


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("t", [50, 500, 900])
def test_16_bits_on_the_gpu_close_to_fp32_and_float32_out(prior, precision, t):
    """On CUDA both 16-bit formats run (autocast, channels-last): eps close to the fp32 call's."""
    gpu = copy.deepcopy(prior).to("cuda")
    x, tt = (v.cuda() for v in inputs(t=t))
    with torch.no_grad():
        reference, eps = configure_network(gpu, "fp32")(x, tt), configure_network(gpu, precision)(x, tt)
    assert eps.dtype == torch.float32 and eps.shape == x.shape and eps.is_cuda and eps.is_contiguous()
    assert 0 < relative_error(eps, reference) < BF16_TOLERANCE


def test_fp32_is_the_plain_call(prior):
    x, t = inputs()
    with torch.no_grad():
        assert torch.allclose(configure_network(prior)(x, t), prior(x, t), rtol=1e-5, atol=1e-6)


def test_channels_last_gives_the_same_eps(prior):
    x, t = inputs(1)
    with torch.no_grad():
        reference = prior(x, t)
        net = configure_network(prior, "fp32", channels_last=True)
        eps = net(x, t)
    prior.unet.to(memory_format=torch.contiguous_format)
    assert eps.is_contiguous() and relative_error(eps, reference) < 1e-5


def test_attributes_read_through(prior):
    net = configure_network(prior, "fp32")
    assert isinstance(net, ConfiguredNetwork) and net.prior is prior
    assert net.alphas_cumprod is prior.alphas_cumprod
    assert (net.image_size, net.name, net.device, net.dtype) == (32, "tiny", prior.device, torch.float32)
    assert net.unet is prior.unet and net.fixed_size is True and net.precision == "fp32"
    with pytest.raises(AttributeError):
        net.no_such_attribute
    assert configure_network(net, "fp32").prior is prior  # configuring again wraps the prior, not the wrapper


def test_bad_options_are_one_line_value_errors(prior):
    for bad in ("fp64", "float16", "", "BF16"):
        with pytest.raises(ValueError) as error:
            configure_network(prior, bad)
        message = str(error.value)
        assert "\n" not in message and all(p in message for p in PRECISIONS)
    with pytest.raises(ValueError, match="bf16") as error:  # fp16 on CPU: use bf16
        configure_network(prior, "fp16")
    assert "\n" not in str(error.value)


def test_compile_failure_is_a_one_line_value_error(prior, monkeypatch):
    def broken(*args, **kwargs):
        def run(*a, **k):
            raise RuntimeError("backend exploded\nsecond line")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    net = configure_network(prior, "fp32", compile=True)
    with pytest.raises(ValueError, match="torch.compile failed") as error, torch.no_grad():
        net(*inputs())
    assert "\n" not in str(error.value) and "backend exploded" in str(error.value)


def test_compile_traces_the_call(prior, monkeypatch):
    """The compiled path, traced by dynamo with the eager backend (seconds); the full inductor
    build is test_compile_inductor's (minutes on a small CPU)."""
    compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compile(fn, backend="eager", dynamic=False))
    torch._dynamo.reset()
    x, t = inputs(2)
    with torch.no_grad():
        reference, eps = prior(x, t), configure_network(prior, "fp32", compile=True)(x, t)
    assert eps.dtype == torch.float32 and relative_error(eps, reference) < 1e-5


@pytest.mark.skipif(os.environ.get("RESTORE_TEST_COMPILE") != "1" or not shutil.which("g++"),
                    reason="inductor on CPU takes minutes (measured 5-7 min on 2 shared cores): "
                           "set RESTORE_TEST_COMPILE=1 (needs g++)")
def test_compile_inductor(prior):
    torch._dynamo.reset()
    x, t = inputs(3)
    with torch.no_grad():
        reference, eps = prior(x, t), configure_network(prior, "fp32", compile=True)(x, t)
    assert relative_error(eps, reference) < 1e-4  # measured 1e-6


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without a CUDA GPU")
def test_bench_gpu_without_cuda_exits_2():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "gpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bench.py gpu needs a CUDA GPU (none found); ")


# --------------------------------------------------------------------------- through a restoration
@pytest.mark.parametrize("device, precision", [("cpu", "bf16"), pytest.param("cuda", "bf16", marks=pytest.mark.cuda),
                                               pytest.param("cuda", "fp16", marks=pytest.mark.cuda)])
def test_a_16_bit_restoration_agrees_with_fp32(tiny_model_dir, device, precision):
    """The whole path (restore_image -> configure_network -> solver): bf16 (fp16 on a GPU) changes the
    network's arithmetic only, so the restoration moves by little (tiny random U-Net, deno 0.05, DDRM 4)."""
    from restore import restore_image

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    common = dict(task="deno", sigma_y=0.05, model=str(tiny_model_dir), solver="ddrm", steps=4, quiet=True,
                  device=device)
    full = restore_image(x, **common)
    half = restore_image(x, precision=precision, **common)
    assert half.settings.precision == precision and half.metrics["settings"]["precision"] == precision
    assert half.metrics["device"].startswith(device)
    agree = (10 * torch.log10(4 / ((half.final - full.final) ** 2).mean())).item()
    assert agree > 30, agree  # dB between the two restorations
    assert abs(half.metrics["final"]["psnr"] - full.metrics["final"]["psnr"]) < 0.5


def test_fp16_on_a_cpu_is_a_one_line_error(tiny_model_dir, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs fp16")
    from test_cli_restore import cli_module

    from restore.cli.options import run_cli

    code = run_cli(cli_module.main, ["--input", str(REPO / "data" / "examples" / "face.png"), "--model", str(tiny_model_dir),
                              "--precision", "fp16", "--device", "cpu", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bf16" in err[0] and not (tmp_path / "o").exists()
