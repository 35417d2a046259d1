"""Every solver, plain and nested, under the grad modes researchers wrap sampling in: the default,
torch.no_grad() and torch.inference_mode() give the same restoration (float tolerance), for every
declared solver (solvers.registry, so a new one is covered by adding it), on an operator with an
SVD and, for those that need only H and H^T, on one without; then through a real network (a
tiny diffusers U-Net) under inference_mode, and a run stopped and resumed inside it."""

from __future__ import annotations

import pytest
import torch
from gaussian_prior import GaussianPrior

from degradations import LinearOperator, make_operator
from solvers import Nested, Run, make_generators
from solvers.registry import solvers

SIZE = 8
MODES = {"default": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


class ThroughHOnly(LinearOperator):
    def __init__(self, op):
        self.op = op
        self.channels, self.height, self.width = op.image_shape
        self.measurement_shape = op.measurement_shape

    def H(self, x):
        return self.op.H(x)

    def Ht(self, y):
        return self.op.Ht(y)


def problem(task: str = "sr2", sigma_y: float = 0.05):
    g = torch.Generator().manual_seed(0)
    prior = GaussianPrior(0.3 * torch.randn(3, SIZE, SIZE, generator=g), 0.1 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g))
    op = make_operator(task, SIZE)
    x = prior.mu + prior.std * torch.randn(2, 3, SIZE, SIZE, generator=g)
    return prior, op, op.observe(x, sigma_y, make_generators([3, 4]))


def restore_under(mode: str, make, prior, op, y, sigma_y: float) -> list[torch.Tensor]:
    with MODES[mode]():
        return [r.x0.clone() for r in make(prior, op).sample(y, sigma_y, make_generators([5, 6]))]


def makers():
    for name, spec in solvers().items():
        yield pytest.param(lambda p, op, spec=spec: spec.build(p, op, steps=5), id=name)
        yield pytest.param(lambda p, op, spec=spec: Nested(spec.build(p, op, steps=1), 2, 3), id=f"nested-{name}")


@pytest.mark.parametrize("make", list(makers()))
@pytest.mark.parametrize("task", ["sr2", "deblur_gauss"])
def test_every_solver_gives_the_same_result_in_every_grad_mode(make, task):
    prior, op, y = problem(task)
    expected = restore_under("default", make, prior, op, y, 0.05)
    for mode in ("no_grad", "inference_mode"):
        got = restore_under(mode, make, prior, op, y, 0.05)
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", [n for n, s in solvers().items() if not s.needs_svd])
def test_solvers_through_h_and_ht_alone_run_in_inference_mode(name):
    prior, op, y = problem("inp_box")
    spec = solvers()[name]
    expected = restore_under("default", lambda p, o: spec.build(p, ThroughHOnly(o), steps=4), prior, op, y, 0.05)
    got = restore_under("inference_mode", lambda p, o: spec.build(p, ThroughHOnly(o), steps=4), prior, op, y, 0.05)
    torch.testing.assert_close(got[-1], expected[-1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("solver", ["nested", "dps", "pigdm", "diffpir"])
def test_a_real_network_in_inference_mode_and_a_run_resumed_inside_it(tiny_model_dir, solver):
    """The tiny U-Net through the toolkit's prior wrapper (restore.models), built outside and run
    inside torch.inference_mode(), against the default mode; a run saved after its first step
    inside inference_mode and resumed there ends as the uninterrupted one."""
    from restore.models.prior import load_prior
    from restore.settings.build import build_solver
    from restore.settings.compose import compose

    prior = load_prior(str(tiny_model_dir), "cpu")
    settings = compose({"task": "sr4", "solver": solver, "model": str(tiny_model_dir), "steps": 4, "outer": 2,
                        "inner": 2, "sigma_y": 0.05}, config="none")
    op = make_operator("sr4", 32)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    y = op.observe(x, 0.05, make_generators([2]))
    expected = build_solver(settings, prior, op).restore(y, 0.05, make_generators([7]))
    with torch.inference_mode():
        got = build_solver(settings, prior, op).restore(y, 0.05, make_generators([7]))
        run = Run(build_solver(settings, prior, op), y, 0.05, make_generators([7]))
        run.step()
        resumed = Run.from_state(build_solver(settings, prior, op), run.state_dict())
        while not resumed.done:
            resumed.step()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(resumed.latest.x0, expected, rtol=0, atol=1e-4)
