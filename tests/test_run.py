"""solvers.Run, the stepwise engine: candidates, choose / drop, stopping mid-step, save and resume,
on the exact Gaussian prior."""

from __future__ import annotations

import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import make_operator
from solvers import DDRM, NestedDDRM, Run, make_generators

SIZE = 8
SIGMA_Y = 0.05


class CountingPrior(GaussianPrior):
    """Records the batch size of every network call."""

    def __init__(self, *args):
        super().__init__(*args)
        self.batches = []

    def __call__(self, x_t, t):
        self.batches.append(x_t.shape[0])
        return super().__call__(x_t, t)


def setup(task="sr2", images=1, device="cpu"):
    """The prior, the operator on `device` and a measurement there (drawn on the CPU)."""
    g = torch.Generator().manual_seed(0)
    mu = 0.3 * torch.randn(3, SIZE, SIZE, generator=g, dtype=torch.float64)
    std = 0.1 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g, dtype=torch.float64)
    prior = CountingPrior(mu, std)
    op = make_operator(task, SIZE).to("cpu", torch.float64)
    x = mu + std * torch.randn(images, 3, SIZE, SIZE, generator=g, dtype=torch.float64)
    y = op.observe(x, SIGMA_Y, torch.Generator().manual_seed(1))
    return prior, op.to(device), y.to(device)


SOLVERS = {
    "nested": lambda p, o: NestedDDRM(p, o, outer_steps=3, inner_steps=4),
    "nested-eta": lambda p, o: NestedDDRM(p, o, outer_steps=3, inner_steps=4, outer_eta=0.5),
    "nested-fresh": lambda p, o: NestedDDRM(p, o, outer_steps=3, inner_steps=4, outer_times="cosine", outer_noise=1.0,
                                            inner_power=0.5),
    "ddrm": lambda p, o: DDRM(p, o, steps=5),
}


def finish(run: Run) -> torch.Tensor:
    while not run.done:
        run.step()
    return run.latest.x0


@pytest.mark.parametrize("name", list(SOLVERS))
def test_stepping_to_the_end_is_restore(name, device):
    prior, op, y = setup(device=device)
    solver = SOLVERS[name](prior, op)
    run = Run(solver, y, SIGMA_Y, make_generators([4], device))
    steps = []
    while not run.done:
        records = run.step()
        assert records[-1].anytime and all(not r.anytime for r in records[:-1])
        steps.append(records[-1].nfe)
    assert steps == [solver.calls_before(j + 1) for j in range(solver.anytime_steps)]
    assert run.latest.final and run.nfe == solver.nfe_total
    expected = solver.restore(y, SIGMA_Y, make_generators([4], device))
    assert torch.allclose(run.latest.x0, expected, atol=1e-12)


@pytest.mark.parametrize("name", ["nested", "ddrm"])
def test_a_candidate_equals_its_single_candidate_run(name, device):
    prior, op, y = setup("inp_random", device=device)
    seeds = [10, 11, 12]
    together = finish(Run(SOLVERS[name](prior, op), y, SIGMA_Y, make_generators(seeds, device), candidates=3))
    for k, seed in enumerate(seeds):
        alone = finish(Run(SOLVERS[name](prior, op), y, SIGMA_Y, make_generators([seed], device)))
        assert torch.allclose(together[k : k + 1], alone, atol=1e-10)
    assert not torch.allclose(together[0], together[1])


def test_several_images_with_candidates_are_independent():
    prior, op, y = setup("sr2", images=2)
    gens = make_generators([1, 2, 3, 4])  # image 0: candidates 0, 1; image 1: candidates 0, 1
    run = Run(SOLVERS["nested"](prior, op), y, SIGMA_Y, gens, candidates=2)
    assert run.rows == [(0, 0), (0, 1), (1, 0), (1, 1)]
    out = finish(run)
    alone = finish(Run(SOLVERS["nested"](prior, op), y[1:], SIGMA_Y, make_generators([4])))
    assert torch.allclose(out[3:4], alone, atol=1e-10)


@pytest.mark.parametrize("name", ["nested-eta", "nested-fresh", "ddrm"])
def test_choose_copies_the_chosen_state_then_candidates_differ_again(name):
    prior, op, y = setup("sr4")
    run = Run(SOLVERS[name](prior, op), y, SIGMA_Y, make_generators([5, 6, 7]), candidates=3)
    run.step()
    chosen = run.x[2].clone()
    run.choose(2)
    for k in range(3):
        assert torch.equal(run.x[k], chosen)
    assert run.events == [{"after_step": 1, "image": 0, "choose": 2}]
    assert run.lead() == 2
    previews = run.step()[-1].x0
    # each candidate drew its own noise in that step (DDRM's preview is the call's x0 prediction,
    # made before the noise is drawn, so with DDRM the previews part one step later)
    assert not torch.allclose(run.x[0], run.x[1]) and not torch.allclose(run.x[1], run.x[2])
    if name.startswith("nested"):
        assert not torch.allclose(previews[0], previews[1]) and not torch.allclose(previews[1], previews[2])


def test_chosen_candidate_continues_as_it_would_have():
    """The chosen candidate keeps its own state and noise: choosing it changes nothing for it."""
    prior, op, y = setup("sr4")
    solver = SOLVERS["nested-eta"](prior, op)
    run = Run(solver, y, SIGMA_Y, make_generators([5, 6, 7]), candidates=3)
    run.step()
    run.choose(1)
    steered = finish(run)
    free = finish(Run(solver, y, SIGMA_Y, make_generators([5, 6, 7]), candidates=3))
    assert torch.allclose(steered[1], free[1], atol=1e-12)
    assert not torch.allclose(steered[0], free[0])


def test_same_seeds_and_choices_reproduce_the_run():
    prior, op, y = setup("inp_box")
    solver = SOLVERS["nested"](prior, op)

    def steered():
        run = Run(solver, y, SIGMA_Y, make_generators([1, 2, 3, 4]), candidates=4)
        run.step()
        run.choose(3)
        run.drop([0, 2])
        run.step()
        run.choose(1)
        return finish(run), run.events

    (a, events_a), (b, events_b) = steered(), steered()
    assert torch.equal(a, b) and events_a == events_b
    assert [e.get("choose", e.get("drop")) for e in events_a] == [3, [0, 2], 1]


def test_drop_shrinks_the_batch_of_network_calls():
    prior, op, y = setup("sr2")
    solver = SOLVERS["nested"](prior, op)
    run = Run(solver, y, SIGMA_Y, make_generators([1, 2, 3]), candidates=3)
    run.step()
    run.drop([0, 2])
    assert run.alive() == [1] and run.x.shape[0] == 1 and run.latest.x0.shape[0] == 1
    prior.batches.clear()
    out = finish(run)
    assert prior.batches == [1] * (2 * 4)  # two outer steps left, 4 calls each, one row
    free = finish(Run(solver, y, SIGMA_Y, make_generators([1, 2, 3]), candidates=3))
    assert torch.allclose(out, free[1:2], atol=1e-10)  # the survivor is unaffected


@pytest.mark.parametrize("name", ["nested-eta", "nested-fresh", "ddrm"])
@pytest.mark.parametrize("after", [1, 2])
def test_save_load_resume_is_bit_for_bit(name, after, tmp_path, device):
    prior, op, y = setup("deblur_gauss", device=device)
    solver = SOLVERS[name](prior, op)
    uninterrupted = Run(solver, y, SIGMA_Y, make_generators([8, 9], device), candidates=2)
    uninterrupted.step()
    uninterrupted.choose(1)
    expected = finish(uninterrupted)

    run = Run(solver, y, SIGMA_Y, make_generators([8, 9], device), candidates=2)
    run.step()
    run.choose(1)
    for _ in range(after - 1):
        run.step()
    torch.save(run.state_dict(), tmp_path / "run.pt")
    del run
    state = torch.load(tmp_path / "run.pt", weights_only=True)
    resumed = Run.from_state(SOLVERS[name](prior, op), state, device)
    assert resumed.index == after and resumed.events == uninterrupted.events
    assert torch.equal(finish(resumed), expected)
    assert (tmp_path / "run.pt").stat().st_size < 64 * 1024


def test_a_stopped_step_leaves_the_run_where_it_was(device):
    prior, op, y = setup("sr2", device=device)
    solver = SOLVERS["nested-eta"](prior, op)
    expected = finish(Run(solver, y, SIGMA_Y, make_generators([3, 4], device), candidates=2))

    run = Run(solver, y, SIGMA_Y, make_generators([3, 4], device), candidates=2)
    run.step()
    x_before = run.x.clone()
    calls = []
    assert run.step(stop=lambda: len(calls) >= 2, on_call=calls.append) is None
    assert len(calls) == 2 and run.index == 1 and torch.equal(run.x, x_before)
    assert torch.equal(finish(run), expected)  # generators rewound too


def test_stop_is_not_asked_at_the_end_of_a_step():
    prior, op, y = setup("sr2")
    run = Run(DDRM(prior, op, steps=3), y, SIGMA_Y, make_generators([3]))
    assert run.step(stop=lambda: True) is not None  # DDRM: every call ends a step
    assert run.index == 1


def test_choose_after_the_last_step_picks_the_result():
    prior, op, y = setup("sr2")
    run = Run(SOLVERS["nested"](prior, op), y, SIGMA_Y, make_generators([1, 2, 3]), candidates=3)
    final = finish(run).clone()
    assert run.lead() == 0
    run.choose(2)
    assert run.lead() == 2 and torch.equal(run.latest.x0, final)
    run.drop([2])
    assert run.lead() == 0  # the pick was dropped: back to the lowest id alive


def test_errors():
    prior, op, y = setup("sr2")
    solver = SOLVERS["ddrm"](prior, op)
    with pytest.raises(ValueError, match="candidates must be >= 1"):
        Run(solver, y, SIGMA_Y, None, candidates=0)
    with pytest.raises(ValueError, match="3 generators for 2 rows"):
        Run(solver, y, SIGMA_Y, make_generators([1, 2, 3]), candidates=2)
    run = Run(solver, y, SIGMA_Y, make_generators([1, 2]), candidates=2)
    with pytest.raises(ValueError, match="candidate 5 of image 0 is not in the run"):
        run.choose(5)
    with pytest.raises(ValueError, match="cannot drop every candidate"):
        run.drop([0, 1])
    with pytest.raises(ValueError, match="made by"):
        Run.from_state(DDRM(prior, op, steps=4), run.state_dict())
    with pytest.raises(ValueError, match="global generator"):
        Run(solver, y, SIGMA_Y, None).state_dict()
    finish(run)
    with pytest.raises(RuntimeError, match="complete"):
        run.step()
