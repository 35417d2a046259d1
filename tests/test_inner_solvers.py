"""DDRM, DDNM, DiffPIR and DPS, plain and inside the generic Nested, on the exact Gaussian prior:
call counts, Nested(1, K) == the solver with K steps, per-step budgets, seeds and batches,
measurement consistency, and closed-form means."""

from __future__ import annotations

import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import make_operator
from restore.errors import UsageError
from restore.settings import Settings
from restore.settings.build import build_solver
from solvers import DAPS, DDNM, DDRM, DPS, SOLVERS, DiffPIR, Nested, NestedDDRM, PiGDM, Run, make_generators
from solvers.schedule import CLEAN, warp_times

SIZE = 8
NAMES = list(SOLVERS)


def gaussian(channels: int = 3, seed: int = 0, iso: bool = False) -> GaussianPrior:
    g = torch.Generator().manual_seed(seed)
    mu = 0.3 * torch.randn(channels, SIZE, SIZE, generator=g, dtype=torch.float64)
    std = 0.1 + 0.4 * torch.rand(channels, SIZE, SIZE, generator=g, dtype=torch.float64)
    return GaussianPrior(mu, torch.full_like(std, 0.3) if iso else std)


def draw(prior: GaussianPrior, batch: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return prior.mu + prior.std * torch.randn(batch, *prior.mu.shape, generator=g, dtype=torch.float64)


def operator(task: str, channels: int = 3):
    return make_operator(task, SIZE, channels=channels).to("cpu", torch.float64)


def make(name: str, prior, op, steps: int = 6, **options):
    return SOLVERS[name](prior, op, steps=steps, **options)


@pytest.mark.parametrize("name", NAMES)
def test_network_calls_counted_exactly(name):
    prior = gaussian()
    op = operator("sr2")
    y = op.H(draw(prior))
    records = list(make(name, prior, op, steps=7).sample(y, 0.0, make_generators([0])))
    assert prior.calls == 7 and [r.nfe for r in records] == list(range(1, 8)) and records[-1].final
    assert [r.t for r in records] == make(name, prior, op, steps=7).times[:-2] + [CLEAN]

    prior.calls = 0
    nested = Nested(make(name, prior, op), inner_steps=[2, 3, 1, 4], yield_inner=True)
    records = list(nested.sample(y, 0.0, make_generators([0])))
    assert prior.calls == 10 == nested.nfe_total and nested.outer_steps == 4
    outer = [r for r in records if r.kind == "outer"]
    assert [r.nfe for r in outer] == [2, 5, 6, 10] and outer[-1].final  # an outer result after every inner run
    assert len([r for r in records if r.kind == "inner"]) == 1 + 2 + 0 + 3
    assert [nested.calls_before(j) for j in range(5)] == [0, 2, 5, 6, 10]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sigma_y", [0.0, 0.05])
def test_nested_with_one_outer_step_is_the_solver(name, sigma_y, device):
    prior = gaussian()
    op = operator("sr4" if name != "ddnm" else "deblur_gauss")
    y = op.observe(draw(prior, batch=2), sigma_y, torch.Generator().manual_seed(0)).to(device)
    op.to(device)
    for k in (1, 5):
        a = make(name, prior, op, steps=k).restore(y, sigma_y, make_generators([7, 8], device))
        b = Nested(make(name, prior, op, steps=99), outer_steps=1, inner_steps=k).restore(
            y, sigma_y, make_generators([7, 8], device))
        assert torch.allclose(a, b, rtol=0, atol=1e-10)  # the same arithmetic, reached by two code paths


def test_nested_ddrm_is_nested_of_ddrm():
    prior = gaussian()
    op = operator("inp_box")
    y = op.observe(draw(prior, batch=2), 0.05, torch.Generator().manual_seed(0))
    a = NestedDDRM(prior, op, 3, 4, outer_eta=0.3).restore(y, 0.05, make_generators([1, 2]))
    b = Nested(DDRM(prior, op), 3, 4, outer_eta=0.3).restore(y, 0.05, make_generators([1, 2]))
    assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert NestedDDRM(prior, op).name == "NestedDDRM" and Nested(DDNM(prior, op)).name == "NestedDDNM"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("nested", [False, True])
def test_seed_and_batch_independence(name, nested, device):
    prior = gaussian()
    op = operator("inp_random")
    y = op.observe(draw(prior, batch=3), 0.02, torch.Generator().manual_seed(0)).to(device)
    op.to(device)

    def solve(y, seeds):
        solver = make(name, prior, op, steps=6)
        return (Nested(solver, 3, 2, outer_eta=0.5) if nested else solver).restore(y, 0.02,
                                                                                   make_generators(seeds, device))

    first, again = solve(y, [5, 6, 7]), solve(y, [5, 6, 7])
    assert torch.equal(first, again) and not torch.allclose(first, solve(y, [5, 6, 8]))
    alone = solve(y[1:2], [6])
    assert torch.allclose(first[1:2], alone, atol=1e-10)


@pytest.mark.parametrize("task", ["deno", "sr2", "sr4", "sr_bicubic4", "color", "inp_box", "inp_random",
                                  "deblur_uniform", "deblur_gauss"])
def test_ddnm_satisfies_the_measurement_without_noise(task):
    prior = gaussian()
    op = operator(task)
    y = op.H(draw(prior, batch=2))
    assert torch.allclose(op.H(DDNM(prior, op, steps=5).restore(y, 0.0, make_generators([1, 2]))), y, atol=1e-8)
    for record in Nested(DDNM(prior, op), 3, 2).sample(y, 0.0, make_generators([1, 2])):
        assert torch.allclose(op.H(record.x0), y, atol=1e-8)  # every anytime output


def test_diffpir_nearly_satisfies_a_noiseless_measurement():
    """Its rho_t has the released code's noise floor 0.001, so the data step is a near-projection."""
    prior = gaussian()
    op = operator("sr4")
    x = draw(prior, batch=2)
    y = op.H(x)
    out = DiffPIR(prior, op, steps=10).restore(y, 0.0, make_generators([1, 2]))
    assert (op.H(out) - y).norm() < 0.01 * (op.H(prior.mu[None]) - y).norm()


def unclipped(solver):
    """DiffPIR clips x0 to [-1, 1] (its released code does); the exact Gaussian prior's x0 needs no
    clip, and clipping its tails would bias the mean this test checks."""
    solver.clip_x0 = False
    return solver


@pytest.mark.parametrize("make_solver", [
    lambda p, o: DDRM(p, o, steps=50),
    lambda p, o: DDNM(p, o, steps=50),
    lambda p, o: unclipped(DiffPIR(p, o, steps=50)),
    lambda p, o: Nested(DDNM(p, o), 5, 10),
    lambda p, o: Nested(DDRM(p, o), 4, 10, outer_times=[950, 850, 600, 250], outer_noise=1.0),
    lambda p, o: Nested(DDRM(p, o), 4, 10, outer_times="cosine", outer_noise=1.0, inner_power=0.5),
], ids=["ddrm", "ddnm", "diffpir", "nested-ddnm", "nested-ddrm-fresh-outer-noise", "nested-ddrm-inner-power"])
def test_mean_of_restorations_is_the_posterior_mean_for_inpainting(make_solver):
    """Noiseless inpainting with a pixel-wise Gaussian prior: the posterior keeps the known pixels
    and leaves the others to their prior, so E[x0 | y] is y where measured, mu elsewhere. DDRM,
    DDNM and DiffPIR fix the measured pixels and run the exact prior's sampler on the others."""
    prior = gaussian(channels=1)
    op = operator("inp_random", channels=1)
    x = draw(prior)
    y = op.H(x)
    known = op.H_pinv(y).ne(0)  # inp_random keeps about half the pixels
    expected = torch.where(known, x, prior.mu)
    samples = 2000
    out = make_solver(prior, op).restore(y.expand(samples, -1).contiguous(), 0.0, torch.Generator().manual_seed(2))
    error = (out.mean(0) - expected[0]).abs()
    assert error[known[0]].max() < 2e-3
    assert error[~known[0]].mean() < 0.02  # Monte-Carlo error ~ 0.3 / sqrt(2000) per pixel
    # the spread: not collapsed to the mean, not inflated (finite-step samplers with an x0 *mean*
    # estimate are known to shrink it: measured 0.78 to 1.0 of the prior's at 50 calls)
    assert 0.65 < (out.std(0)[~known[0]] / prior.std[~known[0]]).mean() < 1.1


def test_outer_noise_re_noises_the_inner_result():
    """outer_noise 1: x_t' = sqrt(a') x0_hat + sqrt(1 - a') z, whatever x_t was; 0 is DDIM's step;
    in between, the DDRM-style mix keeps x_t' at the forward process's noise level."""
    prior = gaussian()
    op = operator("sr2")
    x0 = draw(prior, batch=1, seed=4)
    x_t, other = draw(prior, batch=1, seed=5), draw(prior, batch=1, seed=6)
    fresh = Nested(DDRM(prior, op), 4, 5, outer_noise=1.0)
    a, a_next = fresh.schedule.alpha_bar(600), fresh.schedule.alpha_bar(250)
    one = fresh.outer_step(x_t, x0, 600, 250, torch.Generator().manual_seed(7))
    two = fresh.outer_step(other, x0, 600, 250, torch.Generator().manual_seed(7))
    assert torch.allclose(one, two, atol=1e-12)  # no memory of x_t
    many = fresh.outer_step(x_t.expand(4000, -1, -1, -1), x0.expand(4000, -1, -1, -1), 600, 250,
                            torch.Generator().manual_seed(8))
    assert (many.mean(0) - a_next**0.5 * x0[0]).abs().max() < 5 * ((1 - a_next) / 4000) ** 0.5
    assert abs(many.std(0).mean() - (1 - a_next) ** 0.5) < 0.02
    ddim = Nested(DDRM(prior, op), 4, 5).outer_step(x_t, x0, 600, 250, torch.Generator().manual_seed(7))
    eps_hat = (x_t - a**0.5 * x0) / (1 - a) ** 0.5
    assert torch.allclose(ddim, a_next**0.5 * x0 + (1 - a_next) ** 0.5 * eps_hat, atol=1e-12)
    half = Nested(DDRM(prior, op), 4, 5, outer_noise=0.6).outer_step(x_t, x0, 600, 250, torch.Generator().manual_seed(7))
    z = (one - a_next**0.5 * x0) / (1 - a_next) ** 0.5  # the fresh draw of the same generator
    assert torch.allclose(half, a_next**0.5 * x0 + (1 - a_next) ** 0.5 * (0.8 * eps_hat + 0.6 * z), atol=1e-10)


def test_explicit_outer_times():
    prior = gaussian()
    op = operator("sr2")
    nested = Nested(DDRM(prior, op), 4, 5, outer_times=[950, 850, 600, 250])
    assert nested.outer == [950, 850, 600, 250] and nested.inner[1] == [850, 638, 425, 212, 0, -1]
    assert nested.times[:6] == [950, 712, 475, 238, 0, 850]
    for bad in ([950, 850, 600], [950, 600, 850, 250], [1000, 850, 600, 250], [950, 850, 600, -1]):
        with pytest.raises(ValueError, match="outer_times"):
            Nested(DDRM(prior, op), 4, 5, outer_times=bad)
    with pytest.raises(ValueError, match="not both"):
        Nested(DDRM(prior, op), 4, 5, outer_eta=0.5, outer_noise=1.0)
    with pytest.raises(ValueError, match="outer_noise"):
        Nested(DDRM(prior, op), 4, 5, outer_noise=1.5)


def test_inner_power_moves_every_inner_run_but_the_last_towards_its_top():
    prior = gaussian()
    op = operator("sr2")
    plain = Nested(DDRM(prior, op), 4, 5, outer_times="cosine")
    top = Nested(DDRM(prior, op), 4, 5, outer_times="cosine", inner_power=0.5)
    assert plain.inner[1] == [878, 658, 439, 220, 0, CLEAN]
    assert top.inner[1] == [878, 760, 621, 439, 0, CLEAN]  # 878 (s / 878)^0.5
    assert top.inner[0] == [950, 822, 672, 475, 0, CLEAN]  # from the rounded grid 950, 712, 475, 238
    assert top.inner[-1] == plain.inner[-1] == [364, 273, 182, 91, 0, CLEAN]  # the result keeps its grid
    assert len(top.times) == len(plain.times) == 21 and top.nfe_total == 20
    assert Nested(DDRM(prior, op), 4, 5, inner_power=1.0).inner == Nested(DDRM(prior, op), 4, 5).inner
    # one outer step is the last: still exactly the solver with K steps
    y = op.H(draw(prior, batch=2, seed=3))
    one = Nested(DDRM(prior, op), 1, 6, inner_power=0.3).restore(y, 0.0, make_generators([4, 5]))
    assert torch.allclose(one, DDRM(prior, op, steps=6).restore(y, 0.0, make_generators([4, 5])), atol=1e-10)
    with pytest.raises(ValueError, match="inner_power"):
        Nested(DDRM(prior, op), 4, 5, inner_power=0.0)
    with pytest.raises(ValueError, match="do not fit"):  # 4 calls below t = 4 cannot crowd at the top
        Nested(DDRM(prior, op), 2, [4, 4], outer_times=[4, 3], inner_power=0.1)
    assert warp_times([100, 50, 20, 10, 0, CLEAN], 2.0) == [100, 25, 4, 1, 0, CLEAN]  # > 1: towards clean
    # a grid of several descents (DAPS's levels, each an ODE down to 0) is warped call by call
    assert warp_times([900, 400, 0, 100, 0, CLEAN], 0.5) == [900, 600, 0, 300, 0, CLEAN]
    with pytest.raises(ValueError, match="cannot spread"):  # 3 and 2 merge; the ascent 0 -> 2 is no merge
        warp_times([900, 3, 2, 0, CLEAN], 1e-4)


def test_nested_daps_takes_the_inpainting_outer_loop():
    """inner_power on DAPS's grid (an ODE to 0 per level): the levels move up as in any solver
    and the budget is kept, so evaluate's shared inpainting loop (configs/inp_box_*) runs it."""
    prior, op = gaussian(channels=1), operator("inp_box", channels=1)
    plain = Nested(DAPS(prior, op), 4, 5, outer_times="cosine", outer_noise=1.0)
    top = Nested(DAPS(prior, op), 4, 5, outer_times="cosine", outer_noise=1.0, inner_power=0.5)
    assert top.nfe_total == plain.nfe_total == 20 and len(top.times) == len(plain.times) == 21
    assert top.inner[-1] == plain.inner[-1]
    for warped, grid in zip(top.inner[:-1], plain.inner[:-1]):
        assert warped == warp_times(grid, 0.5) and warped != grid and 0 in warped
    y = op.H(draw(prior, batch=2, seed=3))
    out = top.restore(y, 0.05, make_generators([4, 5]))
    assert out.shape == draw(prior, batch=2, seed=3).shape and torch.isfinite(out).all()


def test_dps_without_guidance_samples_the_prior_and_with_it_moves_to_y():
    prior = gaussian(channels=1)
    op = operator("sr2", channels=1)
    x = draw(prior)
    y = op.H(x).expand(1000, -1).contiguous()
    free = DPS(prior, op, steps=50, zeta=0.0).restore(y, 0.0, torch.Generator().manual_seed(3))
    assert (free.mean(0) - prior.mu).abs().mean() < 0.03  # the DDPM sampler of the exact prior
    assert 0.65 < (free.std(0) / prior.std).mean() < 1.1  # (0.80 measured: see the inpainting test)
    guided = DPS(prior, op, steps=50).restore(y, 0.0, torch.Generator().manual_seed(3))
    residual = lambda out: (op.H(out) - y).norm(dim=1).mean()  # noqa: E731
    assert residual(guided) < 0.5 * residual(free)


def test_budgets_and_errors():
    prior = gaussian()
    op = operator("sr2")
    nested = Nested(DDNM(prior, op), inner_steps=[2, 3, 5, 10])
    assert nested.outer_steps == 4 and nested.nfe_total == 20 and nested.inner_steps == [2, 3, 5, 10]
    assert Nested(DDNM(prior, op), 2, 3).inner_steps == 3 and Nested(DDNM(prior, op), 2, 3).budgets == [3, 3]
    with pytest.raises(ValueError, match="outer_steps=3"):
        Nested(DDNM(prior, op), outer_steps=3, inner_steps=[1, 2])
    with pytest.raises(ValueError, match=">= 1"):
        Nested(DDNM(prior, op), inner_steps=[2, 0])
    with pytest.raises(ValueError, match="do not fit"):
        Nested(DiffPIR(prior, op), outer_steps=200, inner_steps=[5] * 200)
    assert Nested(DDRM(prior, op), 4, 5, outer_power=2.0).outer == [950, 534, 238, 59]
    with pytest.raises(ValueError, match="outer_power"):
        Nested(DDRM(prior, op), outer_power=0.0)
    with pytest.raises(ValueError, match="zeta"):
        DiffPIR(prior, op, zeta=2.0)
    with pytest.raises(ValueError, match="eta"):
        DDNM(prior, op, eta=-0.1)


def test_settings_name_every_solver():
    prior = gaussian()
    op = operator("sr2")
    expect = {"ddrm": DDRM, "ddnm": DDNM, "diffpir": DiffPIR, "dps": DPS, "pigdm": PiGDM}
    for name, cls in expect.items():
        assert type(build_solver(Settings(solver=name, steps=7).validate(), prior, op)) is cls
        nested = build_solver(Settings(solver=f"nested-{name}").validate(), prior, op)
        assert isinstance(nested, Nested) and type(nested.solver) is cls and nested.nfe_total == 20
    s = Settings(solver="nested", inner=[2, 3, 5, 10]).validate()
    assert (s.outer, s.nfe, s.anytime_steps, s.label) == (4, 20, 4, "Nested DDRM 2+3+5+10")
    assert build_solver(s, prior, op).name == "NestedDDRM"
    assert Settings(solver="diffpir").validate().label == "DiffPIR 20 steps"
    built = build_solver(Settings(solver="diffpir", noise_share=0.5, lam=7.0).validate(), prior, op)
    assert (built.zeta, built.lambda_) == (0.5, 7.0)
    with pytest.raises(UsageError, match="unknown solver 'nested-foo'"):
        Settings(solver="nested-foo").validate()
    with pytest.raises(UsageError, match="--noise-share must lie in"):
        Settings(solver="diffpir", noise_share=3.0).validate()
    with pytest.raises(UsageError, match="do not fit"):
        build_solver(Settings(solver="nested-diffpir", outer=300, inner=4).validate(), prior, op)


def test_a_nested_run_of_any_solver_steps_saves_and_resumes():
    prior = gaussian()
    op = operator("sr2")
    y = op.observe(draw(prior, batch=1), 0.05, torch.Generator().manual_seed(0))
    solver = Nested(DiffPIR(prior, op), inner_steps=[1, 2, 3])
    whole = solver.restore(y, 0.05, make_generators([4]))
    run = Run(solver, y, 0.05, make_generators([4]))
    run.step()
    state = run.state_dict()
    assert state["plan"]["solver"] == "NestedDiffPIR"
    resumed = Run.from_state(solver, state)
    while not resumed.done:
        resumed.step()
    assert torch.allclose(resumed.latest.x0, whole, atol=1e-12)
    with pytest.raises(ValueError, match="NestedDiffPIR"):
        Run.from_state(Nested(DDNM(prior, op), inner_steps=[1, 2, 3]), state)
    with pytest.raises(ValueError, match="times"):  # same solver and budgets, another outer grid
        Run.from_state(Nested(DiffPIR(prior, op), inner_steps=[1, 2, 3], outer_power=1.0), state)


def test_clipped_prediction_keeps_x_t_consistent():
    """clip_x0 (DiffPIR's default, as its released code): x0 in [-1, 1], eps recomputed so that
    x_t = sqrt(a) x0 + sqrt(1 - a) eps still holds. A network that predicts eps = 0 makes the raw
    x0 = x_t / sqrt(a) huge at t = 999."""
    class ZeroEps:
        alphas_cumprod = gaussian().alphas_cumprod

        def __call__(self, x_t, t):
            return torch.zeros_like(x_t)

    op = operator("sr2")
    x_t = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    solver = DiffPIR(ZeroEps(), op)
    eps, x0 = solver.predict(x_t, 999)
    a = solver.schedule.alpha_bar(999)
    assert x0.abs().max() <= 1 and x0.abs().max() == 1
    assert torch.allclose(a**0.5 * x0 + (1 - a) ** 0.5 * eps, x_t, atol=1e-10)
    raw = DDRM(ZeroEps(), op).predict(x_t, 999)[1]  # DDRM does not clip (nor does its official code)
    assert raw.abs().max() > 10


@pytest.mark.parametrize("task, options", [("sr4", {}), ("inp_box", {}), ("deblur_motion", {"kernel_size": 3, "zero_below": 0.0}),
                                           ("color", {})])
@pytest.mark.parametrize("sigma_y", [0.0, 0.05])
def test_pigdm_guidance_is_the_exact_likelihood_score_for_a_unit_variance_prior(task, options, sigma_y):
    """With x0 ~ N(mu, I), p(x0 | x_t) = N(x0_hat, (1 - a_t) I) exactly, so PiGDM's Gaussian
    likelihood is exact and its guidance is (1 - a_t) times grad log p(y | x_t), from dense matrices."""
    g = torch.Generator().manual_seed(0)
    mu = 0.3 * torch.randn(3, SIZE, SIZE, generator=g, dtype=torch.float64)
    prior = GaussianPrior(mu, torch.ones_like(mu))
    op = make_operator(task, SIZE, channels=3, **options).to("cpu", torch.float64)
    solver = PiGDM(prior, op, steps=10)
    y = op.observe(draw(prior, batch=2), sigma_y, torch.Generator().manual_seed(1))
    meas = solver.measure(y, sigma_y)
    n = op.n
    H = op.H(torch.eye(n, dtype=torch.float64).view(n, *op.image_shape)).T  # (m, n)
    s0 = 2 * sigma_y
    for t in (900, 500, 100):
        a = solver.schedule.alpha_bar(t)
        x_t = torch.randn(2, *op.image_shape, generator=g, dtype=torch.float64)
        guidance, x0_hat = solver.guidance(x_t, t, meas)
        cov = (1 - a) * H @ H.T + s0**2 * torch.eye(H.shape[0], dtype=torch.float64)
        residual = y - x0_hat.flatten(1) @ H.T
        score = a**0.5 * torch.linalg.solve(cov, residual.T).T @ H  # J = sqrt(a) I for a unit-variance prior
        torch.testing.assert_close(guidance.flatten(1), (1 - a) * score, atol=1e-6, rtol=1e-5)


def test_outer_floor_keeps_the_last_outer_time_above_the_measurement_noise():
    prior = gaussian()
    op = operator("deno")
    plain = Nested(DDRM(prior, op), 4, 5)
    assert plain.outer == [950, 534, 238, 59]  # power 2, as fitted to no noise
    floored = Nested(DDRM(prior, op), 4, 5, sigma_y=0.1)
    t_floor = floored.floor_time(0.1)
    assert floored.schedule.sigma(t_floor) >= 4 * 0.2 > floored.schedule.sigma(t_floor - 1)
    # [0, 950] mapped onto [t_floor, 950]: the first time stays, the spacing keeps its shape
    assert floored.outer == [round(t_floor + t * (950 - t_floor) / 950) for t in plain.outer]
    assert floored.outer[0] == 950 and floored.outer[-1] == 263 > t_floor == 218 and floored.inner[-1][0] == floored.outer[-1]
    assert floored.nfe_total == 20 and len(floored.times) == 21
    # no noise, a floor of 0, or explicit times: the grid as asked
    assert Nested(DDRM(prior, op), 4, 5, sigma_y=0.0).outer == plain.outer
    assert Nested(DDRM(prior, op), 4, 5, outer_floor=0.0, sigma_y=0.1).outer == plain.outer
    assert Nested(DDRM(prior, op), 4, 5, outer_times=[950, 534, 238, 59], sigma_y=0.1).outer == plain.outer
    assert Nested(DDRM(prior, op), 4, 5, outer_times="cosine", sigma_y=0.1).outer[-1] == 364  # above 218 already
    assert Nested(DDRM(prior, op), 4, 5, outer_times="cosine", sigma_y=0.25).outer[-1] > 364
    # a grid already above the floor is kept (the paper's even grid at sigma_y 0.05: 238 > t_floor)
    assert Nested(DDRM(prior, op), 4, 5, outer_power=1.0, sigma_y=0.05).outer == [950, 712, 475, 238]
    # not given beforehand: fitted to the sigma_y a run brings, the same as given
    y = op.observe(draw(prior, batch=1), 0.1, torch.Generator().manual_seed(0))
    late = Nested(DDRM(prior, op), 4, 5)
    assert torch.allclose(late.restore(y, 0.1, make_generators([3])),
                          floored.restore(y, 0.1, make_generators([3])), atol=1e-12)
    assert late.outer == floored.outer
    with pytest.raises(ValueError, match="outer_floor"):
        Nested(DDRM(prior, op), 4, 5, outer_floor=-1.0)


@pytest.mark.parametrize("name", ["ddrm", "ddnm"])
def test_outer_floor_makes_the_last_step_the_best_for_noisy_denoising(name):
    """The exact Gaussian prior, denoising at sigma_y 0.1, 4 x 5 calls, the MSE over 400 draws of
    (x0, noise): on the power-2 grid the last inner run starts at t = 59, where the forward noise is
    the measurement's, hardly uses y and re-samples the previous estimate: its MSE rises (DDRM
    0.027 -> 0.036). With the floor every outer step lowers the MSE, and the final is the best."""
    prior = gaussian()
    op = operator("deno")
    x = draw(prior, batch=400, seed=3)
    y = op.observe(x, 0.1, torch.Generator().manual_seed(0))

    def mse(floor: float) -> list[float]:
        nested = Nested(make(name, prior, op), 4, 5, outer_floor=floor)
        return [((r.x0 - x) ** 2).mean().item() for r in nested.sample(y, 0.1, make_generators(list(range(400))))
                if r.kind == "outer"]

    floored, grid = mse(4.0), mse(0.0)
    assert all(later < earlier for earlier, later in zip(floored, floored[1:]))
    if name == "ddrm":  # the case, on the exact prior; DDNM's last step rises too, less (0.0268 -> 0.0275)
        assert grid[-1] > 1.2 * grid[-2] and floored[-1] < grid[-1]
    else:
        assert grid[-1] > grid[-2]
