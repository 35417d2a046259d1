"""Tests of the degradation operators (SVD form of DDRM, Kawar et al. 2022), deepinv-style:
orthogonality of U and V, H against independent dense references, adjointness, pseudo-inverse,
singular values, noisy observation, measurement images, masks, and make_operator's errors."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from degradations import (  # noqa: E402
    TASKS,
    BicubicSR,
    BlockAverageSR,
    Colorization,
    Deblurring,
    Denoising,
    Inpainting,
    SeparableOperator,
    SVDOperator,
    box_mask,
    load_mask,
    make_operator,
    pixel_sigma_to_model,
    random_mask,
    text_mask,
    uniform_kernel,
)
from degradations.noise import make_generators  # noqa: E402

DT = torch.float64
ATOL = 1e-5  # operators are built in float32, then cast to float64 for the checks

# (task, image size, channels, options); zero_below=0 makes separable ops the exact blur/bicubic
CASES = [
    ("deno", 12, 1, {}),
    ("deno", (12, 20), 3, {}),
    ("sr2", 12, 1, {}),
    ("sr2", (12, 20), 3, {}),
    ("sr4", 12, 3, {}),
    ("sr4", 20, 1, {}),
    ("sr8", 16, 3, {}),
    ("sr8", 48, 1, {}),
    ("sr16", 16, 1, {}),
    ("sr16", (48, 16), 3, {}),
    ("sr_bicubic4", 12, 1, {"zero_below": 0.0}),
    ("sr_bicubic4", (20, 12), 3, {"zero_below": 0.0}),
    ("sr_bicubic8", 16, 3, {"zero_below": 0.0}),
    ("sr_bicubic8", 48, 1, {"zero_below": 0.0}),
    ("color", 12, 3, {}),
    ("color", (12, 20), 3, {}),
    ("inp_box", 12, 1, {}),
    ("inp_box", (12, 20), 3, {}),
    ("inp_random", 12, 3, {"fraction_missing": 0.3, "mask_seed": 4}),
    ("inp_random", 20, 1, {}),
    ("inp_text", 20, 3, {}),
    ("inp_text", (12, 20), 1, {}),
    ("inp_mask", 12, 3, {"mask": random_mask(12, 12, 0.7, seed=1)}),
    ("inp_mask", 12, 3, {"mask": random_mask(36, 12, 0.5, seed=2).reshape(3, 12, 12)}),
    ("deblur_uniform", 12, 1, {"zero_below": 0.0}),
    ("deblur_uniform", (20, 12), 3, {"zero_below": 0.0}),
    ("deblur_gauss", 20, 3, {"blur_sigma": 1.0, "zero_below": 0.0}),
    ("deblur_gauss", (12, 20), 1, {"blur_sigma": 2.0, "zero_below": 0.0}),
    # the Fourier blurs: circular, any kernel (non-separable, even sides, non-square images)
    ("deblur_motion", 12, 1, {"kernel_size": 7, "kernel_seed": 3, "zero_below": 0.0}),
    ("deblur_motion", (13, 10), 3, {"kernel_size": 5, "kernel_seed": 1, "zero_below": 0.0}),
    ("deblur_disk", (11, 14), 3, {"disk_radius": 2.0, "zero_below": 0.0}),
    ("deblur", (9, 7), 1, {"kernel": torch.tensor([[0.1, 0.3, 0.0], [0.5, 0.2, 0.1], [0.0, 0.4, 0.2],
                                                   [0.3, 0.0, 0.1]], dtype=DT), "zero_below": 0.0}),
    ("deblur", 8, 3, {"kernel": torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=DT), "zero_below": 0.0}),
]
FOURIER = ("deblur_motion", "deblur_disk", "deblur")
SEPARABLE = ("deblur_uniform", "deblur_gauss", "sr_bicubic4", "sr_bicubic8")
IDS = [f"{t}-{s if isinstance(s, int) else 'x'.join(map(str, s))}-c{c}-{i}" for i, (t, s, c, _) in enumerate(CASES)]


def _hw(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def build(case, exact: bool = True, **extra) -> SVDOperator:
    task, size, channels, options = case
    if not exact:
        options = {k: v for k, v in options.items() if k != "zero_below"}
    options = {**options, **extra}
    return make_operator(task, size, channels, **options).to(dtype=DT)


def rand_image(op: SVDOperator, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *op.image_shape), generator=g, dtype=DT) * 2 - 1


def rand_flat(batch: int, size: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, size, generator=torch.Generator().manual_seed(seed), dtype=DT)


def reference_mask(case) -> torch.Tensor:
    """The (C, H, W) mask of an inpainting case, made independently of the operator."""
    task, size, channels, options = case
    h, w = _hw(size)
    if task == "inp_box":
        m = box_mask(h, w)
    elif task == "inp_random":
        m = random_mask(h, w, options.get("fraction_missing", 0.5), options.get("mask_seed", 0))
    elif task == "inp_text":
        m = text_mask(h, w)
    else:
        m = options["mask"]
    return m.expand(channels, h, w) if m.dim() == 2 else m


def reference_kernel(case) -> torch.Tensor:
    """The kernel of a Fourier blur case, normalised to sum 1."""
    from degradations.kernels import disk_kernel, motion_kernel

    task, _, _, options = case
    if task == "deblur_motion":
        k = motion_kernel(options.get("kernel_seed", 0), options.get("kernel_size", 17))
    elif task == "deblur_disk":
        k = disk_kernel(options.get("disk_radius", 3.0))
    else:
        k = options["kernel"].double()
    return k / k.sum()


def reference_H(case, x: torch.Tensor) -> torch.Tensor:
    """Dense reference of H x (B, m), from torch primitives, not from the operators' code."""
    task, size, channels, options = case
    b, c, h, w = x.shape
    if task == "deno":
        return x.reshape(b, -1)
    if task in ("sr2", "sr4", "sr8", "sr16"):
        return F.avg_pool2d(x, int(task[2:])).reshape(b, -1)
    if task.startswith("sr_bicubic"):
        r = int(task[len("sr_bicubic"):])
        out = F.interpolate(x, size=(h // r, w // r), mode="bicubic", antialias=True, align_corners=False)
        return out.reshape(b, -1)
    if task == "color":
        return x.mean(dim=1).reshape(b, -1)
    if task.startswith("inp_"):
        mask = reference_mask(case).reshape(-1)
        return (x.reshape(b, -1) * mask)[:, mask]
    if task in FOURIER:  # circular convolution, summed tap by tap
        kernel = reference_kernel(case)
        kh, kw = kernel.shape
        out = torch.zeros_like(x)
        for i in range(kh):
            for j in range(kw):
                out += kernel[i, j] * torch.roll(x, shifts=(i - kh // 2, j - kw // 2), dims=(2, 3))
        return out.reshape(b, -1)
    if task.startswith("deblur_"):
        if task == "deblur_uniform":
            k = torch.full((9,), 1.0 / 9, dtype=DT)
        else:
            sigma = options["blur_sigma"]
            t = torch.arange(-math.ceil(3 * sigma), math.ceil(3 * sigma) + 1, dtype=DT)
            k = torch.exp(-(t**2) / (2 * sigma**2))
            k = k / k.sum()
        kernel = torch.outer(k, k)[None, None]
        out = F.conv2d(x.reshape(b * c, 1, h, w), kernel, padding=k.numel() // 2)
        return out.reshape(b, -1)
    raise AssertionError(task)


# -- orthogonality ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_V_is_orthogonal(case):
    op = build(case)
    v = rand_flat(2, op.n)
    x = rand_image(op)
    assert op.V(v).shape == (2, *op.image_shape)
    assert op.Vt(x).shape == (2, op.n)
    torch.testing.assert_close(op.Vt(op.V(v)), v, atol=ATOL, rtol=0)
    torch.testing.assert_close(op.V(op.Vt(x)), x, atol=ATOL, rtol=0)
    torch.testing.assert_close(op.Vt(x).norm(dim=1), x.flatten(1).norm(dim=1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_U_is_orthogonal(case):
    op = build(case)
    u = rand_flat(2, op.m)
    torch.testing.assert_close(op.Ut(op.U(u)), u, atol=ATOL, rtol=0)
    torch.testing.assert_close(op.U(op.Ut(u)), u, atol=ATOL, rtol=0)


# -- H against dense references ---------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_H_matches_dense_reference(case):
    op = build(case)
    x = rand_image(op)
    y = op.H(x)
    assert y.shape == (2, op.m)
    torch.testing.assert_close(y, reference_H(case, x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in SEPARABLE],
                         ids=[i for i, c in zip(IDS, CASES) if c[0] in SEPARABLE])
def test_zero_below_removes_exactly_the_small_components(case):
    """Product rule: the operator is the blur minus its spectral components below zero_below."""
    exact, truncated = build(case, exact=True), build(case, exact=False, zero_rule="product")
    s_exact, s_trunc = exact.singulars(), truncated.singulars()
    zeroed = (s_trunc == 0) & (s_exact > 0)
    torch.testing.assert_close(s_trunc[~zeroed], s_exact[~zeroed])
    assert bool((s_exact[zeroed] < 3e-2).all()) and bool((s_exact[~zeroed] >= 3e-2).all())
    x = rand_image(exact)
    v = exact.Vt(x)[:, : exact.m]
    removed = exact.V(exact.add_zeros(torch.where(zeroed, v, torch.zeros_like(v))))
    expected = reference_H(case, x) - reference_H(case, removed)
    torch.testing.assert_close(truncated.H(x), expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in SEPARABLE],
                         ids=[i for i, c in zip(IDS, CASES) if c[0] in SEPARABLE])
def test_one_d_rule_is_the_product_of_truncated_factors(case):
    """1d rule (the default): H = A' kron B' with A' = Ua diag(sa zeroed below 3e-2) Va^T (dense)."""
    from degradations.separable import bicubic_matrix, conv_matrix, gaussian_kernel, uniform_kernel

    task, size, channels, options = case
    h, w = _hw(size)
    if task.startswith("sr_bicubic"):
        A, B = bicubic_matrix(h, int(task[-1])), bicubic_matrix(w, int(task[-1]))
    else:
        kernel = uniform_kernel(9) if task == "deblur_uniform" else gaussian_kernel(options.get("blur_sigma", 2.0))
        A, B = conv_matrix(kernel, h), conv_matrix(kernel, w)

    def cut(M):
        u, s, vt = torch.linalg.svd(M.double(), full_matrices=False)
        s = torch.where(s < 3e-2, torch.zeros_like(s), s)
        return u @ torch.diag(s) @ vt, s

    (A1, sa), (B1, sb) = cut(A), cut(B)
    op = build(case, exact=False)
    assert op.zero_rule == "1d"
    x = rand_image(op)
    torch.testing.assert_close(op.to_image(op.H(x)), torch.einsum("ia,bcak,jk->bcij", A1, x, B1), atol=ATOL, rtol=0)
    expected = torch.outer(sa, sb).flatten().sort(descending=True).values.repeat_interleave(channels)
    torch.testing.assert_close(op.singulars(), expected, atol=1e-6, rtol=0)


def test_deblurring_uses_every_tap_of_an_odd_kernel():
    """The official DDRM code drops the last tap of odd kernels (8 of 9); we use all 9."""
    op = Deblurring(1, 21, 21, uniform_kernel(9), zero_below=0.0).to(dtype=DT)
    delta = torch.zeros(1, 1, 21, 21, dtype=DT)
    delta[0, 0, 10, 10] = 1.0
    out = op.to_image(op.H(delta))[0, 0]
    nonzero = out.abs() > 1e-6
    assert int(nonzero[10].sum()) == 9 and int(nonzero[:, 10].sum()) == 9
    assert int(nonzero.sum()) == 81
    torch.testing.assert_close(out[6:15, 6:15], torch.full((9, 9), 1 / 81, dtype=DT), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="odd"):
        Deblurring(1, 12, 12, torch.ones(4) / 4)


# -- adjoint and pseudo-inverse -----------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_adjointness(case):
    op = build(case)
    x = rand_image(op)
    y = rand_flat(2, op.m)
    lhs = (op.H(x) * y).sum(dim=1)
    rhs = (x * op.Ht(y)).flatten(1).sum(dim=1)
    torch.testing.assert_close(lhs, rhs, atol=1e-4, rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pinv(case):
    """H H^+ H = H always; H H^+ y = y when H has full row rank (every singular value > 0).
    Default zero_below here, so 1/s stays moderate."""
    op = build(case, exact=False)
    x = rand_image(op)
    hx = op.H(x)
    torch.testing.assert_close(op.H(op.H_pinv(hx)), hx, atol=1e-4, rtol=0)
    if bool((op.singulars() > 0).all()):
        y = rand_flat(2, op.m)
        torch.testing.assert_close(op.H(op.H_pinv(y)), y, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", [c for c in CASES if not c[0].startswith(("deblur", "sr_bicubic"))],
                         ids=[i for i, c in zip(IDS, CASES) if not c[0].startswith(("deblur", "sr_bicubic"))])
def test_pinv_of_H_is_the_expected_projection(case):
    op = build(case)
    x = rand_image(op)
    back = op.H_pinv(op.H(x))
    task = case[0]
    if task == "deno":
        expected = x
    elif task.startswith("sr"):
        r = int(task[2:])
        expected = F.interpolate(F.avg_pool2d(x, r), scale_factor=r, mode="nearest")
    elif task == "color":
        expected = x.mean(dim=1, keepdim=True).expand_as(x)
    else:
        expected = x * reference_mask(case)
    torch.testing.assert_close(back, expected, atol=ATOL, rtol=0)


# -- singular values ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_singulars(case):
    op = build(case, exact=False)
    s = op.singulars()
    assert s.shape == (op.m,)
    assert bool((s >= 0).all())
    task = case[0]
    if isinstance(op, SeparableOperator):
        assert bool((s[1:] <= s[:-1]).all()), "separable singular values must be sorted descending"
        c = op.channels
        for k in range(1, c):  # channel-interleaved: each value repeated C times
            torch.testing.assert_close(s[k::c], s[0::c])
    elif task in ("sr2", "sr4", "sr8", "sr16"):
        torch.testing.assert_close(s, torch.full_like(s, 1 / int(task[2:])))
    elif task == "color":
        torch.testing.assert_close(s, torch.full_like(s, 1 / math.sqrt(3)))
    elif task in FOURIER:  # |k_hat| once per frequency of the full 2-D spectrum, per channel
        h, w = op.height, op.width
        kernel = reference_kernel(case)
        padded = torch.zeros(h, w, dtype=DT)
        padded[: kernel.shape[0], : kernel.shape[1]] = kernel
        expected = torch.fft.fft2(padded).abs().flatten()
        expected = torch.where(expected < 3e-2, torch.zeros_like(expected), expected).sort().values
        for ch in s.view(op.channels, -1):
            torch.testing.assert_close(ch.sort().values, expected, atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(s, torch.ones_like(s))


def test_separable_singulars_are_sorted_outer_products():
    A = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # singular values 2, 1
    B = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0]])  # 3, 1, 0.5
    op = SeparableOperator(2, 3, 4, A, B, zero_below=0.9, zero_rule="product").to(dtype=DT)
    # block (i, j) = a_i * b_j: 6, 2, 1 / 3, 1, 0.5 -> sorted 6, 3, 2, 1, 1, 0.5; 0.5 < 0.9 -> 0
    expected = torch.tensor([6.0, 3.0, 2.0, 1.0, 1.0, 0.0], dtype=DT)
    torch.testing.assert_close(op.singulars(), expected.repeat_interleave(2))
    x = torch.randn(1, 2, 3, 4, dtype=DT)
    y = torch.einsum("ia,bcak,jk->bcij", A.to(DT), x, B.to(DT))
    y[:, :, 1, 2] = 0.0  # the zeroed component is exactly the (1, 2) output entry here
    torch.testing.assert_close(op.to_image(op.H(x)), y, atol=1e-6, rtol=0)


def test_one_d_zero_rule_zeroes_the_factors_singular_values():
    """DDRM's rule: a_i < zero_below or b_j < zero_below zeroes a_i b_j; small products of two
    large factors stay. Same A, B as above, threshold 0.9: b = 0.5 goes, so its column of the
    block (2 * 0.5, 1 * 0.5) goes; 1 * 1 = 1 stays (the product rule keeps it too)."""
    A = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    B = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0]])
    op = SeparableOperator(2, 3, 4, A, B, zero_below=0.9, zero_rule="1d").to(dtype=DT)
    torch.testing.assert_close(op.singulars(), torch.tensor([6.0, 3.0, 2.0, 1.0, 0.0, 0.0], dtype=DT).repeat_interleave(2))
    low = SeparableOperator(1, 3, 4, 0.1 * A, 0.1 * B, zero_below=0.05, zero_rule="1d").to(dtype=DT)
    assert float(low.singulars().min()) == pytest.approx(0.005, rel=1e-6)  # 0.1 x 0.05 < 0.05 kept: both factors >= 0.05
    with pytest.raises(ValueError, match="zero_rule"):
        SeparableOperator(1, 3, 4, A, B, zero_rule="2d")


@pytest.mark.parametrize("task", ["deblur_gauss", "deblur_uniform", "sr_bicubic4"])
def test_one_d_rule_operator_is_consistent(task):
    """H, H^T and H^+ of a 1-d-rule operator: adjoint pair, and H H^+ H = H."""
    op = make_operator(task, (24, 16), 3, zero_rule="1d").to(dtype=DT)
    x, y = rand_image(op), rand_flat(2, op.m)
    torch.testing.assert_close((op.H(x) * y).sum(), (x * op.Ht(y)).sum(), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(op.H(op.H_pinv(op.H(x))), op.H(x), atol=1e-5, rtol=0)  # U, V kept in float32


# -- noisy observation ------------------------------------------------------------------------
def test_pixel_sigma_to_model():
    assert pixel_sigma_to_model(0.05) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        pixel_sigma_to_model(-0.1)


def test_observe_noise_std_is_twice_sigma_y():
    op = Denoising(3, 64, 64)
    x = torch.zeros(2, 3, 64, 64)
    y = op.observe(x, sigma_y=0.1, generator=torch.Generator().manual_seed(0))
    assert y.shape == (2, op.m)
    assert abs(y.std().item() - 0.2) < 0.2 * 0.03
    assert abs(y.mean().item()) < 0.01
    torch.testing.assert_close(op.observe(x, sigma_y=0.0), op.H(x))


def test_observe_is_reproducible_and_batch_independent():
    op = make_operator("sr4", 16, 3)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y1 = op.observe(x, 0.05, torch.Generator().manual_seed(3))
    y2 = op.observe(x, 0.05, torch.Generator().manual_seed(3))
    y3 = op.observe(x, 0.05, torch.Generator().manual_seed(4))
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert not torch.allclose(y1, y3)
    batch = op.observe(x, 0.05, make_generators([11, 12]))
    alone = op.observe(x[1:], 0.05, make_generators([12]))
    torch.testing.assert_close(batch[1:], alone, rtol=0, atol=0)
    with pytest.raises(ValueError):
        op.observe(x, 0.05, make_generators([1]))


# -- measurement images -------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_image_from_image_round_trip(case):
    op = build(case)
    x = rand_image(op)
    y = op.H(x)
    image = op.to_image(y)
    torch.testing.assert_close(op.from_image(image), y, rtol=0, atol=0)
    if isinstance(op, Inpainting):
        assert image.shape == (2, *op.image_shape)
        torch.testing.assert_close(image, op.Ht(y), atol=ATOL, rtol=0)
        torch.testing.assert_close(op.from_image(x), y, rtol=0, atol=0)
        torch.testing.assert_close(image, x * reference_mask(case), rtol=0, atol=0)
    else:
        assert image.shape == (2, *op.measurement_shape)
    c, h, w = image.shape[1:]
    with pytest.raises(ValueError):
        op.from_image(torch.zeros(1, c, h, w + 1, dtype=DT))


# -- dtype / device ---------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["sr4", "color", "deblur_uniform", "sr_bicubic4", "inp_random"])
def test_float32_operator_accepts_float64_images(task):
    op = make_operator(task, 16, 3)
    x = torch.rand(1, 3, 16, 16, dtype=DT)
    assert op.H(x).dtype == DT and op.V(op.Vt(x)).dtype == DT
    op.to(dtype=DT)
    assert op.singulars().dtype == DT


@pytest.mark.cuda
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_transform_on_the_gpu_is_the_cpu_one(case):
    """Built on the CPU, moved to the GPU (cuFFT, cuBLAS, the masks' index tensors): H, H^T, U, U^T,
    V, V^T, H^+ and the singular values give what they give on the CPU, in float64."""
    op, gpu = build(case), build(case).to("cuda")
    x, y = rand_image(op), rand_flat(2, op.m)
    u = rand_flat(2, op.m, seed=2)
    v = rand_flat(2, op.n, seed=3)
    pairs = {"H": (op.H(x), gpu.H(x.cuda())), "Ht": (op.Ht(y), gpu.Ht(y.cuda())), "U": (op.U(u), gpu.U(u.cuda())),
             "Ut": (op.Ut(y), gpu.Ut(y.cuda())), "V": (op.V(v), gpu.V(v.cuda())), "Vt": (op.Vt(x), gpu.Vt(x.cuda())),
             "H_pinv": (op.H_pinv(y), gpu.H_pinv(y.cuda())), "singulars": (op.singulars(), gpu.singulars())}
    for name, (cpu_out, gpu_out) in pairs.items():
        assert gpu_out.is_cuda, name
        torch.testing.assert_close(gpu_out.cpu(), cpu_out, rtol=0, atol=ATOL, msg=lambda m, name=name: f"{name}: {m}")


# -- registry -----------------------------------------------------------------------------------
@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_builds_at_256(task):
    options = {"inp_mask": {"mask": box_mask(256, 256)}, "deblur": {"kernel": torch.ones(4, 6)}}.get(task, {})
    op = make_operator(task, 256, 3, **options)
    assert isinstance(op, SVDOperator)
    assert op.image_shape == (3, 256, 256)
    y = op.H(torch.zeros(1, 3, 256, 256))
    assert y.shape == (1, op.m)
    expected_factor = {"sr2": 2, "sr4": 4, "sr8": 8, "sr16": 16, "sr_bicubic4": 4, "sr_bicubic8": 8}
    assert op.scale_factor == expected_factor.get(task, 1)
    if op.scale_factor > 1:
        assert op.measurement_shape == (3, 256 // op.scale_factor, 256 // op.scale_factor)


def test_registry_classes():
    assert isinstance(make_operator("deno", 8), Denoising)
    assert isinstance(make_operator("sr2", 8), BlockAverageSR)
    assert isinstance(make_operator("sr_bicubic4", 8), BicubicSR)
    assert isinstance(make_operator("color", 8), Colorization)
    assert isinstance(make_operator("inp_box", 8), Inpainting)
    assert isinstance(make_operator("deblur_gauss", 8, blur_sigma=1.0), Deblurring)
    assert make_operator("sr2", (8, 12), 1).measurement_shape == (1, 4, 6)


def test_make_operator_errors():
    with pytest.raises(ValueError, match="valid tasks: deno, sr2"):
        make_operator("sr3", 12)
    with pytest.raises(ValueError, match="foo"):
        make_operator("sr4", 16, foo=1)
    with pytest.raises(ValueError, match="blur_sigma"):
        make_operator("deblur_uniform", 16, blur_sigma=2.0)
    with pytest.raises(ValueError, match="divisible by 4"):
        make_operator("sr4", 18)
    with pytest.raises(ValueError, match="divisible by 8"):
        make_operator("sr_bicubic8", (16, 20))
    with pytest.raises(ValueError, match="channels=3"):
        make_operator("color", 12, channels=1)
    with pytest.raises(ValueError, match="inp_mask needs a mask "):
        make_operator("inp_mask", 12)
    with pytest.raises(ValueError, match=r"\(12, 12\)"):
        make_operator("inp_mask", 12, mask=torch.ones(10, 12, dtype=torch.bool))
    with pytest.raises(ValueError, match="channels"):
        make_operator("inp_mask", 12, 1, mask=torch.ones(3, 12, 12, dtype=torch.bool))


def test_inpainting_refuses_an_empty_mask():
    with pytest.raises(ValueError, match="no pixel"):
        Inpainting(torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        Inpainting(torch.ones(4, 4))


def test_inpainting_puts_kept_entries_first():
    mask = random_mask(6, 5, 0.4, seed=3)
    op = Inpainting(mask, channels=2)
    x = torch.randn(1, 2, 6, 5)
    full = mask.expand(2, 6, 5).reshape(-1)
    v = op.Vt(x)
    torch.testing.assert_close(v[:, : op.m], x.reshape(1, -1)[:, full])
    torch.testing.assert_close(v[:, op.m :], x.reshape(1, -1)[:, ~full])


# -- masks ----------------------------------------------------------------------------------------
def test_box_mask():
    m = box_mask(256, 256)
    assert m.dtype == torch.bool and m.shape == (256, 256)
    assert int((~m).sum()) == 128 * 128
    assert not m[64:192, 64:192].any() and m[63].all() and m[192].all()
    m = box_mask(12, 20)  # side min(12, 20) // 2 = 6, rows 3..8, columns 7..12
    assert int((~m).sum()) == 36 and not m[3:9, 7:13].any()
    m = box_mask(7, 7)  # side 3, top (7 - 3) // 2 = 2
    assert not m[2:5, 2:5].any() and int((~m).sum()) == 9


def test_random_mask():
    for frac in (0.0, 0.25, 0.5, 0.9, 1.0):
        m = random_mask(20, 30, frac, seed=1)
        assert m.dtype == torch.bool and m.shape == (20, 30)
        assert int((~m).sum()) == round(frac * 600)
    torch.testing.assert_close(random_mask(32, 32, seed=5), random_mask(32, 32, seed=5), rtol=0, atol=0)
    assert not torch.equal(random_mask(32, 32, seed=5), random_mask(32, 32, seed=6))
    with pytest.raises(ValueError):
        random_mask(8, 8, 1.5)


def test_text_mask():
    m = text_mask(256, 256)
    assert m.dtype == torch.bool and m.shape == (256, 256)
    missing = 1 - m.float().mean().item()
    assert 0.10 <= missing <= 0.20
    assert torch.equal(m, text_mask(256, 256))
    assert text_mask(30, 50).shape == (30, 50)


def test_load_mask(tmp_path):
    grey = np.full((6, 8), 255, dtype=np.uint8)
    grey[1, 2], grey[3, 4], grey[5, 7] = 0, 127, 128
    path = tmp_path / "mask.png"
    Image.fromarray(grey).save(path)
    m = load_mask(path, 6, 8)
    assert m.dtype == torch.bool and m.shape == (6, 8)
    assert not m[1, 2] and not m[3, 4] and m[5, 7] and int((~m).sum()) == 2
    rgb = np.stack([grey] * 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "mask_rgb.png")
    torch.testing.assert_close(load_mask(str(tmp_path / "mask_rgb.png"), 6, 8), m, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"\(6, 8\).*\(8, 8\)"):
        load_mask(path, 8, 8)
    t = torch.ones(6, 8, dtype=torch.bool)
    assert load_mask(t, 6, 8) is t
    op = make_operator("inp_mask", (6, 8), 3, mask=path)
    assert op.m == 3 * 46


# -- the Fourier blurs --------------------------------------------------------------------------
@pytest.mark.parametrize("case", [c for c in CASES if c[0] in FOURIER], ids=[i for i, c in zip(IDS, CASES) if c[0] in FOURIER])
def test_fourier_zero_below_removes_exactly_the_small_components(case):
    exact, truncated = build(case, exact=True), build(case, exact=False)
    s_exact, s_trunc = exact.singulars(), truncated.singulars()
    zeroed = (s_trunc == 0) & (s_exact > 0)
    assert bool((s_exact[zeroed] < 3e-2).all()) and bool((s_exact[~zeroed & (s_exact > 0)] >= 3e-2).all())
    x = rand_image(exact)
    v = exact.Vt(x)
    removed = exact.V(torch.where(zeroed, v, torch.zeros_like(v)))
    torch.testing.assert_close(truncated.H(x), reference_H(case, x) - reference_H(case, removed), atol=ATOL, rtol=0)


def test_fourier_blur_is_the_dense_circular_convolution_matrix():
    """At 5 x 6 with a 3 x 4 kernel: H, U, V and s as dense matrices; H = U diag(s) V^T, and the
    columns of H are the shifted, wrapped kernel."""
    kernel = torch.arange(1.0, 13.0, dtype=DT).reshape(3, 4)
    op = make_operator("deblur", (5, 6), 1, kernel=kernel, zero_below=0.0).to(dtype=DT)
    n = op.n
    eye = torch.eye(n, dtype=DT)
    Hm = op.H(eye.view(n, 1, 5, 6)).T
    Vm, Um = op.V(eye).reshape(n, n).T, op.U(eye).T
    torch.testing.assert_close(Um @ torch.diag(op.singulars()) @ Vm.T, Hm, atol=1e-5, rtol=0)
    torch.testing.assert_close(Vm.T @ Vm, eye, atol=1e-6, rtol=0)
    torch.testing.assert_close(Um.T @ Um, eye, atol=1e-6, rtol=0)
    k = kernel / kernel.sum()
    delta = torch.zeros(5, 6, dtype=DT)
    delta[0, 0] = 1
    column = Hm[:, 0].view(5, 6)  # the response to a pixel at the corner wraps around
    expected = torch.zeros(5, 6, dtype=DT)
    for i in range(3):
        for j in range(4):
            expected[(i - 1) % 5, (j - 2) % 6] += k[i, j]
    torch.testing.assert_close(column, expected, atol=1e-6, rtol=0)


def test_kernels_are_deterministic_normalised_and_refused_when_broken(tmp_path):
    from degradations.kernels import disk_kernel, load_kernel, motion_kernel

    a, b, c = motion_kernel(5), motion_kernel(5), motion_kernel(6)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (17, 17)
    assert abs(float(a.sum()) - 1) < 1e-12 and float(a.min()) >= 0
    assert (a > 1e-3).sum() > 10  # a path, not a point
    d = disk_kernel(2.5)
    assert d.shape == (7, 7) and abs(float(d.sum()) - 1) < 1e-12 and torch.allclose(d, d.T) and torch.allclose(d, d.flip(0))
    np.save(tmp_path / "k.npy", np.ones((3, 5)) * 2)
    op = make_operator("deblur", 16, 1, kernel=str(tmp_path / "k.npy"))
    assert op.notes == ["the blur kernel summed to 30; normalised to sum 1"]
    Image.fromarray(np.eye(9, dtype=np.uint8) * 255).save(tmp_path / "k.png")
    torch.testing.assert_close(load_kernel(tmp_path / "k.png"), torch.eye(9, dtype=DT) * 255)
    np.save(tmp_path / "huge.npy", np.zeros((4000, 300), np.float32))
    with pytest.raises(ValueError, match="at most 255 pixels"):
        load_kernel(tmp_path / "huge.npy")
    np.save(tmp_path / "bad.npy", np.ones((2, 2, 2)))
    for bad, why in ((tmp_path / "bad.npy", "one 2-D array"), (tmp_path / "nope.npy", "not found")):
        with pytest.raises(ValueError, match=why):
            load_kernel(bad)
    with pytest.raises(ValueError, match="larger than the image"):
        make_operator("deblur", 8, 1, kernel=torch.ones(9, 9))
    with pytest.raises(ValueError, match="sums to 0"):
        make_operator("deblur", 8, 1, kernel=torch.tensor([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="deblur needs a kernel"):
        make_operator("deblur", 8)


def test_wiener_baseline_inverts_a_well_conditioned_blur_and_damps_the_rest():
    from restore.quality.baselines import baseline, baseline_names, task_baselines

    op = make_operator("deblur", (8, 9), 3, kernel=torch.tensor([[0.7, 0.3]], dtype=DT)).to(dtype=DT)  # |k_hat| >= 0.4
    x = rand_image(op)
    torch.testing.assert_close(op.wiener(op.H(x), 1e-12), x, atol=1e-5, rtol=0)
    blur = make_operator("deblur_disk", 32, 1, disk_radius=3.0).to(dtype=DT)
    x = rand_image(blur, batch=1)
    y = blur.observe(x, 0.05, torch.Generator().manual_seed(0))
    wiener, pinv = baseline("wiener", blur, y, 0.05), baseline("pinv", blur, y, 0.05)
    assert float((wiener - x).square().mean()) < float((pinv - x).square().mean())
    assert baseline_names(blur) == ["pinv", "wiener"] == task_baselines("deblur_disk")
    assert task_baselines("sr4") == ["pinv", "bicubic"] and task_baselines("deblur_gauss") == ["pinv"]
    from degradations import CroppedBlur
    from degradations.kernels import disk_kernel

    cropped = CroppedBlur(1, 16, 16, disk_kernel(3.0), 8)  # the exact boundary: no Fourier basis, no Wiener
    assert baseline_names(cropped) == ["pinv"] == task_baselines("deblur_disk", "exact")
