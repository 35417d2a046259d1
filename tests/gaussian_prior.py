"""An analytic prior for testing samplers: x0 ~ N(mu, diag(std^2)) per pixel.

Its denoiser is exact: E[x0 | x_t] = mu + std^2 sqrt(a) (x_t - sqrt(a) mu) / (a std^2 + 1 - a),
hence eps(x_t, t) = (x_t - sqrt(a) E[x0 | x_t]) / sqrt(1 - a), and with a linear measurement
y = H x0 + sigma n the posterior is Gaussian with a closed-form mean."""

from __future__ import annotations

import torch

from restore.models.prior import celebahq_schedule


class GaussianPrior:
    def __init__(self, mu: torch.Tensor, std: torch.Tensor):
        self.mu, self.std = mu, std  # (C, H, W) each
        self.alphas_cumprod = celebahq_schedule()
        self._a = self.alphas_cumprod
        self.calls = 0

    def posterior_mean_x0(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self._a.to(x_t.device)[t].to(x_t.dtype).view(-1, 1, 1, 1)
        var = self.std.to(x_t) ** 2
        mu = self.mu.to(x_t)
        return mu + var * a.sqrt() * (x_t - a.sqrt() * mu) / (a * var + 1 - a)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        a = self._a.to(x_t.device)[t].to(x_t.dtype).view(-1, 1, 1, 1)
        return (x_t - a.sqrt() * self.posterior_mean_x0(x_t, t)) / (1 - a).sqrt()

    def measurement_posterior(self, H: torch.Tensor, y: torch.Tensor, sigma: float):
        """Mean (B, n) and covariance (n, n) of x0 | y for a dense H (m, n), noise std sigma on
        the model's [-1, 1] scale (sigma > 0)."""
        prec0 = torch.diag(1 / self.std.flatten().double() ** 2)
        prec = prec0 + H.T @ H / sigma**2
        cov = torch.linalg.inv(prec)
        mean = (cov @ (prec0 @ self.mu.flatten().double()[:, None] + H.T @ y.double().T / sigma**2)).T
        return mean, cov
