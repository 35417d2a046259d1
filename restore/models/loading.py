"""A run's network: the prior its settings name, loaded quietly on its device, at its precision."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch

from restore.errors import UsageError
from restore.models.prior import load_prior
from restore.settings.build import resolve_device
from restore.settings.model_spec import resolve_model
from restore.settings.schema import Settings


@contextlib.contextmanager
def quiet_loading():
    """Silence diffusers' / huggingface_hub's log lines while a model loads (the user's one-line
    errors come from PriorNotFound)."""
    import logging

    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub.utils import logging as hub_logging

    diffusers_logging.get_logger()  # configure the libraries' root loggers now, not while loading
    hub_logging.get_logger()
    loggers = [logging.getLogger(n) for n in ("diffusers", "huggingface_hub")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def load_model(model: Any, settings: Settings, device: str | torch.device, note) -> tuple[Any, str, torch.device]:
    """(prior, model spec, device). `model`: a loaded prior (anything with `alphas_cumprod`; its
    own device is used) or None (then settings.model, resolved and loaded on `device`)."""
    if model is not None:
        if not hasattr(model, "alphas_cumprod"):
            raise UsageError(f"model must be a name, path or a loaded prior, got {type(model).__name__}")
        dev = torch.device(model.device) if getattr(model, "device", None) is not None else resolve_device(device)
        return model, str(getattr(model, "name", type(model).__name__)), dev
    dev = resolve_device(device)
    spec = resolve_model(settings.model, note=note)
    with quiet_loading():
        prior = load_prior(spec, device=dev)
    return prior, spec, dev


def configure(prior: Any, settings: Settings, note) -> Any:
    """The prior running at settings.precision, compiled with settings.compile
    (restore.models.precision); as is at the defaults. Its warnings (bf16 on a CPU without bf16
    units) become notes."""
    if settings.precision == "fp32" and not settings.compile:
        return prior
    from restore.models.precision import configure_network

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            net = configure_network(prior, settings.precision, settings.compile)
        except ValueError as error:
            raise UsageError(str(error).splitlines()[0]) from None
    for w in caught:
        note(" ".join(str(w.message).split()))
    return net
