"""Samplers for linear inverse problems with a pretrained DDPM prior: DDRM, DDNM, DiffPIR, DPS
and PiGDM, `Nested` (Nested Diffusion around any of them, NestedDDRM = Nested(DDRM)), and `Run`,
which advances any of them one anytime step at a time (candidates, steering, saving)."""

from degradations.noise import make_generators, randn
from solvers.base import Sampler
from solvers.ddnm import DDNM
from solvers.ddrm import DDRM
from solvers.diffpir import DiffPIR
from solvers.dps import DPS
from solvers.nested import Nested, NestedDDRM
from solvers.pigdm import PiGDM
from solvers.records import Prior, Record
from solvers.run import Run
from solvers.step import StepSolver

#: the inner solvers by command-line name
SOLVERS = {"ddrm": DDRM, "ddnm": DDNM, "diffpir": DiffPIR, "dps": DPS, "pigdm": PiGDM}

__all__ = ["DDNM", "DDRM", "DPS", "DiffPIR", "Nested", "NestedDDRM", "PiGDM", "Prior", "Record", "Run",
           "SOLVERS", "Sampler", "StepSolver", "make_generators", "randn"]
