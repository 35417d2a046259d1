"""A measurement y = H x + noise, ready for a solver: taken once per restoration by the operator
(`operator.measure(y, sigma_y)`), it answers the data-side questions a solver asks, in closed
form for an SVD operator and by conjugate gradients for one known only through H and H^T, so
that no solver branches on the operator's kind (as deepinv puts `A_dagger` and `prox_l2` on its
physics and overrides them in the decomposable class):

    meas.pinv                       H^+ y, the minimum-norm least-squares image
    meas.prox(x0, rho)              argmin_x ||y - H x||^2 + rho ||x - x0||^2
    meas.weighted_residual(x0, c)   H^T (H H^T + c I)^-1 (y - H x0)

x is on the model's [-1, 1] scale; `sigma_0` is the noise std on that scale (2 sigma_y).
`meas.keep(key, x, value)` / `meas.kept(key, x)` hold a solver's run state for the state tensor
a step made (per run, never on the tensor; any other tensor gets None and starts afresh).

`SpectralMeasurement` (an SVD operator H = U diag(s) V^T) also keeps the measurement in V's
coordinates (y_bar = U^T y / s where measured), which the SVD solvers (DDRM, DDNM, PiGDM) read,
and two things that only make it faster: tables of per-step weights that a fused solver step
computes once per run (`steps`, filled by the solver), and the V^T coordinates of the last
image it made (`image` / `coords`), so that a step that ends in V v and a next step that begins
with V^T x need not transform back. Both are per run, never on a tensor.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from degradations.cg import ITERATIONS, TOLERANCE, least_squares, proximal, weighted_residual

Pair = tuple[int, int]


class Measurement:
    """A measurement of an operator known through H and H^T alone: y (B, m), sigma_0 its noise
    std on [-1, 1]. The solves run conjugate gradients (degradations.cg) to `iterations` at most,
    stopping at a relative residual of `tolerance`; each image's solve is its own."""

    def __init__(self, operator, y: torch.Tensor, sigma_0: float):
        self.operator, self.y, self.sigma_0 = operator, y, float(sigma_0)
        self._pinv: torch.Tensor | None = None
        self._kept: dict[str, tuple] = {}

    @property
    def count(self) -> int:
        """m, the number of measurements: the entries of y."""
        return self.y.shape[1]

    @property
    def pinv(self) -> torch.Tensor:
        """H^+ y (B, C, H, W), by CG from 0 (computed once)."""
        if self._pinv is None:
            self._pinv = least_squares(self.operator, self.y)
        return self._pinv

    def tabulate_prox(self, rhos: Iterable[float]) -> None:
        """Prepare the proximal solves of these rho (nothing to prepare for CG)."""

    def prox(self, x0: torch.Tensor, rho: float, iterations: int = ITERATIONS,
             tolerance: float = TOLERANCE) -> torch.Tensor:
        """argmin_x ||y - H x||^2 + rho ||x - x0||^2: (H^T H + rho I) x = H^T y + rho x0 by CG from x0."""
        return proximal(self.operator, self.y, x0, rho, iterations, tolerance)

    def weighted_residual(self, x0: torch.Tensor, c: float, iterations: int = ITERATIONS,
                          tolerance: float = TOLERANCE) -> torch.Tensor:
        """H^T (H H^T + c I)^-1 (y - H x0), by CG on the measurement side."""
        return weighted_residual(self.operator, self.y, x0, c, iterations, tolerance)


    # -- run state kept for the state tensor a step made -------------------------------------
    def keep(self, key: str, x: torch.Tensor, value: Any) -> None:
        """Keep `value` under `key` for the state tensor x (a weak reference and x's version
        counter): what a solver carries from one step to the next beside the measurement, never on
        the tensor (a fused step's V^T coordinates, DAPS's level, RED-diff's mu and Adam moments)."""
        self._kept[key] = (weakref.ref(x), _version(x), value)

    def kept(self, key: str, x: torch.Tensor) -> Any:
        """The value kept under `key` if x is that very tensor and was not changed in place since
        (its version counter; inference-mode tensors have none, so one changed in place inside
        torch.inference_mode() would go unseen: the solvers never do that, each step makes a new
        state), else None: any other state starts afresh."""
        entry = self._kept.get(key)
        return entry[2] if entry is not None and entry[0]() is x and entry[1] == _version(x) else None


@dataclass(eq=False)
class SpectralMeasurement(Measurement):
    """The measurement of an SVD operator in V's coordinates (degradations.base.SVDOperator.measure).

    s (n,): singular values padded with zeros; measured (n,): s > 0; u_y (B, n): U^T y padded;
    y_bar (B, n): U^T y / s where measured, else 0 (so V y_bar = H^+ y); sigma_0; floor (n,):
    sigma_0^2 / s^2, the noise variance of y_bar where measured; y (B, m); operator.
    steps: per-step weights a fused solver step tabulated for this run, (t, t') -> tensors (n,)."""

    s: torch.Tensor
    measured: torch.Tensor
    u_y: torch.Tensor
    y_bar: torch.Tensor
    sigma_0: float
    floor: torch.Tensor
    y: torch.Tensor
    operator: Any = field(repr=False)
    steps: dict[Pair, tuple[torch.Tensor, ...]] = field(default_factory=dict, repr=False)
    _prox: dict[float, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, init=False, repr=False)
    _kept: dict[str, tuple] = field(default_factory=dict, init=False, repr=False)

    def column(self, values: Iterable[float]) -> torch.Tensor:
        """Per-step scalars as a (K, 1) column in the measurement's dtype, to broadcast over (K, n)."""
        return torch.tensor(list(values), dtype=self.s.dtype, device=self.s.device)[:, None]

    @property
    def count(self) -> int:
        """m, the components H measures (s > 0): a y padded with zeros (deepinv's inpainting keeps
        the masked image) counts its kept entries, as the same operator written without them."""
        return int(self.measured.sum())

    # -- the data-side solves, in closed form --------------------------------------------------
    @property
    def pinv(self) -> torch.Tensor:
        return self.operator.V(self.y_bar)

    def prox_weights(self, rhos: Iterable[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, F), each (K, n) for K values of rho: prox(x0, rho) = V(W V^T x0 + F U^T y), with
        W = rho / (s^2 + rho), F = s / (s^2 + rho) where measured, W = 1 and F = 0 elsewhere."""
        rho = self.column(rhos)
        denominator = self.s.square() + rho
        w = torch.where(self.measured, rho / denominator, 1.0)
        return w, torch.where(self.measured, self.s / denominator, 0.0)

    def tabulate_prox(self, rhos: Iterable[float]) -> None:
        """Compute the prox weights of every rho a run will use at once (fewer operators per step)."""
        rhos = [float(r) for r in dict.fromkeys(rhos) if float(r) not in self._prox]
        if rhos:
            self._prox.update(zip(rhos, zip(*(t.unbind() for t in self.prox_weights(rhos)))))

    def prox(self, x0: torch.Tensor, rho: float, iterations: int = ITERATIONS,
             tolerance: float = TOLERANCE) -> torch.Tensor:
        """argmin_x ||y - H x||^2 + rho ||x - x0||^2 per spectral component (closed form)."""
        found = self._prox.get(float(rho))
        w, f = found if found is not None else (t[0] for t in self.prox_weights([rho]))
        return self.operator.V(torch.mul(self.operator.Vt(x0), w).addcmul_(f, self.u_y))

    def weighted_residual(self, x0: torch.Tensor, c: float, iterations: int = ITERATIONS,
                          tolerance: float = TOLERANCE) -> torch.Tensor:
        """V diag(s / (s^2 + c)) (U^T y - s V^T x0): zero where unmeasured (c = 0: H^+ (y - H x0))."""
        weight = torch.where(self.measured, self.s / (self.s.square() + c).clamp_min(1e-30), torch.zeros_like(self.s))
        return self.operator.V(weight * (self.u_y - self.s * self.operator.Vt(x0)))

    # -- V and V^T, remembering the last image made --------------------------------------------
    def image(self, v: torch.Tensor) -> torch.Tensor:
        """x = V v; a later `coords(x)` of this very tensor, unchanged, returns v without a transform."""
        x = self.operator.V(v)
        self.keep("coords", x, v)
        return x

    def coords(self, x: torch.Tensor) -> torch.Tensor:
        """V^T x: the v that `image` made x from, if x is that tensor, unchanged (`kept`), else the
        transform. The two agree to float precision."""
        v = self.kept("coords", x)
        return self.operator.Vt(x) if v is None else v

    def carried(self, x: torch.Tensor) -> torch.Tensor | None:
        """The v that x was made from by `image` (see `coords`), or None: what a saved run keeps."""
        return self.kept("coords", x)

    def remember(self, x: torch.Tensor, v: torch.Tensor) -> None:
        """Declare x = V v (a resumed run's state and its saved coordinates)."""
        self.keep("coords", x, v)


def _version(x: torch.Tensor) -> int | None:
    """x's version counter (bumped by every in-place change), None for an inference tensor."""
    return None if x.is_inference() else x._version
