"""Restoration front end: priors, image I/O, metrics and the one-call `restore_image` API.

`restore_image`, `RestoreResult` and `Settings` are imported on first use (PEP 562), so
`import restore` stays light."""

from restore.prior import load_prior

__all__ = ["load_prior", "restore_image", "RestoreResult", "Settings"]


def __getattr__(name):
    if name in ("restore_image", "RestoreResult"):
        from restore import api

        return getattr(api, name)
    if name == "Settings":
        from restore.settings import Settings

        return Settings
    raise AttributeError(f"module 'restore' has no attribute {name!r}")
