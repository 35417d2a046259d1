"""Resuming a stopped run from its folder: reading its state.pt back, and checking that what the
caller gives (settings, input, reference, mode) agrees with the saved run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from restore.errors import UsageError, one_line
from restore.restoration.job import fingerprint
from restore.settings.schema import Settings

STATE_FILE = "state.pt"


def load_state(folder: str | Path) -> dict[str, Any]:
    """The saved state of an interrupted run in `folder` (UsageError in one line when none)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--resume {folder}: no such folder")
    path = folder / STATE_FILE
    if not path.is_file():
        status = _status(folder)
        if status == "complete":
            raise UsageError(f"--resume {folder}: that run is complete; there is nothing to resume")
        raise UsageError(f"--resume {folder}: no saved state ({STATE_FILE}) there; only a run of restore.py "
                         "stopped after its first result can be resumed")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state["identity"], state["run"]  # noqa: B018 - the keys a resume needs
    except Exception as error:  # noqa: BLE001 - torch / pickle errors of a damaged file
        raise UsageError(f"--resume {folder}: {STATE_FILE} is unreadable ({one_line(error)[:120]})") from None
    return state


def _status(folder: Path) -> str | None:
    try:
        return json.loads((folder / "metrics.json").read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def resume_inputs(state: dict[str, Any], folder: Path, given: dict[str, Any], image, reference,
                  observed: bool | None):
    """(settings, image, reference, observed) of the saved run, after checking that what the
    caller gave (settings fields, image, reference, mode) agrees with it; UsageError otherwise."""
    identity = state["identity"]
    saved = identity["settings"]

    def refuse(what: str) -> UsageError:
        return UsageError(f"--resume {folder}: {what}; resume with the same input, task and model as the "
                          "interrupted run, or leave them out")

    for key, value in given.items():
        if key == "mask":
            if fingerprint(value) != identity.get("mask_sha256"):
                raise refuse(f"--mask {value} is not the mask of the saved run")
        elif value != saved.get(key):
            raise refuse(f"the saved run has {key} {saved.get(key)!r}, not {value!r}")
    mode = identity["mode"]
    if observed is not None and observed != (mode == "observed"):
        raise refuse(f"the saved run is in {mode} mode")
    for what, value, key, path in (("input", image, "input_sha256", state["input"]),
                                   ("reference", reference, "reference_sha256", state["reference"])):
        if value is not None:
            if fingerprint(value) != identity[key]:
                raise refuse(f"{'--' + what if not torch.is_tensor(value) else what} is not the {what} of the saved run")
        elif identity[key] is not None and (path == "tensor" or not Path(path).is_file()):
            raise UsageError(f"--resume {folder}: the saved run's {what} {path} is not there; pass it with --{what}")
    image = image if image is not None else state["input"]
    if reference is None and identity["reference_sha256"] is not None:
        reference = state["reference"]
    return Settings(**saved), image, reference, mode == "observed"
