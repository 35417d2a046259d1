"""How many operators a solver launches per network call, outside the network:
`python scripts/bench.py kernels`.

    python scripts/bench.py kernels [--tasks inp_box,sr4,deblur_gauss] [--size 64] [--sigma-y 0.05]

On a GPU each operator is at least one kernel launch, and at batch 1 a launch costs about as much
as the work of a small element-wise kernel, so the solver's share of a call is set by how many
operators it launches. The network is replaced by a function of the same shapes whose work is
marked (torch.profiler's record_function), and every top-level aten operator of a whole
restoration that runs outside that mark is counted (an operator called by another operator is
its parent's, as one launch sequence), then divided by the network calls. Counted on the CPU
(the operators, and so the launches, are the same on CUDA), for DDRM, DDNM, DiffPIR and Nested
DDRM 4 x 5, each with 20 calls.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from degradations import make_operator
from restore.models.prior import celebahq_schedule
from solvers import DDNM, DDRM, DiffPIR, NestedDDRM, make_generators

NETWORK = "network call"
SOLVERS = {"DDRM": lambda p, op: DDRM(p, op, steps=20), "DDNM": lambda p, op: DDNM(p, op, steps=20),
           "DiffPIR": lambda p, op: DiffPIR(p, op, steps=20),
           "Nested DDRM 4x5": lambda p, op: NestedDDRM(p, op, outer_steps=4, inner_steps=5)}


class MarkedPrior:
    """eps = x_t / 2, its operators marked as the network's."""

    def __init__(self):
        self.alphas_cumprod, self.calls = celebahq_schedule(), 0

    def __call__(self, x_t, t):
        self.calls += 1
        with record_function(NETWORK):
            return x_t * 0.5


def count(task: str, size: int, sigma_y: float, make) -> tuple[float, Counter]:
    """(operators per network call outside the network, their names' counts) of one restoration."""
    operator = make_operator(task, size)
    x = torch.rand(1, 3, size, size) * 2 - 1
    y = operator.observe(x, sigma_y, make_generators([0]))
    prior = MarkedPrior()
    solver = make(prior, operator)
    solver.restore(y, sigma_y, make_generators([1]))  # warm-up: cached plans, lazy buffers
    prior.calls = 0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        solver.restore(y, sigma_y, make_generators([1]))
    names: Counter = Counter()
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        parent, inside = event.cpu_parent, False
        while parent is not None:
            if parent.name == NETWORK or parent.name.startswith("aten::"):
                inside = True
                break
            parent = parent.cpu_parent
        if not inside:
            names[event.name] += 1
    return sum(names.values()) / prior.calls, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py kernels", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="inp_box,sr4,deblur_gauss")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--sigma-y", type=float, default=0.05)
    parser.add_argument("--top", type=int, default=0, help="also the most launched operators of each")
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    print(f"operators launched per network call outside the network ({args.size}x{args.size}, "
          f"sigma_y {args.sigma_y}, 20 calls)\n")
    print("| solver | " + " | ".join(tasks) + " |")
    print("| --- |" + " --- |" * len(tasks))
    for name, make in SOLVERS.items():
        cells, tops = [], []
        for task in tasks:
            per_call, names = count(task, args.size, args.sigma_y, make)
            cells.append(f"{per_call:.1f}")
            tops.append((task, names.most_common(args.top)))
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        for task, top in tops if args.top else ():
            print(f"    {task}: " + ", ".join(f"{n.removeprefix('aten::')} {c}" for n, c in top))
    return 0
