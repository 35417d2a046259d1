"""Restoration front end: priors, image I/O, metrics, the one-call `restore_image` API and its
stepwise form `Restoration`.

`restore_image`, `RestoreResult`, `Restoration`, `prepare_job` and `Settings` are imported on
first use (PEP 562), so `import restore` stays light."""

from restore.prior import load_prior

__all__ = ["load_prior", "restore_image", "RestoreResult", "Restoration", "prepare_job", "Settings"]

_LAZY = {"restore_image": "restore.api", "RestoreResult": "restore.result", "Restoration": "restore.session",
         "prepare_job": "restore.job", "Settings": "restore.settings"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'restore' has no attribute {name!r}")
