"""Samplers for linear inverse problems with a pretrained DDPM prior: DDRM and Nested DDRM, and
`Run`, which advances any of them one anytime step at a time (candidates, steering, saving)."""

from solvers.base import Prior, Record, Sampler
from solvers.ddrm import DDRM
from solvers.nested import NestedDDRM
from solvers.noise import make_generators, randn
from solvers.run import Run

__all__ = ["DDRM", "NestedDDRM", "Prior", "Record", "Run", "Sampler", "make_generators", "randn"]
