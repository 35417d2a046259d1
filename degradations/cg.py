"""Conjugate gradients for a batch of symmetric positive (semi-)definite systems, one per image,
and the solves a solver needs of an operator known only through H and H^T (degradations.linear;
degradations.measurement.Measurement asks for them): the least-squares start image, the
proximal data step (DiffPIR) and the likelihood-weighted residual (PiGDM).

Each image's system is solved on its own (its own step sizes and stopping), so a result does not
depend on the batch it ran in (Hestenes and Stiefel, 1952).
"""

from __future__ import annotations

from typing import Callable

import torch

#: relative residual ||b - A x|| / ||b|| at which an image's solve stops
TOLERANCE = 1e-5
#: the most iterations (each one application of H and one of H^T)
ITERATIONS = 100


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image inner products (B,), shaped to broadcast against (B, ...)."""
    return (a * b).flatten(1).sum(1).view(-1, *[1] * (a.ndim - 1))


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, x: torch.Tensor,
                       iterations: int = ITERATIONS, tolerance: float = TOLERANCE) -> torch.Tensor:
    """Solve A x = b per image from the start x, A = `apply` symmetric positive semi-definite.

    An image stops when its residual is below `tolerance` ||b||; all stop after `iterations`.
    Started in A's range plus a null-space part, CG never changes the null-space part."""
    r = b - apply(x)
    p, rr = r.clone(), _dot(r, r)
    goal = tolerance**2 * _dot(b, b)
    tiny = torch.finfo(b.dtype).tiny
    for _ in range(iterations):
        active = rr > goal
        if not bool(active.any()):
            break
        ap = apply(p)
        alpha = torch.where(active, rr / _dot(p, ap).clamp_min(tiny), 0.0)
        x = x.addcmul(alpha, p)
        r = r.addcmul(alpha, ap, value=-1)
        rr_next = _dot(r, r)
        p = r.addcmul(torch.where(active, rr_next / rr.clamp_min(tiny), 0.0), p)
        rr = rr_next
    return x


def proximal(operator, y: torch.Tensor, x0: torch.Tensor, rho: float,
             iterations: int = ITERATIONS, tolerance: float = TOLERANCE) -> torch.Tensor:
    """argmin_x ||y - H x||^2 + rho ||x - x0||^2: (H^T H + rho I) x = H^T y + rho x0, from x0."""
    b = operator.Ht(y).add(x0, alpha=rho)
    return conjugate_gradient(lambda v: operator.Ht(operator.H(v)).add(v, alpha=rho), b, x0, iterations, tolerance)


def least_squares(operator, y: torch.Tensor, iterations: int = ITERATIONS,
                  tolerance: float = TOLERANCE) -> torch.Tensor:
    """H^+ y approximated: CG on H^T H x = H^T y from 0 stays in H^T's range, so it tends to the
    minimum-norm least-squares image; stopping early damps the smallest singular values."""
    b = operator.Ht(y)
    return conjugate_gradient(lambda v: operator.Ht(operator.H(v)), b, torch.zeros_like(b), iterations, tolerance)


def weighted_residual(operator, y: torch.Tensor, x0: torch.Tensor, c: float,
                      iterations: int = ITERATIONS, tolerance: float = TOLERANCE) -> torch.Tensor:
    """H^T (H H^T + c I)^-1 (y - H x0), c > 0: CG on the measurement side ((B, m) vectors)."""
    r = y - operator.H(x0)
    u = conjugate_gradient(lambda w: operator.H(operator.Ht(w)).add(w, alpha=c), r, torch.zeros_like(r),
                           iterations, tolerance)
    return operator.Ht(u)
