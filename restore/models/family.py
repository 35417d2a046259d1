"""What a model family declares (`ModelFamily`), the short names it answers to (`ShortName`), the
`--model` spec as the families see it (`Spec`), and fetching published weights on first use.

A family is one file in restore/models/families/ holding `FAMILY = ModelFamily(...)`: its name,
how a spec is recognised, how it loads (network, schedule, prediction type), its short names and,
for each, what to download and where. restore.models.registry finds the files, so adding a family
is that file and its test; `load_prior`, the `--model` help and the docs' checks derive from them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import torch

from restore.errors import PriorNotFound, one_line

#: the file suffixes read as checkpoints (torch.load with weights_only=True: a file runs no code)
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


@dataclass(frozen=True)
class ShortName:
    """A name a family answers to. source: what it stands for (a bundled folder, a model id, or
    the URL its weights are downloaded from); title: one line for the help and the docs.
    URL downloads also give filename (kept as weights_dir() / filename), size (said before the
    download and in the offline line) and architecture (what the file's shapes must give)."""

    source: str
    title: str
    filename: str = ""
    size: str = ""
    architecture: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFamily:
    """One family of models. recognises(spec) -> bool: whether a spec that is none of the short
    names is one of this family's (tried in `order`, lowest first); load(spec) -> Prior: the
    network on the CPU in float32, with its schedule and prediction type. accepts: what a person
    may give, for the `--model` help; prediction and schedule: what the loaded prior predicts and
    where its schedule comes from, for the docs."""

    name: str
    title: str
    accepts: str
    prediction: str
    schedule: str
    recognises: Callable[[Spec], bool]
    load: Callable[[Spec], Any]
    short_names: dict[str, ShortName] = field(default_factory=dict)
    order: int = 50
    #: file families: an example file, for the line that refuses an unknown file
    example: str = ""


class Spec:
    """A `--model` value as the families see it: its text, the path it names, the short name it
    is (if any), and for a checkpoint file its state dict, read once (memory-mapped) and shared."""

    def __init__(self, text: str, short: ShortName | None = None, path: Path | None = None):
        self.text, self.short = str(text), short
        self.path = path if path is not None else Path(os.path.expanduser(self.text))
        self.error = ""

    @property
    def is_checkpoint(self) -> bool:
        return self.path.suffix in CHECKPOINT_SUFFIXES and self.path.is_file()

    @cached_property
    def state(self) -> dict[str, torch.Tensor] | None:
        """The file's state dict (under a 'state_dict' / 'model' / 'ema' key or a DataParallel
        'module.' prefix too), or None when it is not a checkpoint (the reason in `error`)."""
        if not self.is_checkpoint:
            return None
        try:
            try:
                state = torch.load(self.path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
                state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - unpickling, a truncated file: the reason is kept
            self.error = one_line(error)[:160]
            return None
        for wrapper in ("state_dict", "model", "ema"):
            if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
                state = state[wrapper]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            self.error = "it holds no state dict of tensors"
            return None
        return {str(k).removeprefix("module."): v for k, v in state.items()}

    def __repr__(self) -> str:
        return f"Spec({self.text!r})"


def weights_dir() -> Path:
    """Where downloaded weights are kept: torch.hub's checkpoints folder ($TORCH_HOME/hub/
    checkpoints, default ~/.cache/torch/hub/checkpoints), where deepinv keeps the same files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def fetch(name: str, short: ShortName) -> Path:
    """The local file of a short name's weights: weights_dir() / filename, downloaded on first use
    with a progress bar (written whole or not at all). Without network, a one-line PriorNotFound
    says what to download and where to put it."""
    path = weights_dir() / short.filename
    if path.is_file():
        return path
    advice = f"download {short.source} ({short.size}) and save it as {path}, or pass --model path/to/{short.filename}"
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):  # the person said: no network
        raise PriorNotFound(f"model {name!r}: its weights are not in {path.parent} and HF_HUB_OFFLINE is set; {advice}")
    print(f"note: downloading the weights of model {name!r} ({short.size}) from {short.source} to {path}",
          file=sys.stderr)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(short.source, str(path), progress=True)  # a temporary file, moved when whole
    except Exception as error:  # noqa: BLE001 - no network, refused, a full disk: all end here
        raise PriorNotFound(f"model {name!r}: cannot download its weights ({one_line(error)[:100]}); {advice}") from None
    return path
