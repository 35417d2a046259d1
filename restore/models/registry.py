"""The model families (one file each in restore/models/families/) and what derives from them:
`load_prior`, the short names, the `--model` help.

A spec resolves in this order: a short name of any family (`natural-ddpm`, `celebahq`, `ffhq`,
`imagenet256`, ...) goes to the family that declares it; otherwise the families are asked in
their `order` whether the spec is theirs (a bundled folder's name, a checkpoint file by its keys,
a diffusers folder, a model id). A file no family claims and a path that does not exist are
refused in one line that lists what would do.

Which model a run uses when none is named (CelebA-HQ when cached, else the bundled prior) stays
in restore.settings.model_spec, the layer below this one.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import torch

from restore.errors import PriorNotFound
from restore.models import families as _families_package
from restore.models.family import CHECKPOINT_SUFFIXES, ModelFamily, ShortName, Spec
from restore.settings.model_spec import BUNDLED


@cache
def families() -> tuple[ModelFamily, ...]:
    """Every module of restore.models.families with a FAMILY, in recognition order."""
    found = []
    for module in pkgutil.iter_modules(_families_package.__path__):
        family = getattr(importlib.import_module(f"{_families_package.__name__}.{module.name}"), "FAMILY", None)
        if isinstance(family, ModelFamily):
            found.append(family)
    names = [n for f in found for n in f.short_names]
    if len(names) != len(set(names)):
        raise RuntimeError(f"two model families declare the same short name: {sorted(names)}")
    return tuple(sorted(found, key=lambda f: (f.order, f.name)))


def short_names() -> dict[str, tuple[ModelFamily, ShortName]]:
    """Every short name -> (its family, its declaration), in recognition order."""
    return {name: (family, short) for family in families() for name, short in family.short_names.items()}


def family_of(spec: str) -> tuple[ModelFamily, Spec]:
    """The family a spec belongs to and the Spec it sees; a one-line PriorNotFound when none."""
    text = str(spec)
    declared = short_names().get(text)
    if declared is not None:
        return declared[0], Spec(text, short=declared[1])
    found = Spec(text)
    for family in families():
        if family.recognises(found):
            return family, found
    if found.is_checkpoint:
        examples = ", ".join(f.example for f in families() if f.example)
        why = found.error or f"its keys ({', '.join(list(found.state or {})[:3])}, ...) match no known layout"
        raise PriorNotFound(f"{found.path}: not an original DDPM checkpoint nor another layout this toolkit loads "
                            f"({why}); give {examples} or a file of their layout")
    raise PriorNotFound(f"model {text!r} not found: give an existing folder or {'/'.join(CHECKPOINT_SUFFIXES)} file, "
                        f"a short name ({', '.join(short_names())}) or a diffusers model id")


def load_prior(spec: str = BUNDLED, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """The prior a spec names (module docstring), on `device` in `dtype`: `prior(x_t, t) -> eps`
    with `alphas_cumprod`, `image_size`, `fixed_size` and `name` (restore.models.wrapper.Prior).
    Local files need no network; published weights are fetched on first use, and without network
    a one-line PriorNotFound says what to download and where."""
    family, found = family_of(spec)
    prior = family.load(found)
    return prior.to(device=device, dtype=dtype) if dtype != torch.float32 else prior.to(device)


def model_help() -> str:
    """The `--model` help line, from the families' declarations."""
    accepts = [f.accepts for f in families() if f.accepts]
    return (f"a short name ({', '.join(short_names())}), {', '.join(accepts[:-1])} or {accepts[-1]} "
            "(default: celebahq if cached locally, else the bundled prior; docs/tasks-and-models.md)")
