"""The priors shipped with the package (restore.paths.MODELS_DIR, diffusers folders), named by
their folder: `natural-ddpm`, trained by this project (scripts/train_prior.py), runs offline."""

from __future__ import annotations

from pathlib import Path

from restore.errors import PriorNotFound
from restore.models.families.diffusers import load_diffusers
from restore.models.family import ModelFamily, ShortName, Spec
from restore.paths import MODELS_DIR
from restore.settings.model_spec import BUNDLED


def _recognises(spec: Spec) -> bool:
    """A bare name (no folder part) of a folder in MODELS_DIR."""
    return Path(spec.text).name == spec.text and (MODELS_DIR / spec.text).is_dir()


def _load(spec: Spec):
    folder = MODELS_DIR / spec.text
    if not (folder / "config.json").exists():
        raise PriorNotFound(f"bundled prior {spec.text!r} is missing from {folder}; reinstall the project")
    return load_diffusers(str(folder), spec.text)  # trained on random crops: restores at any size


FAMILY = ModelFamily(
    name="bundled",
    title="the bundled prior, in the package",
    accepts="",
    prediction="epsilon (its scheduler config)",
    schedule="linear 1e-4 .. 0.02, T = 1000 (its scheduler config)",
    recognises=_recognises,
    load=_load,
    short_names={BUNDLED: ShortName(str(MODELS_DIR / BUNDLED), "a 10.0M-parameter DDPM trained by this project "
                                    "on 23 non-face photos, in the package, offline")},
    order=0,
)
