"""A benchmark protocol: the field's task suite as one declared file (configs/protocols/*.yaml)
that a person can copy and edit, and the `--solvers name@budget` list it is run with.

A protocol file names (every detail cited in the file to the published code it comes from):
- `images`: the set (`count` first images of --data in sorted order, or the listed `names`) and
  the `size` they are restored at (centre crop and resize);
- `noise`: the measurement noise's std `sigma` on its own `scale`, "[-1, 1]" (DPS, DAPS: the
  model's scale) or "[0, 1]" (DiffPIR's 12.75/255); this toolkit's sigma_y is on [0, 1], so
  sigma 0.05 on [-1, 1] is sigma_y 0.025 (`Protocol.sigma_y`);
- `tasks`: name -> an operator of restore.evaluation.protocol_ops with its parameters, how its
  random parts are drawn (`draw`: once per run from a seed, or per image from a seed that
  depends on the image's index in the set), and `settings_task`, the toolkit task whose
  settings (measured configs, inpainting defaults) its solvers take;
- `metrics` and `fid.anytime_points` (how many anytime steps of a plain solver get an FID; a
  nested solver gets one at each outer step);
- `published`: the file of published numbers (data/published/*.csv) its rows are compared with.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from degradations import TASKS
from restore import paths
from restore.errors import UsageError, one_line
from restore.settings.rules import MAX_STEPS
from restore.settings.schema import SOLVER_NAMES, solver_parts

PROTOCOL_DIR = paths.CONFIG_DIR / "protocols"
OPERATORS = {"resizer": "sr_bicubic4", "box_mask": "inp_box", "random_mask": "inp_random",
             "gaussian_blur": "deblur_gauss", "motion_blur": "deblur_motion"}
#: what each operator must be given (beyond `operator`)
REQUIRED = {"resizer": ("factor",), "box_mask": ("side", "margin", "draw"), "random_mask": ("missing", "draw"),
            "gaussian_blur": ("size", "intensity"), "motion_blur": ("size", "intensity", "draw")}
METRICS = ("psnr", "ssim", "lpips", "fid", "kid")


def builtin_protocols() -> list[str]:
    """The names of the protocols shipped in configs/protocols/."""
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))


@dataclass
class Protocol:
    """A loaded, checked protocol file (module docstring)."""

    name: str
    path: Path
    data: dict[str, Any]
    digest: str

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.data["tasks"]

    @property
    def size(self) -> int:
        return int(self.data["images"]["size"])

    @property
    def count(self) -> int | None:
        count = self.data["images"].get("count")
        return None if count is None else int(count)

    @property
    def names(self) -> list[str] | None:
        return self.data["images"].get("names")

    @property
    def sigma_model(self) -> float:
        """The noise std on the [-1, 1] scale the images are restored on."""
        noise = self.data["noise"]
        return float(noise["sigma"]) * (2.0 if noise["scale"] == "[0, 1]" else 1.0)

    @property
    def sigma_y(self) -> float:
        """The noise as this toolkit's --sigma-y (a std on the [0, 1] pixel scale)."""
        return self.sigma_model / 2.0

    @property
    def metrics(self) -> list[str]:
        return list(self.data.get("metrics", METRICS))

    @property
    def fid_points(self) -> int:
        return int(self.data.get("fid", {}).get("anytime_points", 10))

    @property
    def published(self) -> Path | None:
        name = self.data.get("published")
        if not name:
            return None
        path = Path(name)
        return path if path.is_absolute() else paths.SHIPPED_ROOT / path

    def settings_task(self, task: str) -> str:
        spec = self.tasks[task]
        return spec.get("settings_task", OPERATORS[spec["operator"]])


def _fail(where: str, what: str) -> UsageError:
    return UsageError(f"protocol {where}: {what}")


def _check(name: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail(name, "must be a mapping (name:, images:, noise:, tasks:)")
    for key in ("images", "noise", "tasks"):
        if not isinstance(data.get(key), dict):
            raise _fail(name, f"needs a mapping `{key}:`")
    images = data["images"]
    if not isinstance(images.get("size"), int) or images["size"] < 16:
        raise _fail(name, f"images.size must be a number of pixels >= 16, got {images.get('size')!r}")
    if images.get("count") is not None and (not isinstance(images["count"], int) or images["count"] < 1):
        raise _fail(name, f"images.count must be a positive number, got {images['count']!r}")
    if images.get("names") is not None and not (isinstance(images["names"], list) and images["names"]):
        raise _fail(name, "images.names must be a list of file names")
    noise = data["noise"]
    if noise.get("scale") not in ("[-1, 1]", "[0, 1]"):
        raise _fail(name, f"noise.scale must be \"[-1, 1]\" or \"[0, 1]\", got {noise.get('scale')!r}")
    if not isinstance(noise.get("sigma"), (int, float)) or isinstance(noise["sigma"], bool) or not 0 <= noise["sigma"] <= 2:
        raise _fail(name, f"noise.sigma must be a std between 0 and 2, got {noise.get('sigma')!r}")
    if not data["tasks"]:
        raise _fail(name, "tasks: is empty")
    for task, spec in data["tasks"].items():
        where = f"{name}: tasks.{task}"
        if not isinstance(spec, dict) or spec.get("operator") not in OPERATORS:
            got = spec.get("operator") if isinstance(spec, dict) else spec
            raise UsageError(f"protocol {where}.operator must be one of {', '.join(OPERATORS)}, got {got!r}")
        missing = [k for k in REQUIRED[spec["operator"]] if k not in spec]
        if missing:
            raise UsageError(f"protocol {where} ({spec['operator']}) needs {', '.join(missing)}")
        draw = spec.get("draw")
        if draw is not None and (not isinstance(draw, dict) or draw.get("per") not in ("run", "image")):
            raise UsageError(f"protocol {where}.draw must be {{per: run, seed: N}} or "
                             f"{{per: image, seed_base: N, seed_step: M}}, got {draw!r}")
        if spec.get("settings_task", OPERATORS[spec["operator"]]) not in TASKS:
            raise UsageError(f"protocol {where}.settings_task must be a task name, got {spec.get('settings_task')!r}")
        if spec.get("boundary", "reflect") not in ("reflect", "circular"):
            raise UsageError(f"protocol {where}.boundary must be reflect or circular, got {spec.get('boundary')!r}")
    unknown = sorted(set(data.get("metrics", METRICS)) - set(METRICS))
    if unknown:
        raise _fail(name, f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
    return data


def load_protocol(spec: str | Path) -> Protocol:
    """A protocol by name (configs/protocols/NAME.yaml) or path; a one-line UsageError for a
    missing or malformed file."""
    path = Path(spec)
    if not path.suffix and not path.exists():
        path = PROTOCOL_DIR / f"{spec}.yaml"
    if not path.is_file():
        raise UsageError(f"protocol {spec} not found; built-in: {', '.join(builtin_protocols())}, or give a .yaml path "
                         f"(copy one from {PROTOCOL_DIR})")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read protocol {path}: {one_line(error)}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"protocol {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    name = str((data or {}).get("name", path.stem)) if isinstance(data, dict) else path.stem
    return Protocol(name, path, _check(name, data), hashlib.sha256(text.encode()).hexdigest()[:16])


# --------------------------------------------------------------------------- --solvers
@dataclass(frozen=True)
class SolverSpec:
    """One `name@budget` of --solvers: `label` (the row's name, e.g. "nested-ddrm@4x5"),
    `solver` (a toolkit solver name) and the settings its budget sets."""

    label: str
    solver: str
    budget: tuple[tuple[str, Any], ...]

    @property
    def settings(self) -> dict[str, Any]:
        return {"solver": self.solver, **dict(self.budget)}


def _calls(text: str, token: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_STEPS:
        raise UsageError(f"--solvers {token}: calls must be whole numbers from 1 to {MAX_STEPS}, got {text!r}")
    return int(text)


def parse_solver(token: str) -> SolverSpec:
    """"ddrm@20" (20 calls), "nested-ddrm@4x5" (4 outer steps of 5 calls), "nested@2+3+5+10"
    (one budget per outer step), or a bare name (20 calls; nested: 4 x 5)."""
    name, _, budget = token.strip().partition("@")
    if name not in SOLVER_NAMES:
        raise UsageError(f"--solvers {token}: unknown solver {name!r}; choose from {', '.join(SOLVER_NAMES)}")
    nested = solver_parts(name)[0]
    budget = budget.strip().lower()
    if not nested:
        if "x" in budget or "+" in budget:
            raise UsageError(f"--solvers {token}: a plain solver takes a number of calls, e.g. {name}@20")
        steps = _calls(budget, token) if budget else 20
        return SolverSpec(f"{name}@{steps}", name, (("steps", steps),))
    if not budget:
        return SolverSpec(f"{name}@4x5", name, (("outer", 4), ("inner", 5)))
    if re.fullmatch(r"\d+x\d+", budget):
        outer, inner = (_calls(v, token) for v in budget.split("x"))
        return SolverSpec(f"{name}@{outer}x{inner}", name, (("outer", outer), ("inner", inner)))
    if re.fullmatch(r"\d+(\+\d+)+", budget):
        inner = [_calls(v, token) for v in budget.split("+")]
        return SolverSpec(f"{name}@{'+'.join(map(str, inner))}", name, (("inner", tuple(inner)),))
    raise UsageError(f"--solvers {token}: a nested solver takes outer x inner calls (e.g. {name}@4x5) or one budget "
                     f"per outer step (e.g. {name}@2+3+5+10)")


def parse_solvers(text: str) -> list[SolverSpec]:
    """--solvers "ddrm@20,nested-ddrm@4x5,dps@1000" -> SolverSpecs, each label once."""
    specs = [parse_solver(t) for t in text.split(",") if t.strip()]
    if not specs:
        raise UsageError("--solvers names no solver; e.g. --solvers ddrm@20,nested-ddrm@4x5")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"--solvers names {', '.join(sorted({x for x in labels if labels.count(x) > 1}))} twice")
    return specs
