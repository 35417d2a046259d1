"""Samplers for linear inverse problems with a pretrained DDPM prior: DDRM and Nested DDRM."""

from solvers.base import Prior, Record, Sampler
from solvers.ddrm import DDRM
from solvers.nested import NestedDDRM
from solvers.noise import make_generators, randn

__all__ = ["DDRM", "NestedDDRM", "Prior", "Record", "Sampler", "make_generators", "randn"]
