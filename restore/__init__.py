"""Restoration front end: priors, image I/O, metrics and the one-call `restore_image` API."""

from restore.prior import load_prior

__all__ = ["load_prior"]
