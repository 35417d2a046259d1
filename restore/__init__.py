"""Anytime restoration of one image or a folder: the one-call `restore_image`, its stepwise form
`Restoration`, the typed `Settings`, priors (`load_prior`) and the output folder (`save_result`).

The package is layered; each layer imports only the ones below it:

    errors, paths            the one-line errors; where the shipped data lives
    settings/                what a run is: typed settings, measured configs, the one composition
    models/                  priors, checkpoints, padding and tiling, precision
    io/, quality/            image files and atomic writes; metrics, baselines, plots
    restoration/             one image: inputs, sizing, seeds, the session a person steers, the result
    outputs/                 the folder that fills as a run goes, its figures, resume
    api                      restore_image
    evaluation/              folders of images, sharded over torchrun
    cli/, page/              the commands and the local web page
    training/, studies/, bench/   the bundled prior's training, the studies, the benchmarks

The names below are imported on first use (PEP 562), so `import restore` stays light.
"""

__all__ = ["RegionChoice", "Restoration", "RestoreResult", "Settings", "UsageError", "load_prior", "prepare_job", "restore_image",
           "save_result"]

_LAZY = {"restore_image": "restore.api", "RegionChoice": "restore.restoration.regions", "RestoreResult": "restore.restoration.result",
         "Restoration": "restore.restoration.session", "prepare_job": "restore.restoration.job",
         "Settings": "restore.settings.schema", "load_prior": "restore.models.prior",
         "save_result": "restore.outputs.files", "UsageError": "restore.errors"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'restore' has no attribute {name!r}")
