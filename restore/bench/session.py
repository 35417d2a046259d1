"""One prepared GPU session (issue 38): every CUDA path of the toolkit, the GPU benchmark table and
the bundled prior's training, in one command that fits a short loan of a card.

    bash scripts/gpu_session.sh                       # on the card; results in $OUT (else gpu_session_out/)
    python -m restore.bench.session --dry --out DIR   # the same steps on a CPU: tiny sizes, a few calls, gloo
    python -m restore.bench.session --parts 2 --minutes 4      # one part again (a second call)
    python -m restore.bench.session --only compile,bench-gpu   # some steps again
    python -m restore.bench.session --list            # the steps and their commands, nothing run

Three parts, in this order, each within its share of --minutes (default 9: one call of the
device tool may last 10 minutes, and the card's loan is about 15 minutes in all, start-up
included, so that a second, shorter call still fits); every step under its own time limit (its
process group is ended when it runs over), so that a step that fails or hangs never stops the
later ones:

1. the suite's CUDA tests (`pytest -m cuda`: every test that takes a device, on the card), then,
   with Ho et al.'s CelebA-HQ U-Net (random weights: the real model's shapes and cost, not its
   quality) at 256 x 256, one command-line restoration per solver family with --device cuda,
   K = 4 candidates steered by a scripted choice and by a region, an interrupted run resumed and
   compared with the uninterrupted one, bf16, fp16, --compile, a tiled 1024 x 1024 restoration,
   a Fourier-blur deblur, and `torchrun --nproc_per_node=1 scripts/evaluate.py` over nccl;
2. `scripts/bench.py gpu` (restore.bench.gpu) and `scripts/bench.py precision`
   (restore.bench.precision: bf16 and fp16 restorations against fp32 on the held-out images);
3. the bundled prior's training (the attention variant, on the 66 training photos) for the time
   left, a checkpoint every minute, then its held-out card (scripts/eval_prior.py: sr4 against
   bicubic, inp_box against the pseudo-inverse, colour against the grey input), beside the
   bundled prior's card measured the same way.

Every step is a command a person could type (its log starts with it). The runner starts each one
by forking itself after importing the toolkit once (a few seconds saved per step; CUDA is never
touched before the fork), or as a fresh interpreter with --spawn (and whenever a forked child
cannot reach the GPU). Part 1's steps run a few at a time (--jobs; nothing in part 1 is timed);
parts 2 and 3 run alone.

Out (--out): summary.md and summary.json (rewritten after every step: what passed, what failed
with its error line, every number), and with --pack (set by scripts/gpu_session.sh when $OUT is
set) session.tar.gz (logs, JSON, CSV and final images of every step) and model.tar.part-NN (the
trained model folder in parts of 15 MB: `cat model.tar.part-* | tar -x`), the device tool
returning at most 8 files of 16 MiB; without --pack everything stays under OUT/work/.

--dry: the same steps on the CPU with a tiny U-Net at 32 x 32, a few network calls, gloo for
torchrun, a few training steps; the steps that need a card (fp16, --compile) are skipped with a
line that says so. tests/test_gpu_session.py runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from restore.io.atomic import write_json, write_text

# torch.cuda.is_available() through NVML, which leaves CUDA untouched: forked children can still use it
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SHARES = {1: 0.38, 2: 0.27, 3: 0.35}  # of the session's minutes; a part that ends early leaves its rest to the next
PACK_SECONDS = 20  # kept back at the end for packing
PART_TITLES = {1: "CUDA paths", 2: "benchmarks", 3: "the bundled prior's training"}
RESUME_TOLERANCE_DB = 40.0  # resumed vs uninterrupted final.png (8-bit): PSNR at least this (RMS < 2.6 levels)
LOG_KEEP = (".json", ".csv", ".xml", ".md", ".txt", ".log")
IMAGE_KEEP = ("final.png", "loss.png", "samples.png")


class Failed(Exception):
    """A step that ran but whose result is wrong; its one line says how."""


@dataclass
class Step:
    name: str
    part: int
    argv: list[str]  # after `python`: a script (relative to the repository) or "-m module", then its arguments
    timeout: float
    what: str
    gpu_only: str = ""  # why it needs a card ("" : it runs in the dry mode too)
    check: Callable[["Step", "Plan"], dict] | None = None  # its numbers, read from its outputs; raises Failed
    out: Path | None = None  # its output folder
    env: dict = field(default_factory=dict)
    stage: int = 0  # steps of a part run stage by stage; those of one stage may run together
    # from the seconds left in its part when it starts: more arguments and its time limit
    budget: Callable[[float], tuple[list[str], float]] | None = None
    check_decides: bool = False  # its check's verdict stands whatever its exit code (pytest: modules not importable)

    def command(self) -> str:
        return " ".join(shlex.quote(str(a)) for a in ["python", *self.argv])


@dataclass
class Plan:
    """Where everything is and how big it is, for the real session or the dry one."""

    dry: bool
    card: str | None
    work: Path
    heldout: Path
    photos: Path | None
    init: Path | None

    @property
    def device(self) -> str:
        return "cuda" if self.card and not self.dry else "cpu"

    @property
    def inputs(self) -> Path:
        return self.work / "inputs"

    @property
    def model(self) -> Path:
        return self.inputs / ("tiny-ddpm" if self.dry else "celebahq-arch")

    def out(self, name: str) -> Path:
        return self.work / "steps" / name


# --------------------------------------------------------------------------- starting a command
def _run_python(argv: list[str]) -> int:
    """`python ARGV` inside this (forked) interpreter: a script or `-m module`, as __main__."""
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            script = str(ROOT / argv[0])
            sys.argv = [script, *argv[1:]]
            sys.path.insert(0, os.path.dirname(script))
            runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1


def start(argv: list[str], log: Path, env: dict, fork: bool) -> int:
    """Start `python ARGV` in its own process group with stdout and stderr in `log` (which begins
    with the command line); returns its pid (= its process group). fork: this interpreter, forked;
    else a fresh one (exec)."""
    header = "$ " + " ".join(shlex.quote(str(a)) for a in ["python", *argv]) + "\n"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child
        os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, header.encode())
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.chdir(ROOT)
        os.environ.update({k: str(v) for k, v in env.items()})
        if not fork:
            os.execv(PY, [PY, *argv])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stdout.reconfigure(line_buffering=True)
        if os.environ.get("GPU_SESSION_THREADS"):  # the dry run's tiny steps: one thread each
            import torch

            torch.set_num_threads(int(os.environ["GPU_SESSION_THREADS"]))
        code = _run_python([str(a) for a in argv])
    except BaseException:  # noqa: BLE001 - the child reports everything in its log
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def exit_code(pid: int, block: bool = False) -> int | None:
    """The exit code of child `pid` (a signal: minus its number), or None while it runs."""
    done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def end_group(pid: int, grace: float = 5.0) -> None:
    """End process group `pid` (its leader our child, reaped here if it has not been): SIGTERM,
    then SIGKILL after `grace` seconds, for the leader and whatever it left running."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def run_command(argv: list[str], log: Path, env: dict | None = None, timeout: float = 600,
                fork: bool | None = None, on_start: Callable[[int], None] | None = None) -> int:
    """Start, wait (at most `timeout` s), end the group; the exit code (124 when it ran over)."""
    fork = os.environ.get("GPU_SESSION_START", "fork") == "fork" if fork is None else fork
    pid = start(argv, log, env or {}, fork)
    if on_start:
        on_start(pid)
    deadline = time.time() + timeout
    while (code := exit_code(pid)) is None:
        if time.time() > deadline:
            end_group(pid)
            return 124
        time.sleep(0.05)
    end_group(pid, grace=1.0)  # what it left running (compile workers, torchrun's workers)
    return code


# --------------------------------------------------------------------------- checks: numbers from outputs
def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Failed(f"{path.name} was not written") from None


def restoration(**expect) -> Callable[[Step, Plan], dict]:
    """A command-line restoration: complete, on the plan's device, with the expected settings."""

    def check(step: Step, plan: Plan) -> dict:
        m = read_json(step.out / "metrics.json")
        if m.get("status") != "complete":
            raise Failed(f"status {m.get('status')!r}, not complete")
        if not str(m.get("device", "")).startswith(plan.device):
            raise Failed(f"ran on {m.get('device')}, not {plan.device}")
        for key, want in expect.items():
            got = m.get(key, m.get("settings", {}).get(key))
            if got != want:
                raise Failed(f"{key} is {got!r}, expected {want!r}")
        final = m.get("final") or {}
        numbers = {k: final.get(k) for k in ("psnr", "ssim", "lpips")}
        numbers.update({k: m.get(k) for k in ("nfe_total", "restoration_seconds", "wall_seconds", "image_size",
                                              "candidates", "chosen")})
        if m.get("choices"):
            numbers["choices"] = m["choices"]
        if m.get("notes"):
            numbers["notes"] = m["notes"]
        return numbers

    return check


def junit(step: Step, plan: Plan) -> dict:
    """pytest's JUnit XML: counts, and each failure's test and first line."""
    path = step.out / "pytest.xml"
    if not path.exists():
        raise Failed("pytest wrote no report")
    suites = ET.parse(path).getroot()
    suite = suites if suites.tag == "testsuite" else suites.find("testsuite")
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    n["passed"] = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    failed, uncollected = [], []
    for case in suite.iter("testcase"):
        for bad in [*case.findall("failure"), *case.findall("error")]:
            if bad.get("message") == "collection failure":  # a module this machine cannot import (the page's)
                last = (bad.text or "").strip().splitlines()
                uncollected.append(f"{case.get('name')}: {last[-1][:160] if last else 'not importable'}")
                continue
            line = (bad.get("message") or bad.text or "").strip().splitlines()
            failed.append(f"{case.get('name')}: {line[0][:200] if line else bad.tag}")
    n["errors"] -= len(uncollected)
    n["passed"] = n["tests"] - n["failures"] - n["errors"] - n["skipped"] - len(uncollected)
    n["failed_tests"], n["modules_not_collected"] = failed, uncollected
    n["skip_reasons"] = sorted({(s.get("message") or "")[:120] for s in suite.iter("skipped")})
    if n["tests"] == 0:
        raise Failed("no test selected")
    if failed:
        raise Failed(f"{len(failed)} of {n['tests']} failed; first: {failed[0]}", n)
    return n


def json_numbers(name: str) -> Callable[[Step, Plan], dict]:
    def check(step: Step, plan: Plan) -> dict:
        return read_json(step.out / name)

    return check


def resumed(step: Step, plan: Plan) -> dict:
    numbers = read_json(step.out / "result.json")
    if not numbers.get("passed"):
        raise Failed(numbers.get("error", "the resumed run differs from the uninterrupted one"), numbers)
    return numbers


def torchrun_check(step: Step, plan: Plan) -> dict:
    s = read_json(step.out / "summary.json")
    settings = s.get("settings", {})
    numbers = {"world_size": settings.get("world_size"), "device": settings.get("device"),
               "groups": {g: {k: v for k, v in row.items() if k in ("psnr", "lpips", "n")}
                          for g, row in (s.get("groups") or {}).items()} if isinstance(s.get("groups"), dict) else None}
    log = (plan.work / "logs" / f"{step.name}.log").read_text(errors="replace")
    numbers["backend"] = "nccl" if "NCCL INFO" in log else "gloo" if plan.device == "cpu" else "unknown"
    if plan.device == "cuda" and numbers["backend"] != "nccl":
        raise Failed("no NCCL INFO line in the log: the process group did not run over nccl", numbers)
    return numbers


def training(step: Step, plan: Plan) -> dict:
    model = step.out / "model" / "diffusion_pytorch_model.safetensors"
    rows = (step.out / "loss.csv").read_text().strip().splitlines()[1:] if (step.out / "loss.csv").exists() else []
    losses = [float(r.split(",")[1]) for r in rows]
    numbers = {"steps": int(rows[-1].split(",")[0]) if rows else 0,
               "minutes": float(rows[-1].split(",")[2]) if rows else 0.0,
               "loss_first": losses[0] if losses else None,
               "loss_last10": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
               "model_bytes": model.stat().st_size if model.exists() else 0}
    if not model.exists():
        raise Failed("no model folder written", numbers)
    return numbers


def card(step: Step, plan: Plan) -> dict:
    """eval_prior.py's JSON: per task, the mean PSNR / LPIPS of the baseline and of each split."""
    data = read_json(step.out / "card.json")
    out = {}
    for task, r in data.items():
        out[task] = {"baseline_name": r.get("baseline"), "images": len(r.get("images", []))}
        for key, s in r["scores"].items():
            out[task][key] = {m: sum(v) / len(v) if v else None for m, v in s.items()}
    return out


# --------------------------------------------------------------------------- the steps
def restore_argv(plan: Plan, name: str, *extra: str, task: str = "sr4", image: str = "face.png") -> list[str]:
    calls = ["--outer", "2", "--inner", "1"] if plan.dry else []
    if plan.dry and any(a in ("--steps", "--outer") for a in extra):
        calls = []
    return ["scripts/restore.py", "--model", str(plan.model), "--input", str(plan.inputs / image), "--task", task,
            "--sigma-y", "0.05", "--seed", "0", "--device", plan.device, "--out", str(plan.out(name)), "--overwrite",
            "--quiet", *calls, *extra]


def prelude(plan: Plan) -> Step:
    """Made before any part, whichever parts run."""
    return Step("inputs", 0, ["-m", "restore.bench.session_steps", "inputs", "--out", str(plan.inputs)]
                + (["--dry"] if plan.dry else []), 120,
                "the CelebA-HQ-architecture U-Net (random weights) as a model folder, the inputs, masks and image sets"
                if not plan.dry else "a tiny U-Net as a model folder, 32 x 32 inputs, masks, image sets and photos",
                check=json_numbers("inputs.json"), out=plan.inputs)


def part1(plan: Plan) -> list[Step]:
    dry = plan.dry
    steps = []
    tests = ["tests/test_run.py", "tests/test_solvers.py"] if dry else ["tests"]
    steps.append(Step("pytest-cuda", 1, ["-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "-o",
                                         "addopts=", "-rs", "--continue-on-collection-errors", "--junitxml",
                                         str(plan.out("pytest-cuda") / "pytest.xml"), *tests], 240,
                      "every test that takes a device, on it (pytest -m cuda)"
                      + (" (dry: two files, every CUDA case skipped)" if dry else ""),
                      check=junit, out=plan.out("pytest-cuda"), check_decides=True))
    steps.append(Step("compile", 1, restore_argv(plan, "compile", "--compile"), 300,
                      "--compile: torch.compile of the network (CUDA graphs)",
                      gpu_only="inductor on a CPU takes minutes",
                      check=restoration(compile=True), out=plan.out("compile")))
    steps += [  # the slow ones first: their start-up overlaps the rest
        Step("torchrun", 1, ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                             "scripts/evaluate.py", "--data", str(plan.inputs / "set"), "--task", "sr4", "--model",
                             str(plan.model), "--device", plan.device, "--out", str(plan.out("torchrun")),
                             "--overwrite", "--quiet", "--solvers", "nested,ddrm"]
             + (["--outer", "2", "--inner", "1"] if dry else []), 180,
             "torchrun --nproc_per_node=1 scripts/evaluate.py, " + ("gloo (dry)" if dry else "nccl"),
             check=torchrun_check, out=plan.out("torchrun"), env={"NCCL_DEBUG": "INFO"}),
        Step("interrupt-resume", 1, ["-m", "restore.bench.session_steps", "interrupt-resume", "--model",
                                     str(plan.model), "--input", str(plan.inputs / "face.png"), "--device",
                                     plan.device, "--inner", "25" if dry else "60", "--out",
                                     str(plan.out("interrupt-resume"))], 240,
             f"a run stopped by SIGINT after its first step, resumed, against the uninterrupted run "
             f"(final.png within {RESUME_TOLERANCE_DB:g} dB PSNR)", check=resumed, out=plan.out("interrupt-resume")),
    ]
    steps20 = ["--steps", "2" if dry else "20"]
    from solvers import solvers as declared  # here: torch is imported by the steps, not by the session's start
    per_solver = [("nested", []), *((name, steps20) for name in declared()), ("nested-diffpir", [])]
    for solver, extra in per_solver:
        name = f"restore-{solver}"
        steps.append(Step(name, 1, restore_argv(plan, name, "--solver", solver, *extra), 120,
                          f"a command-line restoration with --solver {solver}", check=restoration(solver=solver),
                          out=plan.out(name)))
    choose = "2,1,3" if not dry else "2"
    steps += [
        Step("candidates", 1, restore_argv(plan, "candidates", "--candidates", "4", "--choose", choose), 120,
             f"K = 4 candidates, a scripted choice ({choose})", check=restoration(candidates=4),
             out=plan.out("candidates")),
        Step("region-choice", 1, restore_argv(plan, "region-choice", "--candidates", "4", "--choose",
                                              f"2@{plan.inputs / 'mask.png'}+1"), 120,
             "K = 4 candidates, a choice by region (2@mask.png+1)", check=restoration(candidates=4),
             out=plan.out("region-choice")),
        Step("bf16", 1, restore_argv(plan, "bf16", "--precision", "bf16"), 120, "--precision bf16",
             check=restoration(precision="bf16"), out=plan.out("bf16")),
        Step("fp16", 1, restore_argv(plan, "fp16", "--precision", "fp16"), 120, "--precision fp16",
             gpu_only="fp16 runs on a GPU only (a CPU refuses it)", check=restoration(precision="fp16"),
             out=plan.out("fp16")),
        Step("tiled", 1, restore_argv(plan, "tiled", "--size", "native", "--tile", "32" if dry else "512", "--solver",
                                      "ddrm", "--steps", "2" if dry else "10", image="face_big.png"), 180,
             "a tiled restoration of a 1024 x 1024 image (512-pixel tiles)" if not dry else
             "a tiled restoration of a 64 x 64 image (32-pixel tiles)",
             check=restoration(tile=32 if dry else 512), out=plan.out("tiled")),
        Step("deblur-motion", 1, restore_argv(plan, "deblur-motion", task="deblur_motion"), 120,
             "a Fourier-blur deblur (--task deblur_motion)", check=restoration(task="deblur_motion"),
             out=plan.out("deblur-motion")),
    ]
    return steps


def part2(plan: Plan) -> list[Step]:
    dry = plan.dry
    precision = ["scripts/bench.py", "precision", "--data", str(plan.heldout), "--device", plan.device,
                 "--json", str(plan.out("precision") / "precision.json")]
    if dry:
        precision += ["--model", str(plan.model), "--precisions", "fp32,bf16", "--tasks", "sr4", "--outer", "2",
                      "--inner", "1"]
    bench = ["scripts/bench.py", "gpu", "--json", str(plan.out("bench-gpu") / "bench_gpu.json")]
    if dry:
        bench += ["--device", "cpu", "--model", str(plan.model), "--size", "32", "--batches", "1", "--precisions",
                  "fp32,bf16", "--compile", "off", "--calls", "2", "--tasks", "sr4"]

    def bench_budget(left: float) -> tuple[list[str], float]:  # no compile started past the part's end
        return ["--budget", f"{max(30.0, left - 20):.0f}"], left

    return [
        Step("precision", 2, precision, 150 if not dry else 60,
             "bf16 and fp16 restorations against fp32 on the held-out images (PSNR and LPIPS differences)"
             + (" (dry: fp32 and bf16, tiny)" if dry else ""), check=json_numbers("precision.json"),
             out=plan.out("precision")),
        Step("bench-gpu", 2, bench, 600,
             "bench.py gpu: precision x compile x batch, ms per call, images per minute, peak memory, share of the "
             "card's peak, the plain diffusers call, the solver's own share"
             + (" (dry: on the CPU, tiny)" if dry else ""),
             check=json_numbers("bench_gpu.json"), out=plan.out("bench-gpu"), stage=1,
             budget=None if dry else bench_budget),
    ]


CARD_SECONDS = 75  # kept back in part 3 for the two held-out cards (about 30 s on an H100, measured: not yet)


def part3(plan: Plan) -> list[Step]:
    dry = plan.dry
    steps, photos = [], plan.photos
    if photos is None:  # build what the card holds (scikit-image's and scikit-learn's photos)
        photos = plan.out("train-data") / "photos.npz"
        steps.append(Step("train-data", 3, ["scripts/train_prior.py", "build-data", "--skip-missing", "--out",
                                            str(photos)], 60,
                          "no .train/photos.npz carried: the training photos this machine has (--skip-missing)",
                          out=plan.out("train-data")))
    train = ["scripts/train_prior.py", "train", "--data", str(photos), "--out", str(plan.out("train")), "--attention",
             "--checkpoint-minutes", "1", "--log-every", "1" if dry else "10"]
    if dry:
        train += ["--minutes", "1", "--steps", "3", "--size", "32", "--channels", "16,32", "--norm-groups", "8",
                  "--batch", "2", "--warmup", "2", "--device", "cpu"]
    else:
        train += ["--size", "256", "--batch", "32"]
    if plan.init is not None:
        train += ["--init", str(plan.init)]

    def train_budget(left: float) -> tuple[list[str], float]:  # whatever is left, less the cards' time
        minutes = max(0.5, (left - CARD_SECONDS - 45) / 60)
        return ["--minutes", f"{minutes:.2f}"], minutes * 60 + 40

    steps.append(Step("train", 3, train, 120 if dry else 3600,
                      "the attention prior trained for the time left, a checkpoint every minute"
                      + (f", continued from {plan.init}" if plan.init else ""), check=training, out=plan.out("train"),
                      stage=1, budget=None if dry else train_budget))
    splits = "1x2" if dry else "1x20,4x5"
    for name, model in (("card-new", plan.out("train") / "model"), ("card-bundled", "natural-ddpm")):
        steps.append(Step(name, 3, ["scripts/eval_prior.py", "--set", str(plan.heldout), "--model", str(model),
                                    "--tasks", "sr4,inp_box,color", "--splits", splits, "--device", plan.device,
                                    "--json", str(plan.out(name) / "card.json")], 60 if dry else 120,
                          f"held-out card of the {'new' if name == 'card-new' else 'bundled'} prior: sr4 against "
                          "bicubic, inp_box against H^+ y, colour against the grey input", check=card,
                          out=plan.out(name), stage=2))
    return steps


def all_steps(plan: Plan) -> list[Step]:
    return [prelude(plan)] + part1(plan) + part2(plan) + part3(plan)


# --------------------------------------------------------------------------- running them
def one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def error_line(log: Path) -> str:
    """The line that says why a step failed: the last line naming an error, else the last line."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()] if log.exists() else []
    for line in reversed(lines):
        if any(w in line for w in ("Error", "error:", "FAILED", "Exception", "Killed")):
            return one_line(line)
    return one_line(lines[-1]) if lines else "no output"


class Session:
    def __init__(self, args, plan: Plan):
        self.args, self.plan = args, plan
        self.out = Path(args.out)
        self.fork = not args.spawn
        self.records: list[dict] = []
        self.order = {s.name: i for i, s in enumerate(all_steps(plan))}  # the summary lists steps in this order
        self.started = time.time()
        self.info = {"mode": "dry (CPU, tiny)" if plan.dry else "real", "card": plan.card,
                     "python": platform.python_version(), "torch": None, "host": platform.node(),
                     "install": os.environ.get("GPU_SESSION_INSTALL", "not recorded"),
                     "minutes": args.minutes, "parts": args.parts, "work": str(plan.work),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "start_mode": None,
                     "held_out": str(plan.heldout),
                     "photos": str(plan.photos) if plan.photos else "built on the machine (--skip-missing)",
                     "init": str(plan.init) if plan.init else None}

    # the summary ----------------------------------------------------------------------------
    def write_summary(self, final: bool = False) -> None:
        elapsed = time.time() - self.started
        data = {**self.info, "seconds": round(elapsed, 1), "finished": final,
                "passed": sum(r["status"] == "passed" for r in self.records),
                "failed": [r["name"] for r in self.records if r["status"] in ("failed", "timeout")],
                "skipped": [r["name"] for r in self.records if r["status"] in ("skipped", "not run")],
                "steps": sorted(self.records, key=lambda r: self.order.get(r["name"], len(self.order)))}
        write_json(self.out / "summary.json", data, indent=1)
        write_text(self.out / "summary.md", summary_markdown(data, self.plan))

    def record(self, step: Step, status: str, seconds: float = 0.0, error: str | None = None,
               numbers: dict | None = None) -> None:
        self.records.append({"name": step.name, "part": step.part, "status": status, "seconds": round(seconds, 1),
                             "what": step.what, "command": step.command(), "error": error, "numbers": numbers or {},
                             "log": f"logs/{step.name}.log"})
        tag = {"passed": "ok", "failed": "FAILED", "timeout": "TIMEOUT"}.get(status, status)
        print(f"[{time.time() - self.started:6.0f} s] part {step.part} {step.name}: {tag}"
              + (f" ({seconds:.0f} s)" if seconds else "") + (f": {error}" if error else ""), flush=True)
        self.write_summary()

    # one part --------------------------------------------------------------------------------
    def run_part(self, steps: list[Step], deadline: float, jobs: int) -> None:
        logs = self.plan.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for stage in sorted({s.stage for s in steps}):
            queue = [s for s in steps if s.stage == stage]
            running: dict[int, tuple[Step, float, float]] = {}  # pid -> step, start, its deadline
            while queue or running:
                while queue and len(running) < jobs:
                    step = queue.pop(0)
                    if step.gpu_only and self.plan.device != "cuda":
                        self.record(step, "skipped", error=f"needs a GPU: {step.gpu_only}"
                                    + ("" if self.plan.dry else " (no CUDA GPU on this machine)"))
                        continue
                    left = deadline - time.time()
                    if left < 10:
                        self.record(step, "not run", error=f"part {step.part}'s time was spent ({left:.0f} s left)")
                        continue
                    limit = min(step.timeout, left)
                    if step.budget is not None:
                        extra, limit = step.budget(left)
                        step.argv, limit = [*step.argv, *extra], min(limit, left)
                    if step.out is not None:
                        step.out.mkdir(parents=True, exist_ok=True)
                    env = {"PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "10", "GPU_SESSION_START":
                           "fork" if self.fork else "spawn", **step.env}
                    if self.plan.dry:
                        env.update(GPU_SESSION_THREADS="1", OMP_NUM_THREADS="1")
                    pid = start(step.argv, logs / f"{step.name}.log", env, self.fork)
                    running[pid] = (step, time.time(), time.time() + limit)
                for pid, (step, began, until) in list(running.items()):
                    code = exit_code(pid)
                    if code is None and time.time() < until:
                        continue
                    if code is None:
                        end_group(pid)
                    else:
                        end_group(pid, grace=1.0)
                    del running[pid]
                    self.finish(step, code, time.time() - began, until - began)
                time.sleep(0.1)

    def finish(self, step: Step, code: int | None, seconds: float, limit: float) -> None:
        log = self.plan.work / "logs" / f"{step.name}.log"
        if code is None:  # what it left (a benchmark's JSON so far, a checkpointed model) still counts
            self.record(step, "timeout", seconds, f"ran over its {limit:.0f} s; last line: {error_line(log)}",
                        self.partial(step))
            return
        numbers: dict = {}
        if (code == 0 or step.check_decides) and step.check is not None:
            try:
                numbers = step.check(step, self.plan)
            except Failed as failed:
                numbers = failed.args[1] if len(failed.args) > 1 else {}
                self.record(step, "failed", seconds, one_line(str(failed.args[0])), numbers)
                return
            except Exception as error:  # noqa: BLE001 - a check that breaks is a failed step, not a stopped session
                self.record(step, "failed", seconds, f"its output could not be read: {one_line(repr(error))}")
                return
            code = 0
        if code != 0:
            self.record(step, "failed", seconds, f"exit {code}: {error_line(log)}", self.partial(step))
            return
        self.record(step, "passed", seconds, numbers=numbers)

    def partial(self, step: Step) -> dict:
        """The numbers a step that failed or ran over left behind, if any."""
        if step.check is None:
            return {}
        try:
            return step.check(step, self.plan)
        except Failed as failed:
            return failed.args[1] if len(failed.args) > 1 else {}
        except Exception:  # noqa: BLE001 - nothing readable left
            return {}

    # the session -------------------------------------------------------------------------------
    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        self.plan.work.mkdir(parents=True, exist_ok=True)
        self.info["torch"] = torch_version()
        if self.fork and not self.preflight():
            self.fork = False
        self.info["start_mode"] = "fork (pre-imported)" if self.fork else "spawn (fresh interpreter)"
        self.write_summary()
        parts = self.args.parts
        end = self.started + self.args.minutes * 60 - PACK_SECONDS
        self.run_part([prelude(self.plan)], end, 1)
        total = sum(SHARES[p] for p in parts)
        mark = self.started
        for part in parts:
            mark += SHARES[part] / total * (end - self.started)
            deadline = end if part == parts[-1] else mark
            budget = deadline - time.time()
            print(f"[{time.time() - self.started:6.0f} s] part {part}: {PART_TITLES[part]} ({budget:.0f} s)",
                  flush=True)
            steps = [s for s in all_steps(self.plan) if s.part == part]
            if self.args.only:
                steps = [s for s in steps if s.name in self.args.only]
            self.run_part(steps, deadline, self.args.jobs if part == 1 else 1)
            if self.args.pack:
                self.pack()
        self.write_summary(final=True)
        if self.args.pack:
            self.pack()
        failed = [r for r in self.records if r["status"] in ("failed", "timeout")]
        print(f"done in {time.time() - self.started:.0f} s: {sum(r['status'] == 'passed' for r in self.records)} "
              f"passed, {len(failed)} failed; {self.out / 'summary.md'}", flush=True)
        return 1 if failed else 0

    def preflight(self) -> bool:
        """Can a forked child reach the GPU? (Only if nothing here touched CUDA; else start fresh ones.)"""
        if self.plan.device != "cuda":
            return True
        log = self.plan.work / "logs" / "preflight.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        code = run_command(["-m", "restore.bench.session_steps", "cuda-check"], log, timeout=120, fork=True)
        if code != 0:
            print(f"note: a forked child could not use CUDA ({error_line(log)}); starting fresh interpreters",
                  flush=True)
        return code == 0

    def pack(self) -> None:
        """session.tar.gz (logs, JSON, CSV, XML and final images) and model.tar (the trained model
        folder with its loss.csv) into --out, each in parts of 15 MB when larger (the device tool
        returns files of at most 16 MiB): `cat NAME.part-* > NAME`."""
        work = self.plan.work
        blob = self.out / "session.tar.gz.tmp"
        with tarfile.open(blob, "w:gz") as tar:
            for path in sorted(work.rglob("*")):
                if path.is_file() and (path.suffix in LOG_KEEP or path.name in IMAGE_KEEP) \
                        and "model" not in path.relative_to(work).parts[:3]:
                    tar.add(path, arcname=str(Path("session") / path.relative_to(work)))
        split(blob, self.out / "session.tar.gz")
        model = self.plan.out("train") / "model"
        if (model / "config.json").exists():
            blob = self.out / "model.tar.tmp"
            with tarfile.open(blob, "w") as tar:
                tar.add(model, arcname="model")
                loss = self.plan.out("train") / "loss.csv"
                if loss.exists():
                    tar.add(loss, arcname="model/loss.csv")
            split(blob, self.out / "model.tar")


def split(blob: Path, target: Path, size: int = 15 * 2**20) -> None:
    """Move `blob` to `target`, or to target.part-00, -01, ... when it is larger than `size`."""
    for old in [target, *target.parent.glob(target.name + ".part-*")]:
        old.unlink(missing_ok=True)
    if blob.stat().st_size <= size:
        os.replace(blob, target)
        return
    with open(blob, "rb") as f:
        part = 0
        while chunk := f.read(size):
            Path(f"{target}.part-{part:02d}").write_bytes(chunk)
            part += 1
    blob.unlink()


def torch_version() -> str | None:
    try:
        import torch

        return torch.__version__
    except ImportError:
        return None


def find_card() -> str | None:
    """The GPU's name from nvidia-smi (CUDA itself is left untouched: the runner forks)."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    return names[0] if out.returncode == 0 and names else None


def preload() -> bool:
    """Import what the steps import, once, before forking; False if that touched CUDA (then every
    step starts as a fresh interpreter: a forked child cannot use a CUDA its parent initialised)."""
    import importlib

    for module in ("torch", "diffusers", "lpips", "piq", "matplotlib.pyplot", "restore.api", "restore.cli.restore",
                   "restore.cli.evaluate", "restore.training.train", "restore.training.held_out", "restore.bench.gpu",
                   "restore.bench.precision", "torch.distributed.run", "pytest"):
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - the step that needs it says so in its own log
            print(f"note: preloading {module} failed: {one_line(repr(error))}", flush=True)
    try:  # diffusers imports its classes on first use
        from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel  # noqa: F401
    except Exception:  # noqa: BLE001
        pass
    import torch

    return not torch.cuda.is_initialized()


# --------------------------------------------------------------------------- the summary file
def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _numbers_cell(numbers: dict) -> str:
    keep = {k: v for k, v in numbers.items() if not isinstance(v, (dict, list)) and v is not None}
    cell = ", ".join(f"{k} {_fmt(v)}" for k, v in keep.items())[:400]
    return cell + ("; tables below" if any(isinstance(v, (dict, list)) and v for v in numbers.values()) else "")


REPORT_STARTS = {"bench-gpu": "GFLOP per image per call", "precision": "differences against fp32"}


def _table_from_log(plan: Plan, name: str) -> list[str]:
    """The report a benchmark printed at its end (its first line has REPORT_STARTS[name]), without
    the progress lines it wrote to stderr meanwhile."""
    log = plan.work / "logs" / f"{name}.log"
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    starts = [i for i, ln in enumerate(lines) if REPORT_STARTS[name] in ln and not ln.startswith("[")]
    if not starts:
        return []
    return [ln for ln in lines[starts[-1]:] if not ln.startswith(("[", "$ ", "note:", "warning", "Warning"))]


def summary_markdown(data: dict, plan: Plan) -> str:
    lines = [f"# GPU session: {data['card'] or 'no GPU'} ({data['mode']})", "",
             f"Started {data['started']} on {data['host']}; torch {data['torch']}, Python {data['python']}; "
             f"{data['seconds']:.0f} s of {data['minutes'] * 60:.0f}; parts {', '.join(map(str, data['parts']))}; "
             f"steps started by {data['start_mode']}; install: {data['install']}.", "",
             f"{data['passed']} passed, {len(data['failed'])} failed or over time"
             + (f" ({', '.join(data['failed'])})" if data['failed'] else "")
             + f", {len(data['skipped'])} skipped or not run" + ("" if data["finished"] else " (still running)") + ".",
             "", "| part | step | status | s | numbers, or why it failed | what |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in data["steps"]:
        cell = r["error"] if r["error"] else _numbers_cell(r["numbers"])
        lines.append(f"| {r['part']} | {r['name']} | {r['status']} | {r['seconds']:.0f} | {cell} | {r['what']} |")
    by_name = {r["name"]: r for r in data["steps"]}
    tests = by_name.get("pytest-cuda", {}).get("numbers", {})
    if tests.get("failed_tests"):
        lines += ["", "## Failed CUDA tests", ""] + [f"- {t}" for t in tests["failed_tests"]]
    for name, title in (("bench-gpu", "scripts/bench.py gpu"), ("precision", "scripts/bench.py precision")):
        table = _table_from_log(plan, name)
        if table:
            lines += ["", f"## {title}", "", *table]
    new, old = by_name.get("card-new", {}).get("numbers") or {}, by_name.get("card-bundled", {}).get("numbers") or {}
    if new or old:
        tasks = list(new or old)
        splits = [k for k in (new or old)[tasks[0]] if k not in ("baseline", "baseline_name", "images")]
        label = {k: f"DDRM {k[2:]}" if k.startswith("1x") else f"Nested {k}" for k in splits}
        last = splits[-1]
        lines += ["", "## The prior's held-out card (mean PSNR dB / LPIPS)", "",
                  "| task | baseline | " + " | ".join(f"new {label[k]}" for k in splits) + " | "
                  + " | ".join(f"bundled {label[k]}" for k in splits) + f" | new - bundled, {label[last]} PSNR |",
                  "|" + " --- |" * (3 + 2 * len(splits))]
        for task in tasks:
            row = (new or old)[task]
            cells = [f"{row.get('baseline_name')} {_pair(row.get('baseline'))}"]
            cells += [_pair((source.get(task) or {}).get(k)) for source in (new, old) for k in splits]
            a, b = ((source.get(task) or {}).get(last) or {} for source in (new, old))
            gain = a.get("psnr") - b.get("psnr") if a.get("psnr") is not None and b.get("psnr") is not None else None
            cells.append("-" if gain is None else f"{gain:+.2f}")
            lines.append(f"| {task} ({row.get('images')} images) | " + " | ".join(cells) + " |")
    train = by_name.get("train", {}).get("numbers")
    if train:
        lines += ["", f"Training: {train.get('steps')} steps in {_fmt(train.get('minutes'))} min, loss "
                      f"{_fmt(train.get('loss_first'))} at the first log, {_fmt(train.get('loss_last10'))} "
                      "(mean of the last 10 logs)."]
    lines += ["", "Every number, and each step's command: summary.json; logs and outputs: session.tar.gz "
                  "(or the work folder)."]
    return "\n".join(lines) + "\n"


def _pair(scores: dict | None) -> str:
    if not scores:
        return "-"
    p, q = scores.get("psnr"), scores.get("lpips")
    return f"{p:.2f} / {q:.3f}" if p is not None and q is not None else f"{p}"


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restore.bench.session", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_session_out", help="where the results go "
                        "(default $OUT, else gpu_session_out/)")
    parser.add_argument("--dry", action="store_true", default=os.environ.get("GPU_SESSION_DRY") == "1",
                        help="CPU, tiny sizes, a few steps (also GPU_SESSION_DRY=1)")
    parser.add_argument("--minutes", type=float, default=None, help="the whole session (default 9; --dry: 10)")
    parser.add_argument("--parts", default="1,2,3", help="which parts, in order (default 1,2,3)")
    parser.add_argument("--only", default="", help="only these steps (comma-separated names; see --list)")
    parser.add_argument("--jobs", type=int, default=None, help="part 1's steps at a time (default 4; --dry: 2)")
    parser.add_argument("--spawn", action="store_true", help="start every step as a fresh interpreter")
    parser.add_argument("--pack", action="store_true", help="pack the work into session.tar.gz and model.tar.part-NN")
    parser.add_argument("--work", help="work folder (default: OUT/work; with --pack a temporary folder)")
    parser.add_argument("--heldout", default=str(ROOT / ".train" / "heldout"),
                        help="the held-out PNGs (scripts/gpu_session_prepare.sh writes them)")
    parser.add_argument("--photos", default=str(ROOT / ".train" / "photos.npz"),
                        help="the training photos (else those this machine has are packed)")
    parser.add_argument("--init", default=str(ROOT / ".train" / "init"),
                        help="continue training from this model folder when it exists")
    parser.add_argument("--list", action="store_true", help="print the steps and their commands; run nothing")
    args = parser.parse_args(argv)
    args.minutes = args.minutes or (10.0 if args.dry else 9.0)
    args.jobs = args.jobs or (2 if args.dry else 4)
    try:
        args.parts = [int(p) for p in args.parts.split(",")]
        assert args.parts and all(p in SHARES for p in args.parts)
    except (ValueError, AssertionError):
        parser.error("--parts: some of 1,2,3, comma-separated")
    args.only = {s for s in args.only.split(",") if s}
    out = Path(args.out)
    card = None if args.dry else find_card()
    if not args.dry and card is None:
        if not args.list:
            print("error: no CUDA GPU here (nvidia-smi finds none); the session is for a GPU machine: run it with "
                  "--dry to check its steps on this CPU", file=sys.stderr)
            return 2
        card = "(listed without a GPU)"
    work = Path(args.work) if args.work else (Path(tempfile.mkdtemp(prefix="gpu_session_")) if args.pack and
                                               not args.list else out / "work")
    plan = Plan(dry=args.dry, card=card, work=work.resolve(), heldout=Path(args.heldout).resolve(),
                photos=Path(args.photos).resolve() if Path(args.photos).is_file() else None,
                init=Path(args.init).resolve() if (Path(args.init) / "config.json").is_file() else None)
    if args.dry:
        plan.heldout, plan.photos, plan.init = plan.inputs / "heldout", plan.inputs / "photos.npz", None
    if args.list:
        for step in all_steps(plan):
            if not args.only or step.name in args.only:
                print(f"part {step.part} {step.name} ({step.timeout:.0f} s){' [GPU only]' if step.gpu_only else ''}: "
                      f"{step.what}\n    {step.command()}")
        return 0
    known = {s.name for s in all_steps(plan)}
    if args.only - known:
        parser.error(f"--only: unknown step(s) {', '.join(sorted(args.only - known))}; see --list")
    if not args.spawn and not preload():
        print("note: importing the toolkit initialised CUDA; every step starts as a fresh interpreter", flush=True)
        args.spawn = True
    return Session(args, plan).run()


if __name__ == "__main__":
    raise SystemExit(main())
