"""RED-diff's fixed point on the exact Gaussian prior x0 ~ N(m0, diag(s^2)). With x_t = sqrt(a) mu +
sqrt(1 - a) eps, E_eps[eps_theta(x_t) - eps] = sqrt(a (1 - a)) (mu - m0) / (a s^2 + 1 - a), so the
expected gradient at t is lambda (1 - a) (mu - m0) / (n (a s^2 + 1 - a))
- H^T (y - H mu) / m, zero at mu* = (H^T H / m + c)^-1 (H^T y / m + c m0), c = lambda (1 - a) /
(n (a s^2 + 1 - a)), per pixel for inpainting (H^T H = diag(mask))."""

from __future__ import annotations

import torch
from gaussian_prior import GaussianPrior

from degradations import make_operator
from solvers import REDDiff

SIZE = 8


def test_the_expected_gradient_vanishes_at_the_closed_form_fixed_point():
    g = torch.Generator().manual_seed(0)
    p = GaussianPrior(0.3 * torch.randn(3, SIZE, SIZE, generator=g, dtype=torch.float64),
                      0.1 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g, dtype=torch.float64))
    op = make_operator("inp_random", SIZE).to("cpu", torch.float64)
    solver = REDDiff(p, op, steps=5, lambda_=0.25)
    rows, t = 20000, 500
    a = solver.schedule.alpha_bar(t)
    x = p.mu + p.std * torch.randn(1, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    y = op.H(x)
    meas = op.measure(y.expand(rows, -1).clone(), 0.0)
    n, m = 3 * SIZE * SIZE, y.shape[1]
    mask = op.Ht(op.H(torch.ones_like(x)))[0]
    c = 0.25 * (1 - a) / (n * (a * p.std**2 + 1 - a))
    mu_star = (op.Ht(y)[0] / m + c * p.mu) / (mask / m + c)

    def mean_gradient(mu):
        mu = mu.expand(rows, -1, -1, -1)
        eps = torch.randn(mu.shape, generator=g, dtype=torch.float64)
        x_t = a**0.5 * mu + (1 - a) ** 0.5 * eps
        eps_hat, _ = solver.predict(x_t, t)
        grads = solver.gradient(mu, eps_hat, eps, t, meas)
        return grads.mean(0), grads.std(0) / rows**0.5

    at_star, se = mean_gradient(mu_star)
    assert (at_star.abs() <= 6 * se + 1e-15).all()  # 6 standard errors of the Monte Carlo mean
    off, _ = mean_gradient(mu_star + 0.2)
    assert (off.abs() > 6 * se + 1e-15).float().mean() > 0.9  # elsewhere it does not vanish
