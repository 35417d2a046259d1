"""The settings of one restoration job, shared by `scripts/restore.py`, `scripts/evaluate.py` and
the Python API: command-line arguments, YAML configs (flags override them), model choice, and
building the operator and the solver."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import yaml

from degradations import TASKS, make_operator
from restore.prior import BUNDLED, REPO_ROOT, celebahq_available
from solvers.schedule import check_outer_times

CONFIG_DIR = REPO_ROOT / "configs"


class UsageError(ValueError):
    """Bad input from the user; scripts print its one-line message and exit with code 2."""


@dataclass
class Settings:
    """Everything that determines a restoration (and so belongs in its metrics and summaries).

    sigma_y is on the [0, 1] pixel scale. model None means "CelebA-HQ if its weights are cached
    locally, else the bundled prior". solver: a plain solver (ddrm, ddnm, diffpir, dps: `steps`
    calls) or one nested (nested-<name>, "nested" = nested-ddrm: `outer` previews of `inner`
    calls each, or one budget per outer step when `inner` is a list). eta, eta_b: DDRM's (eta
    also DDNM's); zeta (DiffPIR, DPS) and lam (DiffPIR's lambda): None = the paper's default.
    candidates: restorations of the same measurement, each with its own noise (steerable).
    size: None (the input's own size, or the model's for a model trained at one size: see
    restore.sizing), "native" (the input's own size with any model) or S (S x S). tile: network
    calls on tiles of this many pixels (0: never; None: only when one call would not fit the
    memory; see restore.network). precision (fp32, bf16, fp16: the network only) and compile:
    how the network runs (restore.precision). config: the YAML file these settings came from, if any (given,
    or the measured one of the task and model: restore.configs)."""

    task: str = "sr4"
    sigma_y: float = 0.0
    mask: str | None = None
    model: str | None = None
    solver: str = "nested"
    outer: int = 4
    inner: int | list[int] = 5
    steps: int = 20
    eta: float = 0.85
    eta_b: float = 1.0
    zeta: float | None = None
    lam: float | None = None
    outer_power: float = 2.0
    outer_eta: float = 0.0
    outer_times: list[int] | str | None = None
    outer_noise: float = 0.0
    inner_power: float = 1.0
    seed: int = 0
    size: int | str | None = None
    tile: int | None = None
    candidates: int = 1
    precision: str = "fp32"
    compile: bool = False
    config: str | None = None

    def validate(self) -> "Settings":
        if self.task not in TASKS:
            raise UsageError(f"unknown task {self.task!r}; valid tasks: {', '.join(TASKS)}")
        if self.task == "inp_mask" and not self.mask:
            raise UsageError("task inp_mask needs --mask PATH (an image: black = missing, white = kept)")
        if self.mask and not Path(self.mask).is_file():
            raise UsageError(f"mask file {self.mask} not found")
        if self.sigma_y < 0:
            raise UsageError(f"--sigma-y must be >= 0 (a std on the [0, 1] pixel scale), got {self.sigma_y}")
        if self.candidates < 1:
            raise UsageError(f"--candidates must be at least 1 (restorations of the same measurement), got {self.candidates}")
        solver_parts(self.solver)
        if isinstance(self.inner, (list, tuple)):
            self.inner = [int(n) for n in self.inner]
            if not self.inner or min(self.inner) < 1:
                raise UsageError(f"--inner must list positive numbers of calls, e.g. 2,3,5,10; got {self.inner}")
            if len(self.inner) == 1:
                self.inner = self.inner[0]
            else:
                self.outer = len(self.inner)  # one budget per outer step
        for name in ("outer", "inner", "steps"):
            if isinstance(getattr(self, name), int) and getattr(self, name) < 1:
                raise UsageError(f"--{name} must be a positive number of steps, got {getattr(self, name)}")
        if self.zeta is not None and not 0 <= self.zeta <= (1 if solver_parts(self.solver)[1] == "diffpir" else math.inf):
            raise UsageError(f"--zeta must lie in [0, 1] for DiffPIR (a share of noise) and be >= 0 for DPS, got {self.zeta}")
        if self.outer_power <= 0:
            raise UsageError(f"--outer-power must be > 0 (1 = the paper's even outer grid), got {self.outer_power}")
        if not 0.0 <= self.outer_eta <= 1.0:
            raise UsageError(f"--outer-eta must lie in [0, 1], got {self.outer_eta}")
        if not 0.0 <= self.outer_noise <= 1.0:
            raise UsageError(f"--outer-noise must lie in [0, 1] (the share of fresh noise), got {self.outer_noise}")
        if self.inner_power <= 0:
            raise UsageError(f"--inner-power must be > 0 (1 = the solver's own grid in every inner run), "
                             f"got {self.inner_power}")
        if self.outer_noise > 0 and self.outer_eta > 0:
            raise UsageError(f"give --outer-eta or --outer-noise, not both (got {self.outer_eta} and {self.outer_noise})")
        if self.outer_times is not None and self.outer_times != "cosine":
            try:  # a list from a config or the API, or "950,850,..." text
                times = parse_times(self.outer_times) if isinstance(self.outer_times, str) else self.outer_times
                self.outer_times = times if times == "cosine" else check_outer_times(times, self.outer)  # Nested's rule
            except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
                raise UsageError(f"--outer-times: {error}") from None
        if self.lam is not None and self.lam <= 0:
            raise UsageError(f"--lambda must be > 0, got {self.lam}")
        for name in ("eta", "eta_b"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"--{name.replace('_', '-')} must lie in [0, 1], got {getattr(self, name)}")
        if isinstance(self.size, str) and self.size != "native":
            self.size = parse_size(self.size)
        if isinstance(self.size, int) and self.size < 16:
            raise UsageError(f"--size must be at least 16 pixels, got {self.size}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise UsageError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.tile is not None and self.tile < 0:
            raise UsageError(f"--tile must be a number of pixels (0: no tiling), got {self.tile}")
        return self

    @property
    def nested(self) -> bool:
        return solver_parts(self.solver)[0]

    @property
    def budgets(self) -> list[int]:
        """Network calls per outer step (nested solvers)."""
        return list(self.inner) if isinstance(self.inner, list) else [self.inner] * self.outer

    @property
    def nfe(self) -> int:
        return sum(self.budgets) if self.nested else self.steps

    @property
    def anytime_steps(self) -> int:
        return self.outer if self.nested else self.steps

    @property
    def label(self) -> str:
        """E.g. "Nested DDRM 4 x 5", "Nested DDNM 2+3+5+10", "DiffPIR 20 steps"."""
        nested, name = solver_parts(self.solver)
        if not nested:
            return f"{SOLVER_TITLES[name]} {self.steps} steps"
        split = "+".join(map(str, self.inner)) if isinstance(self.inner, list) else f"{self.outer} x {self.inner}"
        return f"Nested {SOLVER_TITLES[name]} {split}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SOLVER_TITLES = {"ddrm": "DDRM", "ddnm": "DDNM", "diffpir": "DiffPIR", "dps": "DPS"}
SOLVER_NAMES = tuple(SOLVER_TITLES) + ("nested",) + tuple(f"nested-{n}" for n in SOLVER_TITLES)


def solver_parts(name: str) -> tuple[bool, str]:
    """(nested?, inner solver) of a solver name: "ddnm" -> (False, "ddnm"), "nested-ddnm" ->
    (True, "ddnm"), "nested" -> (True, "ddrm")."""
    if name == "nested":
        return True, "ddrm"
    base = name[len("nested-"):] if name.startswith("nested-") else name
    if base not in SOLVER_TITLES:
        raise UsageError(f"unknown solver {name!r}; valid: {', '.join(SOLVER_NAMES)}")
    return base != name, base


def parse_size(text: str) -> int | str:
    """--size: "native" or a number of pixels."""
    if str(text).strip().lower() == "native":
        return "native"
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--size takes a number of pixels or 'native', got {text!r}") from None


def parse_inner(text: str) -> int | list[int]:
    """--inner: one number of calls per outer step (5) or one per outer step (2,3,5,10)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma list such as 2,3,5,10, got {text!r}") from None
    return values[0] if len(values) == 1 else values


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def parse_times(text: str) -> list[int] | str:
    """--outer-times: "cosine", or whole diffusion times separated by commas (950,850,600,250); the
    rule they must follow is checked in Settings.validate (solvers.schedule.check_outer_times)."""
    if str(text).strip().lower() == "cosine":
        return "cosine"
    try:
        return [int(v) for v in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole times separated by commas, e.g. 950,850,600,250; got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every restoration command shares (defaults None: config, then Settings)."""
    parser.add_argument("--task", help=f"degradation, one of: {', '.join(TASKS)}")
    parser.add_argument("--sigma-y", type=float, help="measurement noise std on the [0, 1] pixel scale (default 0)")
    parser.add_argument("--mask", help="mask image for inp_mask (black = missing)")
    parser.add_argument("--model", help=f"'celebahq', {BUNDLED!r}, a diffusers folder or id, or a .ckpt "
                        "(default: celebahq if cached locally, else the bundled prior)")
    parser.add_argument("--solver", metavar="NAME", help="ddrm, ddnm, diffpir, dps, or nested-<one of them> for "
                        "its anytime version (default nested = nested-ddrm)")
    parser.add_argument("--outer", type=int, help="nested solvers: outer steps (anytime previews, default 4)")
    parser.add_argument("--inner", type=parse_inner, metavar="N|N1,N2,..",
                        help="nested solvers: network calls per outer step (default 5), or one budget per outer step")
    parser.add_argument("--outer-power", type=float, help="nested solvers: outer times t_start ((N-j)/N)^p "
                        "(default 2: denser towards clean; 1 = the paper's even grid; README, 'Where Nested falls behind')")
    parser.add_argument("--outer-eta", type=float, help="nested solvers: DDIM eta of the outer loop (default 0)")
    parser.add_argument("--outer-times", type=parse_times, metavar="T1,T2,..|cosine",
                        help="nested solvers: the outer times, one per outer step, or 'cosine' (t_start cos(pi/2 j/N)); "
                        "overrides --outer-power")
    parser.add_argument("--outer-noise", type=float, help="nested solvers: share of fresh noise when the outer step "
                        "re-noises the inner result (0: DDIM, default; 1: a restart; README, 'Where Nested falls behind')")
    parser.add_argument("--inner-power", type=float, help="nested solvers: every inner run but the last calls at "
                        "t (s/t)^p over the solver's grid s (default 1: the solver's grid; < 1 gathers the calls at the "
                        "top of each run; README, 'Where Nested falls behind')")
    parser.add_argument("--steps", type=int, help="plain solvers: network calls (default 20)")
    parser.add_argument("--eta", type=float, help="DDRM and DDNM eta (default 0.85)")
    parser.add_argument("--eta-b", type=float, help="DDRM eta_b (default 1.0)")
    parser.add_argument("--zeta", type=float, help="DiffPIR zeta (default 0.1) or DPS step size (default 1.0)")
    parser.add_argument("--lambda", dest="lam", type=float, help="DiffPIR lambda (default 1.0)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--size", type=parse_size, metavar="S|native",
                        help="restore at S x S (centre crop and resize) or at the input's own size (native); default "
                        "native, or the model's size for one trained at a single size (CelebA-HQ)")
    parser.add_argument("--tile", type=int, metavar="PIXELS", help="call the network on overlapping tiles of this "
                        "size (0: never; default: only when one call would not fit the memory)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                        help="the network's arithmetic (autocast; the solver stays fp32): fp32 (default), bf16, fp16 (GPU)")
    parser.add_argument("--compile", action="store_true", default=None,
                        help="torch.compile the network (CUDA graphs on a GPU; slow to build on a CPU)")
    parser.add_argument("--candidates", type=int, metavar="K",
                        help="K restorations of the same measurement, each with its own noise (default 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    parser.add_argument("--config", help="YAML file of settings (see configs/); flags override it. Default: the "
                        "measured configs/<task>_<model>.yaml when there is one; 'none' ignores it")


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    # a bare name lives in configs/; "configs/x.yaml", as a run records it, is the repository's
    for base in (CONFIG_DIR, REPO_ROOT):
        if not path.is_file() and (base / path).is_file():
            path = base / path
    if not path.is_file():
        raise UsageError(f"config file {path} not found (configs live in {CONFIG_DIR})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"config {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    known = {f.name for f in fields(Settings)} - {"config"}
    unknown = sorted(set(data) - known)
    if not isinstance(data, dict) or unknown:
        raise UsageError(f"config {path} has unknown keys {unknown}; allowed: {sorted(known)}")
    return data


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings defaults < config file (given, or the task's and model's measured one:
    restore.configs) < command-line flags."""
    from restore.configs import apply_measured

    config = getattr(args, "config", None)
    values: dict[str, Any] = {}
    if config and config.lower() != "none":
        values.update(load_config(config), config=str(config))
    for f in fields(Settings):
        flag = getattr(args, f.name, None)
        if flag is not None and f.name != "config":
            values[f.name] = flag
    if not config:
        values = apply_measured(values)
    return Settings(**values).validate()


def resolve_model(spec: str | None, quiet: bool = False, note=None) -> str:
    """The model to use; with no spec, CelebA-HQ when cached locally, else the bundled prior (said in one line).

    note: a callable taking that line (default: print it on stderr as "note: ..."); quiet drops it."""
    if spec:
        return spec
    if celebahq_available():
        return "celebahq"
    if not quiet:
        line = (f"CelebA-HQ weights not found locally; using the bundled prior {BUNDLED!r} "
                "(pass --model celebahq to download them)")
        if note is None:
            print(f"note: {line}", file=sys.stderr)
        else:
            note(line)
    return BUNDLED


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but CUDA is not available; use --device cpu")
    return device


def build_operator(settings: Settings, size: int | tuple[int, int], channels: int = 3):
    options = {"mask": settings.mask} if settings.task == "inp_mask" else {}
    try:
        return make_operator(settings.task, size, channels=channels, **options)
    except ValueError as error:
        message = str(error).splitlines()[0]
        if settings.task == "inp_mask" and "does not match" in message:
            h, w = (size, size) if isinstance(size, int) else size
            message += f"; give --mask an image of {w}x{h} pixels (black = missing, white = kept)"
        raise UsageError(message) from None
    except OSError as error:  # an unreadable mask file (PIL's UnidentifiedImageError is an OSError)
        raise UsageError(f"cannot read mask {settings.mask}: {' '.join(str(error).split())}; "
                         "give an image file (black = missing, white = kept)") from None


def build_solver(settings: Settings, prior, operator):
    """The solver the settings name: a plain one, or Nested around it."""
    from solvers import SOLVERS, Nested

    nested, name = solver_parts(settings.solver)
    options = {"ddrm": {"eta": settings.eta, "eta_b": settings.eta_b}, "ddnm": {"eta": settings.eta},
               "diffpir": {"lambda_": settings.lam, "zeta": settings.zeta}, "dps": {"zeta": settings.zeta}}[name]
    options = {k: v for k, v in options.items() if v is not None}
    try:
        solver = SOLVERS[name](prior, operator, steps=settings.steps, **options)
        if not nested:
            return solver
        return Nested(solver, inner_steps=settings.budgets, outer_eta=settings.outer_eta,
                      outer_power=settings.outer_power, outer_times=settings.outer_times,
                      outer_noise=settings.outer_noise, inner_power=settings.inner_power)
    except ValueError as error:
        raise UsageError(str(error).splitlines()[0]) from None


def run_cli(main, argv: list[str] | None = None) -> int:
    """Run `main(argv)`, turning UsageError (and other one-line input errors) into exit code 2."""
    from restore.imageio import ImageReadError
    from restore.prior import PriorNotFound

    try:
        return main(argv) or 0
    except (UsageError, ImageReadError, PriorNotFound) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
