"""Resuming a stopped run from its folder: reading its state.pt back, and checking that what the
caller gives (settings, input, reference, mode) agrees with the saved run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from restore.errors import UsageError, one_line
from restore.restoration.job import fingerprint
from restore.settings.schema import SETTINGS, Settings, canonical, name_of

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
    except Exception as error:  # noqa: BLE001 - torch / pickle errors of a damaged file
        raise UsageError(f"--resume {folder}: {STATE_FILE} is unreadable ({one_line(error)[:120]})") from None
    problem = state_problem(state)
    if problem:
        raise UsageError(f"--resume {folder}: {STATE_FILE} is not a saved run of this tool ({problem}); "
                         "start a new run instead")
    return state


def _is(value, kind) -> bool:
    """isinstance, except that a bool is not an int."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def state_problem(state: Any) -> str | None:
    """What is wrong with a loaded state.pt (keys, types, shapes, their agreement), or None. The
    numbers themselves are checked again when the run is rebuilt (the identity, the plan)."""
    top = {"run": dict, "identity": dict, "input": str, "reference": (str, type(None)), "steps": list,
           "per_call": list, "seconds": (int, float), "wall_seconds": (int, float), "notes": list}
    if not isinstance(state, dict):
        return f"a {type(state).__name__}, not a mapping"
    for key, kind in top.items():
        if not _is(state.get(key), kind):
            return f"{key} is missing or a {type(state.get(key)).__name__}"
    identity, run = state["identity"], state["run"]
    if identity.get("mode") not in ("simulation", "observed") or not isinstance(identity.get("settings"), dict):
        return "its identity has no mode or settings"
    fields = {"plan": dict, "index": int, "x": torch.Tensor, "y": torch.Tensor, "sigma_y": (int, float),
              "candidates": int, "rows": list, "events": list, "shared_generator": bool, "generators": list,
              "generator_device": str}
    for key, kind in fields.items():
        if not _is(run.get(key), kind):
            return f"run.{key} is missing or a {type(run.get(key)).__name__}"
    x, y, rows = run["x"], run["y"], run["rows"]
    if x.dim() != 4 or not x.is_floating_point() or y.dim() != 2 or not y.is_floating_point():
        return f"run.x {tuple(x.shape)} / run.y {tuple(y.shape)} are not a batch of images and of measurements"
    if not all(isinstance(r, (list, tuple)) and len(r) == 2 and all(_is(v, int) for v in r) for r in rows):
        return "run.rows are not (image, candidate) pairs"
    if len(rows) != x.shape[0] or not rows or max(b for b, _ in rows) >= y.shape[0]:
        return f"{len(rows)} rows for {x.shape[0]} states of {y.shape[0]} measurement(s)"
    gens = run["generators"]
    if len(gens) != (1 if run["shared_generator"] else len(rows)) or not all(
            isinstance(g, torch.Tensor) and g.dtype == torch.uint8 for g in gens):
        return "its generator states do not match its rows"
    if not 0 <= run["index"] <= int(run["plan"].get("anytime_steps", -1)):
        return f"step {run['index']} is outside its plan"
    latest = run.get("latest")
    if latest is not None and not (isinstance(latest, dict) and isinstance(latest.get("x0"), torch.Tensor)
                                   and latest["x0"].shape == x.shape):
        return "its latest output does not match its states"
    spectral = run.get("x_spectral")
    if spectral is not None and not (isinstance(spectral, torch.Tensor) and spectral.is_floating_point()
                                     and tuple(spectral.shape) == (x.shape[0], x[0].numel())):
        return "its spectral state does not match its states"
    if not all(isinstance(step, dict) and {"step", "nfe", "candidates"} <= set(step) for step in state["steps"]):
        return "its steps are not step records"
    return None


def _status(folder: Path) -> str | None:
    try:
        return json.loads((folder / "metrics.json").read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def resume_inputs(state: dict[str, Any], folder: Path, given: dict[str, Any], image, reference,
                  observed: bool | None, where: str | None = None):
    """(settings, image, reference, observed) of the saved run, after checking that what the
    caller gave (any setting: restore.settings.schema.SETTINGS, old names included; the image,
    reference and mode) agrees with it; UsageError naming the first that does not (its flag, or
    with where="keyword" its keyword) otherwise. Nothing given is applied: a resumed run is the
    saved one, so a setting that differs is refused, never silently dropped."""
    identity = state["identity"]
    saved = identity["settings"]
    resume = "--resume" if where is None else "resume="

    def refuse(what: str) -> UsageError:
        return UsageError(f"{resume} {folder}: {what}; resume with the same settings, input, task and model as "
                          "the interrupted run, or leave them out")

    try:
        given = canonical({k: v for k, v in given.items() if v is not None and k != "config"} | (
            {"solver": saved.get("solver")} if "solver" not in given else {}), where)
    except UsageError as error:
        raise refuse(str(error)) from None
    for key, value in given.items():
        named = name_of(key, where)
        if key not in SETTINGS:
            raise refuse(f"{key} is not a setting")
        if SETTINGS[key].spec.file:
            if fingerprint(value) != identity.get(f"{key}_sha256"):
                raise refuse(f"{named} {value} is not the {key} of the saved run")
            continue
        value = Settings.check(key, value, where)
        if value != saved.get(key):
            raise refuse(f"the saved run has {named} {saved.get(key)!r}, not {value!r}")
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
    try:
        settings = Settings(**saved)
    except TypeError:  # a run saved by a version with other settings
        raise UsageError(f"{resume} {folder}: the run was saved by another version of this tool (its settings "
                         f"{sorted(set(saved) - set(SETTINGS))} are unknown); start a new run instead") from None
    return settings, image, reference, mode == "observed"
