"""Samplers for linear inverse problems with a pretrained DDPM prior: DDRM, DDNM, DiffPIR, DPS,
PiGDM, DAPS and RED-diff, `Nested` (Nested Diffusion around any of them, NestedDDRM = Nested(DDRM)), and `Run`,
which advances any of them one anytime step at a time (candidates, steering, saving).

Each solver declares itself (solvers.options.declare); `solvers.registry` lists them, and
`SOLVERS` maps each name to its class."""

from degradations.noise import make_generators, randn
from solvers.ddrm import DDRM  # noqa: I001 - first: the declarations' order is the menus' (DDRM, DDNM, ...)
from solvers.base import Sampler
from solvers.daps import DAPS
from solvers.ddnm import DDNM
from solvers.diffpir import DiffPIR
from solvers.dps import DPS
from solvers.nested import Nested, NestedDDRM
from solvers.pigdm import PiGDM
from solvers.reddiff import REDDiff
from solvers.records import Prior, Record
from solvers.registry import solver_names, solvers
from solvers.run import Run
from solvers.step import StepSolver

#: the inner solvers by command-line name (every declared one; solvers.registry)
SOLVERS = {name: spec.cls for name, spec in solvers().items()}

__all__ = ["DAPS", "DDNM", "DDRM", "DPS", "DiffPIR", "Nested", "NestedDDRM", "PiGDM", "Prior", "REDDiff", "Record", "Run",
           "SOLVERS", "Sampler", "StepSolver", "make_generators", "randn", "solver_names", "solvers"]
