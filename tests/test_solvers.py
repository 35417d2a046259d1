"""DDRM and Nested DDRM against closed-form answers of a Gaussian prior (exact denoiser)."""

from __future__ import annotations

import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import make_operator
from solvers import DDRM, NestedDDRM, make_generators
from solvers.schedule import CLEAN, linear_times, outer_times

SIZE = 8


def gaussian(channels: int = 3, seed: int = 0) -> GaussianPrior:
    g = torch.Generator().manual_seed(seed)
    mu = 0.3 * torch.randn(channels, SIZE, SIZE, generator=g, dtype=torch.float64)
    std = 0.1 + 0.4 * torch.rand(channels, SIZE, SIZE, generator=g, dtype=torch.float64)
    return GaussianPrior(mu, std)


def draw(prior: GaussianPrior, batch: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return prior.mu + prior.std * torch.randn(batch, *prior.mu.shape, generator=g, dtype=torch.float64)


def operator(task: str, channels: int = 3):
    return make_operator(task, SIZE, channels=channels).to("cpu", torch.float64)


def dense(op) -> torch.Tensor:
    eye = torch.eye(op.n, dtype=torch.float64).reshape(op.n, *op.image_shape)
    return op.H(eye).T  # (m, n)


TASKS = ["deno", "sr2", "sr4", "sr_bicubic4", "color", "inp_box", "inp_random", "inp_text", "deblur_uniform", "deblur_gauss"]


def test_official_ddrm_grid():
    prior = gaussian()
    assert DDRM(prior, operator("sr2"), steps=20).times == list(range(950, -1, -50)) + [CLEAN]
    assert linear_times(666, 3) == [666, 333, 0, CLEAN]
    assert outer_times(950, 4) == [950, 712, 475, 238]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("nested", [False, True])
def test_noiseless_result_is_consistent_with_y(task, nested, device):
    prior = gaussian()
    op = operator(task).to(device)
    x = draw(prior, batch=2).to(device)
    y = op.H(x)
    solver = NestedDDRM(prior, op, outer_steps=3, inner_steps=4) if nested else DDRM(prior, op, steps=10)
    records = list(solver.sample(y, 0.0, make_generators([3, 4], device)))
    for record in records:
        if record.kind == "outer" or record.final:  # every anytime output of Nested, DDRM's final
            assert torch.allclose(op.H(record.x0), y, atol=1e-6)
    assert records[-1].final and sum(r.final for r in records) == 1


@pytest.mark.parametrize("task", ["deno", "sr2", "inp_random"])
def test_mean_of_restorations_approaches_posterior_mean(task):
    """With an exact denoiser, the mean of many DDRM restorations lands close to E[x0 | y].

    DDRM (eta = 0.85) is a variational approximation, not an exact posterior sampler, so the gap
    does not vanish; it is small next to how far the posterior mean moved from the prior mean."""
    prior = gaussian(channels=1)
    op = operator(task, channels=1)
    sigma_y = 0.05
    y = op.observe(draw(prior), sigma_y, torch.Generator().manual_seed(1))
    posterior_mean, _ = prior.measurement_posterior(dense(op), y, 2 * sigma_y)
    samples = 2000
    out = DDRM(prior, op, steps=100).restore(y.expand(samples, -1).contiguous(), sigma_y, torch.Generator().manual_seed(2))
    error = (out.mean(0).flatten() - posterior_mean[0]).abs().mean().item()
    moved = (prior.mu.flatten() - posterior_mean[0]).abs().mean().item()
    assert error < 0.03
    assert error < 0.2 * moved


def test_restoration_beats_pseudo_inverse_with_exact_prior():
    prior = gaussian()
    op = operator("sr4")
    x = draw(prior, batch=64)
    y = op.H(x)
    out = DDRM(prior, op, steps=20).restore(y, 0.0, torch.Generator().manual_seed(0))
    mse = lambda a: (a - x).square().mean().item()  # noqa: E731
    assert mse(out) < 0.9 * mse(op.H_pinv(y))  # a posterior sample, not the MMSE estimate


@pytest.mark.parametrize("task", ["sr4", "inp_box", "deblur_gauss"])
def test_nested_with_one_outer_step_is_ddrm(task, device):
    prior = gaussian()
    op = operator(task)
    y = op.observe(draw(prior, batch=2), 0.05, torch.Generator().manual_seed(0)).to(device)
    op.to(device)
    for k in (1, 5, 20):
        a = DDRM(prior, op, steps=k).restore(y, 0.05, make_generators([7, 8], device))
        b = NestedDDRM(prior, op, outer_steps=1, inner_steps=k).restore(y, 0.05, make_generators([7, 8], device))
        assert torch.allclose(a, b, rtol=0, atol=1e-12)  # the same arithmetic, reached by two code paths


@pytest.mark.parametrize("outer,inner,yield_inner", [(4, 5, False), (3, 4, True), (1, 6, True)])
def test_network_calls_counted_exactly(outer, inner, yield_inner):
    prior = gaussian()
    op = operator("sr2")
    y = op.H(draw(prior))
    solver = NestedDDRM(prior, op, outer_steps=outer, inner_steps=inner, yield_inner=yield_inner)
    records = list(solver.sample(y, 0.0, torch.Generator().manual_seed(0)))
    assert prior.calls == outer * inner == solver.nfe_total == records[-1].nfe
    outer_records = [r for r in records if r.kind == "outer"]
    assert [r.nfe for r in outer_records] == [inner * (j + 1) for j in range(outer)]
    inner_records = [r for r in records if r.kind == "inner"]
    assert len(inner_records) == (outer * (inner - 1) if yield_inner else 0)
    assert [r.nfe for r in records] == sorted(r.nfe for r in records)

    prior.calls = 0
    ddrm_records = list(DDRM(prior, op, steps=7).sample(y, 0.0, torch.Generator().manual_seed(0)))
    assert prior.calls == 7 and [r.nfe for r in ddrm_records] == list(range(1, 8))
    assert [r.t for r in ddrm_records] == DDRM(prior, op, steps=7).times[:-2] + [CLEAN]


@pytest.mark.parametrize("make", [lambda p, o: DDRM(p, o, steps=6), lambda p, o: NestedDDRM(p, o, 3, 2, outer_eta=0.5)])
def test_same_generator_same_result_and_batch_independence(make, device):
    prior = gaussian()
    op = operator("inp_random")
    x = draw(prior, batch=3)
    y = op.observe(x, 0.02, torch.Generator().manual_seed(0)).to(device)
    op.to(device)
    first = make(prior, op).restore(y, 0.02, torch.Generator(device).manual_seed(11))
    again = make(prior, op).restore(y, 0.02, torch.Generator(device).manual_seed(11))
    other = make(prior, op).restore(y, 0.02, torch.Generator(device).manual_seed(12))
    assert torch.equal(first, again) and not torch.allclose(first, other)

    batch = make(prior, op).restore(y, 0.02, make_generators([5, 6, 7], device))
    alone = make(prior, op).restore(y[1:2], 0.02, make_generators([6], device))
    assert torch.allclose(batch[1:2], alone, atol=1e-12)


def test_dtype_follows_the_measurement():
    prior = gaussian()
    op = make_operator("sr2", SIZE)
    y = op.H(draw(prior).float())
    out = NestedDDRM(prior, op, 2, 3).restore(y, 0.0, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and out.shape == (1, 3, SIZE, SIZE) and torch.isfinite(out).all()


def test_invalid_arguments():
    prior = gaussian()
    op = operator("sr2")
    with pytest.raises(ValueError, match="steps"):
        DDRM(prior, op, steps=0)
    with pytest.raises(ValueError, match="outer_steps"):
        NestedDDRM(prior, op, outer_steps=0)
    with pytest.raises(ValueError, match="eta"):
        DDRM(prior, op, eta=1.5)
    solver = DDRM(prior, op, steps=2)
    with pytest.raises(ValueError, match="shape"):
        solver.restore(torch.zeros(1, op.m + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="sigma_y"):
        solver.restore(torch.zeros(1, op.m, dtype=torch.float64), sigma_y=-0.1)
    with pytest.raises(ValueError, match="generators"):
        solver.restore(torch.zeros(2, op.m, dtype=torch.float64), generator=make_generators([1]))


def test_nested_times_list_every_network_call():
    solver = NestedDDRM(gaussian(), operator("sr2"), outer_steps=2, inner_steps=3, outer_power=1.0)
    # 6 calls start where DDRM 6 starts, (1000 // 6) * 5 = 830; outer times 830 and 415
    assert solver.outer == [830, 415]
    assert solver.times == [830, 415, 0, 415, 208, 0, CLEAN]
    # the default outer grid, power 2: 830 (2/2)^2, 830 (1/2)^2
    assert NestedDDRM(gaussian(), operator("sr2"), outer_steps=2, inner_steps=3).outer == [830, 208]
    assert len(solver.times) - 1 == solver.nfe_total
