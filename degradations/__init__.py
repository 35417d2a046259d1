"""Linear degradations as SVD operators H = U diag(s) V^T (DDRM, Kawar et al. 2022), and
operators known only through H and H^T (`LinearOperator`, `MatrixOperator`: DPS and DiffPIR);
deepinv's physics both ways (`from_deepinv`, `as_physics`: degradations.deepinv).

Images (B, C, H, W) on [-1, 1]; spectral vectors (B, n); measurements (B, m); sigma_y on the
[0, 1] pixel scale in public APIs (`pixel_sigma_to_model` doubles it for the [-1, 1] scale).
"""

from degradations.base import SVDOperator, check_divisible
from degradations.colorization import Colorization
from degradations.deepinv import (
    DeepinvOperator,
    DeepinvSVDOperator,
    as_physics,
    from_deepinv,
    measurement_from_deepinv,
)
from degradations.denoising import Denoising
from degradations.fourier import CroppedBlur, FourierBlur
from degradations.inpainting import Inpainting
from degradations.linear import LinearOperator, MatrixOperator, pixel_sigma_to_model
from degradations.masks import box_mask, load_mask, random_mask, text_mask
from degradations.registry import TASKS, make_operator, scale_factor
from degradations.separable import (
    BicubicSR,
    Deblurring,
    SeparableOperator,
    bicubic_matrix,
    conv_matrix,
    gaussian_kernel,
    uniform_kernel,
)
from degradations.superres import BlockAverageSR

__all__ = [
    "SVDOperator",
    "LinearOperator",
    "MatrixOperator",
    "FourierBlur",
    "CroppedBlur",
    "DeepinvOperator",
    "DeepinvSVDOperator",
    "from_deepinv",
    "as_physics",
    "measurement_from_deepinv",
    "TASKS",
    "make_operator",
    "scale_factor",
    "pixel_sigma_to_model",
    "check_divisible",
    "Denoising",
    "Inpainting",
    "BlockAverageSR",
    "Colorization",
    "SeparableOperator",
    "Deblurring",
    "BicubicSR",
    "box_mask",
    "random_mask",
    "text_mask",
    "load_mask",
    "conv_matrix",
    "bicubic_matrix",
    "uniform_kernel",
    "gaussian_kernel",
]
