"""Operators known only through H and H^T (degradations.linear): DiffPIR's data step by conjugate
gradients against a dense solve on random sparse H, and DPS, DiffPIR and Nested around them
against the same solvers on the SVD form of the same operator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import LinearOperator, MatrixOperator, make_operator
from solvers import DDNM, DDRM, DPS, DiffPIR, Nested, PiGDM, make_generators
from degradations.cg import conjugate_gradient, least_squares, proximal
from degradations.measurement import Measurement, SpectralMeasurement

SIZE = 8


def sparse_matrix(m: int, n: int, density: float = 0.15, seed: int = 0) -> torch.Tensor:
    """A random sparse (m, n) matrix in COO form, float64, every column and row touched."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(m, n, generator=g) < density
    mask[torch.arange(m), torch.randint(n, (m,), generator=g)] = True
    mask[torch.randint(m, (n,), generator=g), torch.arange(n)] = True
    dense = torch.randn(m, n, generator=g, dtype=torch.float64) * mask
    return dense.to_sparse_coo()


class ForwardOnly(LinearOperator):
    """An SVD operator seen only through its H and H^T."""

    def __init__(self, op):
        self.op = op
        self.channels, self.height, self.width = op.image_shape
        self.measurement_shape = op.measurement_shape

    def H(self, x):
        return self.op.H(x)

    def Ht(self, y):
        return self.op.Ht(y)

    def to(self, device=None, dtype=None):
        self.op.to(device, dtype)
        return self


def gaussian(seed: int = 0) -> GaussianPrior:
    g = torch.Generator().manual_seed(seed)
    mu = 0.3 * torch.randn(3, SIZE, SIZE, generator=g, dtype=torch.float64)
    return GaussianPrior(mu, 0.1 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("shape, m", [((2, 5, 7), 41), ((1, 6, 3), 31), ((3, 4, 5), 60)],
                         ids=["wide", "tall", "square"])
@pytest.mark.parametrize("rho", [1.0, 0.05, 1e-3])
def test_the_cg_data_step_is_the_dense_solve_on_a_random_sparse_operator(shape, m, rho, device):
    n = int(np.prod(shape))
    matrix = sparse_matrix(m, n, seed=m)
    op = MatrixOperator(matrix.to(device), shape)
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    y = torch.randn(3, m, generator=g, dtype=torch.float64)
    dense = matrix.to_dense().numpy()
    expected = np.stack([np.linalg.solve(dense.T @ dense + rho * np.eye(n), dense.T @ y[i].numpy() + rho * x0[i].flatten().numpy())
                         for i in range(3)])
    got = proximal(op, y.to(device), x0.to(device), rho, iterations=400, tolerance=1e-12)
    np.testing.assert_allclose(got.flatten(1).cpu().numpy(), expected, rtol=0, atol=1e-8 * np.abs(expected).max())


def test_diffpir_takes_its_data_step_by_cg_on_a_sparse_operator():
    """Through the solver: rho_t from its schedule and the measurement's noise, then the dense solve."""
    shape, m = (3, SIZE, SIZE), 150
    matrix = sparse_matrix(m, 3 * SIZE * SIZE, seed=4)
    solver = DiffPIR(gaussian(), MatrixOperator(matrix, shape), steps=6, cg_iterations=400, cg_tolerance=1e-12)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(2, *shape, generator=g, dtype=torch.float64)
    y = torch.randn(2, m, generator=g, dtype=torch.float64)
    meas = solver.measure(y, 0.05)
    assert isinstance(meas, Measurement)
    for t in solver.times[:-1]:
        rho = solver.rho(meas.sigma_0, t)
        dense = matrix.to_dense()
        a = dense.T @ dense + rho * torch.eye(dense.shape[1], dtype=torch.float64)
        expected = torch.linalg.solve(a, (dense.T @ y.T + rho * x0.flatten(1).T)).T
        got = meas.prox(x0, rho, solver.cg_iterations, solver.cg_tolerance).flatten(1)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))


def test_cg_keeps_the_null_space_and_solves_each_image_on_its_own():
    matrix = sparse_matrix(20, 45, seed=7)
    op = MatrixOperator(matrix, (1, 5, 9))
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(4, 1, 5, 9, generator=g, dtype=torch.float64)
    y = torch.randn(4, 20, generator=g, dtype=torch.float64)
    together = proximal(op, y, x0, 1e-4, iterations=300, tolerance=1e-12)
    alone = torch.cat([proximal(op, y[i:i + 1], x0[i:i + 1], 1e-4, iterations=300, tolerance=1e-12) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-9)
    dense = matrix.to_dense()
    null = torch.eye(45, dtype=torch.float64) - torch.linalg.pinv(dense) @ dense  # projector onto ker H
    torch.testing.assert_close(together.flatten(1) @ null, x0.flatten(1) @ null, rtol=0, atol=1e-8)
    # no equations left to solve: the start is returned as it is
    b = op.Ht(op.H(x0))
    torch.testing.assert_close(conjugate_gradient(lambda v: op.Ht(op.H(v)), b, x0), x0, rtol=0, atol=0)


def test_least_squares_start_is_the_pseudo_inverse():
    matrix = sparse_matrix(30, 60, seed=9)  # wide: the minimum-norm solution
    op = MatrixOperator(matrix, (1, 6, 10))
    y = torch.randn(2, 30, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = y @ torch.linalg.pinv(matrix.to_dense()).T
    got = least_squares(op, y, iterations=500, tolerance=1e-13).flatten(1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-7 * float(expected.abs().max()))


def test_matrix_operator_is_the_matrix_and_its_adjoint():
    matrix = sparse_matrix(17, 3 * 5 * 7, seed=11)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64)
    y = torch.randn(2, 17, generator=g, dtype=torch.float64)
    for op in (MatrixOperator(matrix, (3, 5, 7)), MatrixOperator(matrix.to_dense(), (3, 5, 7))):
        torch.testing.assert_close(op.H(x), x.flatten(1) @ matrix.to_dense().T, rtol=0, atol=1e-12)
        torch.testing.assert_close((op.H(x) * y).sum(), (x * op.Ht(y)).sum(), rtol=1e-12, atol=1e-12)
        assert op.Ht(y).shape == (2, 3, 5, 7) and op.m == 17 and op.to_image(y).shape == (2, 1, 1, 17)
    with pytest.raises(ValueError, match="columns"):
        MatrixOperator(matrix, (3, 5, 6))
    with pytest.raises(ValueError, match="rows"):
        MatrixOperator(matrix, (3, 5, 7), measurement_shape=(1, 4, 4))


@pytest.mark.parametrize("task, sigma_y", [("sr4", 0.0), ("deblur_gauss", 0.05), ("inp_box", 0.02)])
@pytest.mark.parametrize("make_solver", [
    lambda p, o: DiffPIR(p, o, steps=6),
    lambda p, o: DPS(p, o, steps=6),
    lambda p, o: Nested(DiffPIR(p, o), 3, 2),
], ids=["diffpir", "dps", "nested-diffpir"])
def test_a_run_through_h_and_ht_alone_is_the_run_on_the_svd(task, sigma_y, make_solver, device):
    """Same prior, measurement and seeds: the whole run agrees with the closed-form one, start image
    (CG's H^+ y) included, to the solves' tolerance."""
    prior = gaussian()
    op = make_operator(task, SIZE).to("cpu", torch.float64)
    g = torch.Generator().manual_seed(8)
    x = prior.mu + prior.std * torch.randn(2, *prior.mu.shape, generator=g, dtype=torch.float64)
    y = op.observe(x, sigma_y, make_generators([3, 4])).to(device)
    op.to(device)
    svd = make_solver(prior, op)
    free = make_solver(prior, ForwardOnly(op))
    assert isinstance(svd.measure(y, sigma_y), SpectralMeasurement)
    assert isinstance(free.measure(y, sigma_y), Measurement)
    expected = svd.restore(y, sigma_y, make_generators([5, 6], device))
    got = free.restore(y, sigma_y, make_generators([5, 6], device))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    assert (op.H(got) - y).norm() < (op.H(prior.mu[None].to(device)) - y).norm()  # and it moved towards y


def test_dps_differentiates_through_a_sparse_operator():
    prior = gaussian()
    matrix = sparse_matrix(100, 3 * SIZE * SIZE, seed=12)
    x = prior.mu[None] + prior.std * torch.randn(1, *prior.mu.shape, generator=torch.Generator().manual_seed(9),
                                                 dtype=torch.float64)
    sparse, dense = MatrixOperator(matrix, prior.mu.shape), MatrixOperator(matrix.to_dense(), prior.mu.shape)
    y = dense.H(x)
    expected = DPS(prior, dense, steps=5).restore(y, 0.0, make_generators([1]))
    torch.testing.assert_close(DPS(prior, sparse, steps=5).restore(y, 0.0, make_generators([1])), expected,
                               rtol=0, atol=1e-8)


@pytest.mark.parametrize("solver", [DDRM, DDNM])
def test_solvers_that_need_the_svd_say_so(solver):
    op = MatrixOperator(sparse_matrix(10, 3 * SIZE * SIZE), (3, SIZE, SIZE))
    with pytest.raises(TypeError, match="needs the operator's SVD .* use DAPS, DiffPIR, DPS, PiGDM, RED-diff,"):
        solver(gaussian(), op)


@pytest.mark.parametrize("task", ["sr2", "inp_box", "deblur_gauss"])
@pytest.mark.parametrize("c", [0.0, 0.3])
def test_the_weighted_residual_by_cg_is_the_closed_form(task, c):
    """H^T (H H^T + c I)^-1 (y - H x0): CG on the measurement side against the SVD's closed form, to
    1e-8 plus the operator's own V^T V - I error (float32-orthogonal factors of the separable blurs)
    amplified by (H H^T)^-1 at most 1 / s_min^2."""
    op = make_operator(task, SIZE).to("cpu", torch.float64)
    v = torch.randn(3, op.n, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    s = op.singulars()
    tolerance = 1e-8 + 10 * float((op.Vt(op.V(v)) - v).abs().max()) / float(s[s > 0].min()) ** 2
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(2, *op.image_shape, generator=g, dtype=torch.float64)
    y = op.H(torch.randn(2, *op.image_shape, generator=g, dtype=torch.float64))
    expected = op.measure(y, 0.0).weighted_residual(x0, c)
    got = ForwardOnly(op).measure(y, 0.0).weighted_residual(x0, c, iterations=500, tolerance=1e-13)
    torch.testing.assert_close(got, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("task", ["sr2", "inp_box", "deblur_gauss"])
@pytest.mark.parametrize("sigma_y", [0.0, 0.05])
def test_pigdm_through_h_and_ht_alone_is_pigdm_on_the_svd(task, sigma_y):
    """Its guidance's weighted residual by CG on the measurement side: the same run to the solves' tolerance."""
    prior = gaussian()
    op = make_operator(task, SIZE).to("cpu", torch.float64)
    x = prior.mu + prior.std * torch.randn(2, *prior.mu.shape, generator=torch.Generator().manual_seed(8),
                                           dtype=torch.float64)
    y = op.observe(x, sigma_y, make_generators([3, 4]))
    expected = PiGDM(prior, op, steps=5).restore(y, sigma_y, make_generators([5, 6]))
    got = PiGDM(prior, ForwardOnly(op), steps=5).restore(y, sigma_y, make_generators([5, 6]))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
