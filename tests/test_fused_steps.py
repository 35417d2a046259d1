"""The fused solver steps (fewer operators per step), an implementation detail: each solver's
fused step equals its step as the paper writes it; each step's weights from the run's table equal
those a step computes alone; the measurement remembers the V^T coordinates of the last image it
made only while that image is unchanged; a saved run keeps them; the operators launched outside
the network per call stay at least halved from what they were (DDRM 64x64, sigma_y 0.05: 34
inp_box, 43 sr4, 50 deblur_gauss before the fusion; counted, not timed)."""

from __future__ import annotations

import pytest
import torch
from gaussian_prior import GaussianPrior

import solvers.step as step_module
from degradations import make_operator
from restore.bench.cpu_flops import cpu_peak
from restore.bench.kernels import SOLVERS as COUNTED
from restore.bench.kernels import count
from solvers import DDNM, DDRM, DiffPIR, Nested, Run, make_generators

SIZE = 8


def gaussian(seed: int = 0) -> GaussianPrior:
    g = torch.Generator().manual_seed(seed)
    mu = 0.3 * torch.randn(3, SIZE, SIZE, generator=g, dtype=torch.float64)
    return GaussianPrior(mu, 0.1 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g, dtype=torch.float64))


def problem(task: str, sigma_y: float, device="cpu"):
    prior = gaussian()
    op = make_operator(task, SIZE).to("cpu", torch.float64)
    x = prior.mu + prior.std * torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1),
                                           dtype=torch.float64)
    return prior, op.to(device), op.observe(x, sigma_y, make_generators([3, 4])).to(device)


@pytest.mark.parametrize("task", ["inp_box", "sr2", "deblur_gauss", "color"])
@pytest.mark.parametrize("sigma_y", [0.0, 0.05])
@pytest.mark.parametrize("make", [lambda p, op: DDRM(p, op, 6, eta=0.7, eta_b=0.8), lambda p, op: DDNM(p, op, 6),
                                  lambda p, op: DiffPIR(p, op, 6), lambda p, op: Nested(DDRM(p, op, 1), 3, 2)],
                         ids=["ddrm", "ddnm", "diffpir", "nested"])
def test_the_table_equals_each_step_computing_its_own(task, sigma_y, make, monkeypatch, device):
    prior, op, y = problem(task, sigma_y, device)
    tabled = make(prior, op).restore(y, sigma_y, make_generators([5, 6], device))
    monkeypatch.setattr(step_module, "TABLE_BYTES", 0)  # a table too large: every step computes its row
    alone = make(prior, op).restore(y, sigma_y, make_generators([5, 6], device))
    assert torch.allclose(tabled, alone, atol=1e-12, rtol=0)


@pytest.mark.parametrize("task", ["inp_box", "sr2", "deblur_gauss", "color", "deno"])
@pytest.mark.parametrize("sigma_y", [0.0, 0.05])
@pytest.mark.parametrize("make", [lambda p, op, fused: DDRM(p, op, 6, eta=0.7, eta_b=0.8, fused=fused),
                                  lambda p, op, fused: DDRM(p, op, 5, fused=fused),
                                  lambda p, op, fused: DDNM(p, op, 6, eta=0.6, fused=fused),
                                  lambda p, op, fused: Nested(DDRM(p, op, 1, fused=fused), 3, 2),
                                  lambda p, op, fused: Nested(DDNM(p, op, 1, fused=fused), 2, 3),
                                  lambda p, op, fused: DiffPIR(p, op, 6, zeta=0.3, fused=fused),
                                  lambda p, op, fused: Nested(DiffPIR(p, op, fused=fused), 2, 3)],
                         ids=["ddrm", "ddrm-defaults", "ddnm", "nested-ddrm", "nested-ddnm", "diffpir", "nested-diffpir"])
def test_the_fused_step_equals_the_papers_step(task, sigma_y, make):
    """Every anytime output, not only the result, with the same generators, in float64: to 1e-10
    plus what the paths may differ by, the fused one taking V^T x_t as the v that made x_t where
    the paper's transforms x_t: 50 times the operator's own V^T V - I error (about 2e-7 for the
    separable blurs, whose factors are orthogonal to float32 precision; 1e-16 for the others)."""
    prior, op, y = problem(task, sigma_y)
    v = torch.randn(3, op.n, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    tolerance = 1e-10 + 50 * float((op.Vt(op.V(v)) - v).abs().max())
    fused = [r.x0 for r in make(prior, op, True).sample(y, sigma_y, make_generators([5, 6]))]
    plain = [r.x0 for r in make(prior, op, False).sample(y, sigma_y, make_generators([5, 6]))]
    assert len(fused) == len(plain) > 1
    for a, b in zip(fused, plain):
        assert torch.allclose(a, b, atol=tolerance, rtol=0)


def test_the_measurement_remembers_an_image_only_while_it_is_unchanged():
    op = make_operator("sr2", SIZE).to("cpu", torch.float64)
    meas = op.measure(torch.zeros(2, op.m, dtype=torch.float64), 0.0)
    v = torch.randn(2, op.n, dtype=torch.float64)
    x = meas.image(v)
    assert meas.coords(x) is v and meas.carried(x) is v
    assert meas.carried(x.clone()) is None and torch.allclose(meas.coords(x.clone()), v)
    x.add_(1)  # changed in place: V^T x is no longer v
    assert meas.carried(x) is None and torch.allclose(meas.coords(x), op.Vt(x))


def test_the_remembered_vector_is_the_state_s_own():
    """A fused DDRM step's state is remembered with V^T of itself (to the operator's precision)."""
    prior, op, y = problem("sr2", 0.05)
    solver = DDRM(prior, op, 6)
    meas = solver.measure(y, 0.05)
    x = solver.initial_state(meas, solver.times[0], make_generators([1, 2]))
    assert meas.carried(x) is None
    x_next, _ = solver.fused_step(x, solver.times[0], solver.times[1], meas, make_generators([1, 2]))
    assert torch.allclose(meas.carried(x_next), op.Vt(x_next), atol=1e-6)


def test_a_saved_run_keeps_the_carried_vector_and_resumes_as_it_would_have_gone_on(device):
    prior, op, y = problem("deblur_gauss", 0.05, device)
    uninterrupted = Run(DDRM(prior, op, 6), y, 0.05, make_generators([1, 2], device))
    for _ in range(6):
        uninterrupted.step()
    run = Run(DDRM(prior, op, 6), y, 0.05, make_generators([1, 2], device))
    run.step(), run.step()
    state = run.state_dict()
    assert state["x_spectral"] is not None and state["x_spectral"].shape == (2, op.n)
    resumed = Run.from_state(DDRM(prior, op, 6), state, device)
    for _ in range(4):
        resumed.step()
    assert torch.equal(resumed.latest.x0, uninterrupted.latest.x0)


@pytest.mark.parametrize("task, before", [("inp_box", 33.8), ("sr4", 42.8), ("deblur_gauss", 49.8)])
def test_ddrm_launches_at_most_half_the_operators_it_did(task, before):
    per_call, _ = count(task, 64, 0.05, COUNTED["DDRM"])
    assert per_call <= before / 2


@pytest.mark.parametrize("name", list(COUNTED))
def test_no_solver_launches_more_than_twenty_six_operators_per_call(name):
    """The other solvers, at the size the bench counts: DDNM deblur_gauss is the most (25.9)."""
    for task in ("inp_box", "sr4", "deblur_gauss"):
        assert count(task, 64, 0.05, COUNTED[name])[0] <= 26


def test_the_peak_is_derived_from_the_vector_units(tmp_path):
    zen4 = "vendor_id : AuthenticAMD\ncpu family : 25\nmodel name : AMD EPYC 9454 @ 2.75GHz\nflags : fma avx2 avx512f\n"
    xeon = "vendor_id : GenuineIntel\ncpu family : 6\nmodel name : Intel Xeon Gold 6430 @ 2.10GHz\nflags : fma avx2 avx512f\n"
    amd, intel = cpu_peak(zen4, lscpu=""), cpu_peak(xeon, lscpu="")
    assert (amd["lanes"], amd["ghz"], amd["gflops_per_core"]) == (8, 2.75, 2 * 8 * 2 * 2.75)
    assert (intel["lanes"], intel["ghz"], intel["gflops_per_core"]) == (16, 2.1, 2 * 16 * 2 * 2.1)
    assert cpu_peak(xeon, lscpu="CPU max MHz: 3500.0000\n")["ghz"] == 3.5
