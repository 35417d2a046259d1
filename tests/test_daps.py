"""DAPS on the exact Gaussian prior: its grid (levels x ODE calls, the budget exact), and its
Langevin steps' stationary law, which for a diagonal H is known in closed form per pixel."""

from __future__ import annotations

import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import make_operator
from solvers import DAPS, Nested, make_generators
from solvers.schedule import CLEAN

SIZE = 8


def prior() -> GaussianPrior:
    g = torch.Generator().manual_seed(0)
    return GaussianPrior(0.3 * torch.randn(3, SIZE, SIZE, generator=g, dtype=torch.float64),
                         0.1 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("steps, ode_steps", [(20, 2), (7, 3), (5, 1), (1, 2), (9, 5)])
def test_the_budget_is_exact_and_each_level_ends_its_ode_at_zero(steps, ode_steps):
    p = prior()
    op = make_operator("sr2", SIZE).to("cpu", torch.float64)
    solver = DAPS(p, op, steps=steps, ode_steps=ode_steps, langevin_steps=3)
    times = solver.times
    assert len(times) == steps + 1 and times[-1] == CLEAN
    ends = [j for j in range(steps) if solver.ends_level(times[j], times[j + 1])]
    assert len(ends) == max(1, steps // ode_steps)  # one Langevin run per level
    if ode_steps > 1 and steps > 1:
        assert all(times[j] == 0 for j in ends)
    y = op.observe(p.mu[None] + p.std[None] * torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64), 0.05,
                   make_generators([1]))
    records = list(solver.sample(y, 0.05, make_generators([2])))
    assert p.calls == steps and [r.nfe for r in records] == list(range(1, steps + 1))
    p.calls = 0
    Nested(DAPS(p, op, ode_steps=ode_steps, langevin_steps=3), inner_steps=[3, 5, 2]).restore(y, 0.05, make_generators([2]))
    assert p.calls == 10


def test_langevin_samples_its_gaussian_target():
    """x <- x - lr (P x - b) + sqrt(2 lr) z with P = diag(h^2 / tau^2 + 1 / r^2) (inpainting: h in
    {0, 1}) is an AR(1) chain per pixel: stationary mean b / P (the target's mean) and variance
    1 / (P (1 - lr P / 2)) (the unadjusted chain's, slightly above the target's 1 / P). 4000 rows
    after 600 steps (0.01 <= lr P <= 0.05: mixed); the tolerance is 6 standard errors of each estimate."""
    p = prior()
    op = make_operator("inp_random", SIZE).to("cpu", torch.float64)
    rows, tau, sigma, lr = 4000, 0.1, 0.2, 4e-4
    solver = DAPS(p, op, steps=2, langevin_steps=600, lr=lr, lr_min_ratio=1.0, tau=tau)
    x0_hat = (p.mu + 0.1)[None].expand(rows, -1, -1, -1).clone()
    x_true = p.mu[None] + p.std[None] * torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64)
    meas = op.measure(op.H(x_true).expand(rows, -1).clone(), 0.0)
    # the step size at sigma is lr (lr_min_ratio = 1); r = sigma
    out = solver.langevin(x0_hat, sigma, meas, make_generators([3])[0])
    mask = op.Ht(op.H(torch.ones(1, 3, SIZE, SIZE, dtype=torch.float64))).view(3, SIZE, SIZE)
    precision = mask / tau**2 + 1 / sigma**2
    mean = (op.Ht(meas.y[:1]).view(3, SIZE, SIZE) / tau**2 + x0_hat[0] / sigma**2) / precision
    var = 1 / (precision * (1 - lr * precision / 2))
    assert (lr * precision).max() <= 0.05
    assert ((out.mean(0) - mean).abs() <= 6 * (var / rows).sqrt()).all()
    assert ((out.var(0) / var - 1).abs() <= 6 * (2 / rows) ** 0.5).all()
