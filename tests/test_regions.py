"""Choice by region (solvers.regions, Run.choose_regions) on the exact Gaussian prior: the weights,
the composite's noise level at its time (inside the feathered edge too, for independent and for
correlated candidates), a full region equal to a whole choice, reproduction and resume."""

from __future__ import annotations

import torch
from gaussian_prior import GaussianPrior

from degradations import make_operator
from solvers import NestedDDRM, Run, make_generators
from solvers.regions import compose, feathered, region_weights

C, S = 3, 24


def prior() -> GaussianPrior:
    g = torch.Generator().manual_seed(0)
    return GaussianPrior(0.3 * torch.randn(C, S, S, generator=g, dtype=torch.float64),
                         0.2 + 0.3 * torch.rand(C, S, S, generator=g, dtype=torch.float64))


def setup(images: int, candidates: int = 2, task: str = "inp_box", device="cpu"):
    p = prior()
    op = make_operator(task, S, channels=C)
    solver = NestedDDRM(p, op, outer_steps=3, inner_steps=2)
    g = torch.Generator().manual_seed(1)
    x = p.mu + p.std * torch.randn(C, S, S, generator=g, dtype=torch.float64)
    y = op.H(x[None].to(torch.float64)).expand(images, -1).contiguous()
    seeds = list(range(100, 100 + images * candidates))
    op.to(device)
    return solver, y.to(device), seeds


def left_half() -> torch.Tensor:
    mask = torch.zeros(S, S, dtype=torch.bool)
    mask[:, : S // 2] = True
    return mask


def test_feathered_is_exact_away_from_the_edge_and_monotone_across_it():
    m = feathered(left_half(), 2.0)
    assert torch.equal(m[:, :5], torch.ones(S, 5)) and torch.equal(m[:, -5:], torch.zeros(S, 5))
    row = m[0]
    assert bool((row[1:] <= row[:-1]).all()) and 0.3 < float(row[S // 2]) < 0.7
    assert torch.equal(feathered(left_half(), 0), left_half().float())


def test_weights_sum_to_one_later_regions_cover_earlier_and_rest_none_keeps_its_own():
    top = torch.zeros(S, S, dtype=torch.bool)
    top[: S // 2] = True
    w = region_weights([(1, left_half()), (2, top)], rest=0, candidates=3, feather=1.5)
    assert w.shape == (3, 3, S, S)
    torch.testing.assert_close(w.sum(1), torch.ones(3, S, S))
    assert float(w[0, 2, 0, 0]) == 1.0  # top-left: the later region (candidate 2) wins
    assert float(w[0, 1, -1, 0]) == 1.0 and float(w[0, 0, -1, -1]) == 1.0
    own = region_weights([(1, left_half())], rest=None, candidates=3, feather=1.5)
    for r in range(3):
        assert float(own[r, r, 0, -1]) == 1.0  # outside the region: each row its own candidate
        assert float(own[r, 1, 0, 0]) == 1.0


def _residual(x, x0, a):
    return (x - a**0.5 * x0) / (1 - a) ** 0.5


def _check_noise_level(run: Run, images: int, feather: float) -> None:
    """Every image: candidate 1 left, candidate 0 right. The composite's noise (the state minus
    sqrt(a) times the blended clean estimate) must have, per column, the mean and variance of the
    candidates' own noise there, inside the feathered band too; the plain blend of the states
    must not (so the check can fail)."""
    a = run.solver.schedule.alpha_bar(run.solver.state_time(run.index))
    x, x0 = run.x.clone(), run.latest.x0.clone()
    w = region_weights([(1, left_half())], 0, 2, feather)[0].to(x)  # (2, S, S), same for both rows
    eps = _residual(x, x0, a).view(images, 2, C, S, S)
    own = (w[None, :, None] * eps.square()).sum(1).mean(dim=(0, 1, 2))  # per column
    for b in range(images):
        run.choose_regions([(1, left_half())], rest=0, image=b, feather=feather)
    blend_x0 = (w[None, :, None] * x0.view(images, 2, C, S, S)).sum(1)
    comp = _residual(run.x.view(images, 2, C, S, S)[:, 0], blend_x0, a)
    naive = _residual((w[None, :, None] * x.view(images, 2, C, S, S)).sum(1), blend_x0, a)
    torch.testing.assert_close(run.x.view(images, 2, C, S, S)[:, 0], run.x.view(images, 2, C, S, S)[:, 1])
    band = slice(S // 2 - 4, S // 2 + 4)
    ratio = comp.square().mean(dim=(0, 1, 2)) / own
    assert float((ratio - 1).abs().max()) < 0.12, ratio
    assert float(comp.mean(dim=(0, 1, 2)).abs().max()) < 0.1 * float(own.sqrt().min())
    weak = naive.square().mean(dim=(0, 1, 2))[band] / own[band]
    return ratio, weak


def test_the_composite_keeps_the_noise_level_of_its_time_for_independent_candidates():
    images = 150
    solver, y, seeds = setup(images)
    run = Run(solver, y, 0.05, make_generators(seeds), candidates=2)
    run.step()
    ratio, weak = _check_noise_level(run, images, feather=2.0)
    assert float(weak.min()) < 0.7  # the plain blend loses about half the variance midway


def test_the_composite_keeps_the_noise_level_for_correlated_candidates():
    """After a whole choice the candidates share x_t, so their next noises are correlated: the
    renormalisation must use their covariance, not assume independence."""
    images = 150
    solver, y, seeds = setup(images)
    run = Run(solver, y, 0.05, make_generators(seeds), candidates=2)
    run.step()
    for b in range(images):
        run.choose(0, image=b)
    run.step()
    _check_noise_level(run, images, feather=2.0)


def test_a_region_over_everything_is_a_whole_choice():
    solver, y, seeds = setup(1, candidates=3)
    runs = [Run(solver, y, 0.05, make_generators(seeds), candidates=3) for _ in range(2)]
    for run in runs:
        run.step()
    runs[0].choose(2)
    runs[1].choose_regions([(2, torch.ones(S, S, dtype=torch.bool))], rest=0)
    torch.testing.assert_close(runs[1].x, runs[0].x, rtol=0, atol=1e-12)
    for run in runs:
        while not run.done:
            run.step()
    torch.testing.assert_close(runs[1].latest.x0, runs[0].latest.x0, rtol=0, atol=1e-10)
    assert runs[1].lead() == runs[0].lead() == 2 and runs[1].events == runs[0].events  # recorded as the choice
    again, ref = (Run(solver, y, 0.05, make_generators(seeds), candidates=3) for _ in range(2))
    again.step(), ref.step()
    ref.choose(2)
    again.choose_regions([(2, torch.ones(S, S, dtype=torch.bool))])  # no rest: still one candidate everywhere
    torch.testing.assert_close(again.x, ref.x, rtol=0, atol=0)
    assert again.events == ref.events == [{"after_step": 1, "image": 0, "choose": 2}]


def test_seed_and_choices_reproduce_and_a_saved_run_resumes_as_uninterrupted(device):
    solver, y, seeds = setup(1, candidates=3, device=device)

    def steered(stop_after_choice: bool):
        run = Run(solver, y, 0.05, make_generators(seeds, device), candidates=3)
        run.step()
        run.choose_regions([(1, left_half().to(device)), (2, torch.eye(S, dtype=torch.bool, device=device))],
                           rest=None, feather=1.0)
        if stop_after_choice:
            state = torch.load(_saved(run.state_dict()), weights_only=True)
            run = Run.from_state(solver, state, device)
        while not run.done:
            run.step()
        return run

    a, b, c = steered(False), steered(False), steered(True)
    assert torch.equal(a.latest.x0, b.latest.x0)
    torch.testing.assert_close(c.latest.x0, a.latest.x0, rtol=0, atol=1e-12)
    event = c.events[0]
    assert event["rest"] is None and [k for k, _ in event["regions"]] == [1, 2]
    assert torch.equal(event["regions"][0][1].cpu(), left_half())


def _saved(state):
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return buf


def test_refused_region_choices():
    solver, y, seeds = setup(1)
    run = Run(solver, y, 0.05, make_generators(seeds), candidates=2)
    for bad, why in (([(0, left_half())], "make a step first"),):
        try:
            run.choose_regions(bad)
        except ValueError as error:
            assert why in str(error)
        else:
            raise AssertionError("accepted before the first step")
    run.step()
    for regions, rest, why in (([(5, left_half())], 0, "not in the run"),
                               ([(1, torch.ones(4, 4))], 0, "must be 24x24"),
                               ([], 0, "at least one region")):
        try:
            run.choose_regions(regions, rest)
        except ValueError as error:
            assert why in str(error), error
        else:
            raise AssertionError(f"accepted {why}")


def test_a_second_steering_after_the_same_step_is_refused():
    solver, y, seeds = setup(1)
    run = Run(solver, y, 0.05, make_generators(seeds), candidates=2)
    run.step()
    run.choose(1)
    try:
        run.choose_regions([(0, left_half())], rest=1)
    except ValueError as error:
        assert "already steered" in str(error)
    else:
        raise AssertionError("a region choice after a whole choice at the same step was accepted")
    run.step()
    run.choose_regions([(0, left_half())], rest=1)  # the next step may be steered again


def test_compose_with_one_candidate_everywhere_returns_its_state():
    g = torch.Generator().manual_seed(3)
    x, x0 = torch.randn(2, C, S, S, generator=g), torch.randn(2, C, S, S, generator=g)
    w = torch.zeros(1, 2, S, S)
    w[0, 1] = 1
    assert torch.equal(compose(x, x0, 0.3, w)[0], x[1])
