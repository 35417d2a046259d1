"""The diffusion transitions every solver shares, written once (the variance-preserving DDPM of
Ho et al. 2020 and the DDIM family of Song et al. 2021).

Notation: a = alpha_bar_t and a' = alpha_bar_t' for the step t -> t' (t' < t), as Python floats
(solvers.schedule.NoiseSchedule.alpha_bar; a' = 1 at the clean end), so that no operator is
launched to make a coefficient. x_t = sqrt(a) x0 + sqrt(1 - a) eps (Ho et al., eq. 4).

    x0_from_eps(x_t, eps, a)            x0 = (x_t - sqrt(1 - a) eps) / sqrt(a)          Ho eq. 15
    eps_from_x0(x_t, x0, a)             eps = (x_t - sqrt(a) x0) / sqrt(1 - a)          (eq. 4 solved)
    ddim(x_t, x0, a, a', eta, gen)      DDIM's step with x0 as its prediction           Song eq. 12
    posterior(x_t, x0, a, a', gen)      a sample of q(x_t' | x_t, x0)                   Ho eqs. 6-7
    renoise(x0, eps, a', share, gen)    sqrt(a') x0 + sqrt(1 - a') (sqrt(1 - e^2) eps + e z)

`posterior` is `ddim` with eta = 1 (the same distribution; written in Ho's form because DPS's
code is). `renoise` is the re-noising of DDRM, DDNM and DiffPIR, parametrised by the share e of
fresh noise in the noise (DDRM's eta; DiffPIR's zeta is e^2) rather than by DDIM's eta. Each
draws its fresh noise z ~ N(0, I) only when it is used, with degradations.noise.randn (one
generator per image), so a deterministic step consumes no random numbers. At the clean end (a' = 1) each
returns x0.
"""

from __future__ import annotations

import torch

from degradations.noise import Generators, randn


def _noise(x: torch.Tensor, generator: Generators) -> torch.Tensor:
    return randn(x.shape[1:], x.shape[0], generator, x.device, x.dtype)


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, a: float) -> torch.Tensor:
    """The clean image implied by a noise prediction (Ho et al. 2020, eq. 15)."""
    return torch.add(x_t, eps, alpha=-((1 - a) ** 0.5)).div_(a**0.5)


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, a: float) -> torch.Tensor:
    """The noise implied by a clean-image estimate: x_t = sqrt(a) x0 + sqrt(1 - a) eps solved for eps."""
    return (x_t - a**0.5 * x0) / (1 - a) ** 0.5


def ddim(x_t: torch.Tensor, x0: torch.Tensor, a: float, a_next: float, eta: float,
         generator: Generators) -> torch.Tensor:
    """DDIM's step t -> t' with x0 as the prediction of x_0 (Song et al. 2021, eq. 12):
    x_t' = sqrt(a') x0 + sqrt(1 - a' - sigma^2) eps + sigma z, eps = eps_from_x0(x_t, x0, a),
    sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a') (eq. 16; eta 0: deterministic, 1: DDPM)."""
    eps = eps_from_x0(x_t, x0, a)
    sigma = eta * ((1 - a_next) / (1 - a)) ** 0.5 * (1 - a / a_next) ** 0.5
    x_next = a_next**0.5 * x0 + (1 - a_next - sigma**2) ** 0.5 * eps
    if sigma > 0:
        x_next = x_next + sigma * _noise(x_t, generator)
    return x_next


def posterior(x_t: torch.Tensor, x0: torch.Tensor, a: float, a_next: float, generator: Generators) -> torch.Tensor:
    """A sample of q(x_t' | x_t, x0) for the stride t -> t' (Ho et al. 2020, eqs. 6-7 with
    beta = 1 - a / a'): mean sqrt(a') beta / (1 - a) x0 + sqrt(a / a') (1 - a') / (1 - a) x_t,
    variance (1 - a') / (1 - a) beta. At the clean end, x0 itself (a copy)."""
    if a_next == 1.0:
        return x0.clone()
    beta = 1 - a / a_next
    x_next = (a_next**0.5 * beta / (1 - a)) * x0 + ((a / a_next) ** 0.5 * (1 - a_next) / (1 - a)) * x_t
    return x_next.add_(_noise(x_t, generator), alpha=((1 - a_next) / (1 - a) * beta) ** 0.5)


def renoise(x0: torch.Tensor, eps: torch.Tensor, a_next: float, share: float, generator: Generators) -> torch.Tensor:
    """x0 taken to time t' with noise made of eps and a `share` e of fresh noise:
    sqrt(a') x0 + sqrt(1 - a') (sqrt(1 - e^2) eps + e z) (DDRM's and DDNM's eta, e = 1 a restart
    from x0: a sample of q(x_t' | x0); DiffPIR's eq. 15 with zeta = e^2)."""
    if a_next == 1.0:
        return x0.clone()
    if share == 0:
        return a_next**0.5 * x0 + (1 - a_next) ** 0.5 * eps
    return a_next**0.5 * x0 + (1 - a_next) ** 0.5 * ((1 - share * share) ** 0.5 * eps + share * _noise(x0, generator))
