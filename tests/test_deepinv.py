"""deepinv both ways (degradations/deepinv.py), on deepinv's Inpainting, BlurFFT and Downsampling
against this project's own operators on the same inputs: the same H and H^T, the same
measurement once deepinv's [0, 1] scale and noise are converted, and the same restorations from
every solver that takes the operator (the exact Gaussian prior, tests/gaussian_prior.py, so the
runs are cheap); the project's operators as deepinv physics; docs/usage/deepinv.md's example.
Skipped without deepinv (an optional extra; the dev extra installs it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import (
    BlockAverageSR,
    DeepinvOperator,
    DeepinvSVDOperator,
    FourierBlur,
    Inpainting,
    MatrixOperator,
    as_physics,
    from_deepinv,
    measurement_from_deepinv,
)
from solvers import SOLVERS, Nested, make_generators

dinv = pytest.importorskip("deepinv")
PAGE = Path(__file__).resolve().parents[1] / "docs" / "usage" / "deepinv.md"
SHAPE = (3, 8, 12)
SIGMA = 0.05  # deepinv's GaussianNoise std on [0, 1] = this project's sigma_y


def gaussian(shape=SHAPE, seed: int = 0) -> GaussianPrior:
    g = torch.Generator().manual_seed(seed)
    return GaussianPrior(0.3 * torch.randn(*shape, generator=g), 0.1 + 0.4 * torch.rand(*shape, generator=g))


def clean01(shape=SHAPE, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """Images on deepinv's [0, 1] scale."""
    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(seed))


def measured(physics, x01: torch.Tensor) -> torch.Tensor:
    """deepinv's noisy measurement of x01 (its noise drawn from the global generator, seeded)."""
    torch.manual_seed(7)
    return physics(x01)


def restore(name: str, op, y: torch.Tensor, nested: bool = False, **options) -> torch.Tensor:
    solver = SOLVERS[name](gaussian(op.image_shape), op, steps=4, **options)
    return (Nested(solver, inner_steps=[2, 2]) if nested else solver).restore(y, SIGMA, make_generators([3, 4]))


def test_inpainting_is_the_projects_for_every_solver():
    mask = torch.rand(*SHAPE, generator=torch.Generator().manual_seed(0)) > 0.4
    physics = dinv.physics.Inpainting(img_size=SHAPE, mask=mask.float(), noise_model=dinv.physics.GaussianNoise(SIGMA))
    theirs, ours = from_deepinv(physics), Inpainting(mask)
    assert isinstance(theirs, DeepinvSVDOperator)
    x = 2 * clean01() - 1
    torch.testing.assert_close(theirs.H(x), ours.to_image(ours.H(x)).flatten(1))  # y = mask * x, as an image
    torch.testing.assert_close(theirs.Vt(x), ours.Vt(x))  # kept pixels first, in order
    y_theirs = measurement_from_deepinv(physics, measured(physics, clean01()))  # noise on missing pixels too
    y_ours = ours.from_image(y_theirs.view(-1, *SHAPE))
    torch.testing.assert_close(y_ours, ours.H(x) + (y_ours - ours.H(x)))  # the kept entries
    for name in SOLVERS:
        for nested in (False, True):
            torch.testing.assert_close(restore(name, theirs, y_theirs, nested), restore(name, ours, y_ours, nested),
                                       atol=2e-5, rtol=1e-5, msg=f"{name} nested={nested}")
    # through A and A_adjoint alone: DPS and DiffPIR (its data step by conjugate gradients)
    through = DeepinvOperator(physics)
    torch.testing.assert_close(restore("dps", through, y_theirs), restore("dps", ours, y_ours), atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(restore("diffpir", through, y_theirs), restore("diffpir", ours, y_ours), atol=1e-3, rtol=0)


def test_the_noise_convention():
    """deepinv's GaussianNoise(sigma) on [0, 1] is sigma_y = sigma here: 2 sigma on [-1, 1]."""
    physics = dinv.physics.Inpainting(img_size=(3, 64, 64), mask=1.0, noise_model=dinv.physics.GaussianNoise(0.1))
    x01 = clean01((3, 64, 64), batch=4)
    noise = measurement_from_deepinv(physics, measured(physics, x01)) - (2 * x01 - 1).flatten(1)
    assert abs(float(noise.std()) - 2 * 0.1) < 0.01 and abs(float(noise.mean())) < 0.01


def test_blurfft_is_the_projects_fourier_blur():
    kernel = torch.rand(5, 3, generator=torch.Generator().manual_seed(2))
    kernel = kernel / kernel.sum()
    physics = dinv.physics.BlurFFT(img_size=SHAPE, filter=kernel[None, None], noise_model=dinv.physics.GaussianNoise(SIGMA))
    op = from_deepinv(physics, zero_below=0.0)
    assert isinstance(op, FourierBlur) and torch.equal(op.kernel, kernel)
    x = 2 * clean01() - 1
    torch.testing.assert_close(op.H(x), physics.A(x).flatten(1), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="not an SVD of orthogonal"):  # its rfft half spectrum
        DeepinvSVDOperator(physics)
    y = measurement_from_deepinv(physics, measured(physics, clean01()))
    # DiffPIR through A and A_adjoint (CG) against the closed form in the real Fourier basis
    torch.testing.assert_close(restore("diffpir", DeepinvOperator(physics), y), restore("diffpir", op, y),
                               atol=1e-3, rtol=0)
    for name in ("ddrm", "nested"):
        assert torch.isfinite(restore("ddrm", op, y, nested=name == "nested")).all()


def test_downsampling_is_the_projects_block_average():
    physics = dinv.physics.Downsampling(img_size=SHAPE, factor=4, filter=torch.ones(1, 1, 4, 4) / 16, padding="valid",
                                        noise_model=dinv.physics.GaussianNoise(SIGMA))
    op, ours = from_deepinv(physics), BlockAverageSR(*SHAPE, factor=4)
    assert isinstance(op, DeepinvOperator) and op.measurement_shape == ours.measurement_shape
    x, y_any = 2 * clean01() - 1, torch.randn(2, ours.m, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(op.H(x), ours.H(x))
    torch.testing.assert_close(op.Ht(y_any), ours.Ht(y_any))
    y = measurement_from_deepinv(physics, measured(physics, clean01()))
    for name, nested in (("dps", False), ("dps", True), ("diffpir", False), ("diffpir", True)):
        torch.testing.assert_close(restore(name, op, y, nested), restore(name, ours, y, nested),
                                   atol=1e-3 if name == "diffpir" else 2e-5, rtol=1e-5, msg=f"{name} nested={nested}")
    with pytest.raises(TypeError, match="needs the operator's SVD"):
        restore("ddrm", op, y)


def test_the_projects_operators_as_deepinv_physics():
    x = clean01()
    mask = torch.rand(*SHAPE, generator=torch.Generator().manual_seed(0)) > 0.4
    kernel = torch.rand(5, 3, generator=torch.Generator().manual_seed(2))
    kernel = kernel / kernel.sum()
    pairs = [(Inpainting(mask), dinv.physics.Inpainting(img_size=SHAPE, mask=mask.float())),
             (FourierBlur(*SHAPE, kernel, zero_below=0.0), dinv.physics.BlurFFT(img_size=SHAPE, filter=kernel[None, None])),
             (BlockAverageSR(*SHAPE, factor=4),
              dinv.physics.Downsampling(img_size=SHAPE, factor=4, filter=torch.ones(1, 1, 4, 4) / 16, padding="valid"))]
    for ours, native in pairs:
        physics = as_physics(ours)
        assert isinstance(physics, dinv.physics.DecomposablePhysics)
        torch.testing.assert_close(physics.A(x), native.A(x), atol=1e-6, rtol=0)
        assert abs(float(physics.adjointness_test(x[:1]))) < 1e-4
        torch.testing.assert_close(physics.A_dagger(physics.A(x)), ours.H_pinv(ours.H(x)), atol=1e-5, rtol=0)
    noisy = as_physics(pairs[0][0], sigma_y=0.1)
    torch.manual_seed(0)
    assert abs(float((noisy(x) - noisy.A(x))[:, mask].std()) - 0.1) < 0.02
    matrix = MatrixOperator(torch.randn(20, 3 * 4 * 5, generator=torch.Generator().manual_seed(3)), (3, 4, 5))
    physics = as_physics(matrix)
    assert not isinstance(physics, dinv.physics.DecomposablePhysics)
    assert abs(float(physics.adjointness_test(torch.rand(1, 3, 4, 5)))) < 1e-4
    y = physics.A(torch.rand(1, 3, 4, 5))
    torch.testing.assert_close(physics.A(physics.A_dagger(y)), y, atol=1e-3, rtol=1e-3)  # deepinv's own LSQR


def test_the_documented_example_runs(capsys):
    code = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(code, str(PAGE), "exec"), scope)  # noqa: S102 - the project's own documentation
    restored, measured_ = (float(v) for v in re.findall(r"([\d.]+) dB", capsys.readouterr().out))
    assert restored > measured_ + 1.0  # the prior fills the holes
    op = scope["operator"]
    assert isinstance(op, DeepinvSVDOperator)
