import os
import sys

import pytest

# Test helpers (gaussian_prior, ddpm_reference) live beside the tests.
sys.path.insert(0, os.path.dirname(__file__))

# The devices a device-taking test runs on: the CPU always; a CUDA GPU when there is one. The CUDA
# cases carry the `cuda` marker, so `pytest -m cuda` runs exactly them (scripts/gpu_session.sh does,
# on a lent card); without a GPU they are skipped, with the reason.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request):
    """The device to run on ("cpu" or "cuda", as a torch.device): parametrises the test over both."""
    import torch

    return torch.device(request.param)


def pytest_collection_modifyitems(config, items):
    """Every `cuda` test (marked, or its device parameter) is skipped when no CUDA GPU is present."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (pytest -m cuda runs these on one)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight epsilon UNet in diffusers format with the CelebA-HQ schedule, for fast
    end-to-end runs (its restorations are meaningless; use the bundled prior to test quality)."""
    import torch
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny-ddpm"
    unet = UNet2DModel(sample_size=32, block_out_channels=(16, 32), down_block_types=("DownBlock2D",) * 2,
                       up_block_types=("UpBlock2D",) * 2, layers_per_block=1, norm_num_groups=8, add_attention=False)
    unet.save_pretrained(folder)
    DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                  clip_sample=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: faster on small CPUs and the setting torchrun's workers
    get (the evaluation tests)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
