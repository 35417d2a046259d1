"""Batch evaluation: every image of a folder restored by several solvers at equal network calls,
scored at every anytime step; resumable, and sharded over `torch.distributed` ranks.

Used by `scripts/evaluate.py` (restore.cli.evaluate) and from Python (`run_evaluation`).

What is computed
- Images (restore.evaluation.images): every image file under the data folder (recursive, sorted by
  relative POSIX path; hidden entries and the output folder skipped), RGB, centre-cropped and
  resized to the restoration size (`--size`, default the model's).
- Seeds: image `rel` gets an observation seed and a sampler seed from (`--seed`, `rel`) by
  SHA-256 (common random numbers across solvers); candidate k draws from its own generator
  (restore.restoration.seeds), so numbers do not depend on the order, the batch, the process or
  the number of candidates (up to float rounding of batched convolutions).
- Observation: y = H x + noise, drawn once per image and shared by every solver and baseline.
- Solvers: any of restore.settings.schema.SOLVER_NAMES (default "nested" = Nested DDRM with outer x
  inner calls, and "ddrm"); the plain ones get as many calls as the nested split makes, unless
  `steps` is given. Each is driven by a solvers.Run; with
  `--candidates K` and `--choose oracle-lpips` or `oracle-regions` a solver gives more groups
  (restore.evaluation.solve).
- Rows (`per_image.csv`): image, solver (group), nfe, psnr, ssim, lpips, seconds; one per anytime
  step (nested: each outer result; plain: each call's x0 estimate, the last its result).
  Baselines, nfe 0: "pinv" (H^+ y) and, for super-resolution, "bicubic". lpips is empty when
  LPIPS is unavailable. seconds: the solver's wall time since the start of its batch, scoring
  excluded.
- `summary.json`: per group and nfe the mean and population std of each metric, the image count,
  the last nfe as "final", the settings; always rebuilt from the rows. `anytime.png`: mean PSNR
  and LPIPS against network calls with +-1 std bands (the Nested Diffusion paper's Fig. 4 view).
  `images/<group>/<rel>.png` with `--save-images`: the final restorations (`nested-oracle4/` for
  the group nested/oracle4).

Resuming
Rows are appended to `rows.rank<k>.csv` one (image, group) at a time, flushed and fsynced. On
start, rank 0 keeps only complete groups (a group cut by a kill is dropped) and only the missing
ones are computed. `run.json` holds the arguments that determine the numbers; other ones are
refused unless `--overwrite` (which deletes this tool's own files in the folder, nothing else).
Not compared: --batch-size, --quiet, --overwrite, --device, --limit, the number of processes.

Distributed
With `torchrun` (WORLD_SIZE > 1): nccl on CUDA (one GPU per LOCAL_RANK), gloo on CPU. Rank 0
checks the folder and broadcasts the work left; rank k takes every world_size-th image of it; rows
go through files in the output folder (a filesystem every node sees); rank 0 merges them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from restore.errors import UsageError, WriteError, one_line
from restore.names import check_path
from restore.evaluation.batch import build_frame, evaluate_batch
from restore.evaluation.distributed import Dist, init_distributed
from restore.evaluation.folder import Writer, merge, prepare
from restore.evaluation.images import (
    IMAGE_EXTENSIONS,
    check_images,
    find_images,
    walk_images,
)
from restore.evaluation.report import Progress, print_table
from restore.evaluation.rows import ROW_PREFIX
from restore.evaluation.solve import base_solver, candidate_groups, oracle_of
from restore.io.locks import FolderLock
from restore.models.loading import configure
from restore.models.network import plan_network
from restore.models.prior import load_prior
from restore.quality.baselines import task_baselines
from restore.quality.metrics import lpips_available
from restore.restoration.seeds import image_seeds
from restore.restoration.sizing import Frame, simulation_frame
from restore.settings.build import boundary_margin, build_operator, resolve_device
from restore.settings.configs import describe as describe_config
from restore.settings.model_spec import resolve_model
from restore.settings.schema import SOLVER_NAMES, Settings

__all__ = ["SOLVERS", "CHOICES", "EvalConfig", "find_images", "image_seeds", "expected_nfes", "run_evaluation"]

SOLVERS = ("nested", "ddrm")  # the default comparison; any of SOLVER_NAMES may be asked for
CHOICES = ("none", "oracle-lpips", "oracle-regions")


def expected_nfes(group: str, settings: Settings) -> list[int]:
    """The nfe of every row a complete (image, group) has."""
    solver = base_solver(group)
    if solver not in SOLVER_NAMES:
        return [0]  # a baseline
    settings = replace(settings, solver=solver)
    if settings.nested:
        return [sum(settings.budgets[: j + 1]) for j in range(settings.outer)]
    return list(range(1, settings.steps + 1))


# --------------------------------------------------------------------------- the run
@dataclass
class EvalConfig:
    """Everything an evaluation needs besides the restoration Settings."""

    data: Path
    out: Path
    solvers: tuple[str, ...] = SOLVERS
    choose: str = "none"
    batch_size: int = 4
    save_images: bool = False
    overwrite: bool = False
    quiet: bool = False
    limit: int | None = None
    skip_unreadable: bool = False
    max_pixels: int | None = None  # the largest image decoded (None: restore.io.images.MAX_PIXELS)
    device: str = "auto"
    images: list[str] = field(default_factory=list)  # filled by run_evaluation
    folders: list[dict[str, str]] = field(default_factory=list)  # the subfolders that could not be listed
    loops: list[str] = field(default_factory=list)  # links to a folder above them, not followed


def _identity(settings: Settings, cfg: EvalConfig) -> dict[str, Any]:
    """The arguments that determine the numbers (compared on restart)."""
    s = settings.as_dict()
    s.pop("solver")
    return {"data": str(cfg.data.resolve()), "solvers": list(cfg.solvers), "choose": cfg.choose,
            "save_images": cfg.save_images, "settings": s}


def run_evaluation(settings: Settings, cfg: EvalConfig, explicit_steps: bool = False) -> dict[str, Any] | None:
    """Evaluate every image of cfg.data; returns the summary on rank 0 (None on other ranks).

    settings: the restoration settings (solver ignored); unless `explicit_steps`, the plain
    solvers' steps are set to the nested split's calls (equal network calls)."""
    for name in cfg.solvers:
        if name not in SOLVER_NAMES:
            raise UsageError(f"unknown solver {name!r} in --solvers; choose from {', '.join(SOLVER_NAMES)}")
        if settings.boundary == "exact":
            replace(settings, solver=name).validate()  # the SVD solvers cannot restore through H and H^T
    if not cfg.solvers or len(set(cfg.solvers)) != len(cfg.solvers):
        raise UsageError("--solvers must name each solver once, e.g. nested,ddrm")
    if cfg.choose not in CHOICES:
        raise UsageError(f"--choose must be one of {', '.join(CHOICES)} in evaluate.py, got {cfg.choose!r}")
    if cfg.choose != "none" and settings.candidates < 2:
        raise UsageError(f"--choose {cfg.choose} chooses among candidates: give --candidates 2 or more")
    if cfg.choose != "none" and not lpips_available():
        raise UsageError(f"--choose {cfg.choose} needs LPIPS, whose AlexNet weights were not found (see data/weights)")
    if cfg.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    if cfg.limit is not None and cfg.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {cfg.limit}")
    data, out = Path(cfg.data), Path(cfg.out)
    check_path(data, "--data")
    check_path(out, "--out")
    if not data.is_dir():
        raise UsageError(f"data folder {data} not found" if not data.exists() else f"--data {data} is not a folder")
    walk = walk_images(data, exclude=out)
    images = walk.images
    if not images:
        unread = "".join(f"; {u['image']} ({u['error']})" for u in walk.unreadable[:3])
        raise UsageError(f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) found under {data}{unread}")
    cfg.images = images = images[: cfg.limit] if cfg.limit is not None else images
    cfg.folders, cfg.loops = walk.unreadable, walk.loops

    rank0 = int(os.environ.get("RANK", "0")) == 0
    if not explicit_steps:
        settings = replace(settings, steps=sum(settings.budgets))
    elif settings.steps != sum(settings.budgets) and any(replace(settings, solver=s).nested for s in cfg.solvers) \
            and any(not replace(settings, solver=s).nested for s in cfg.solvers) and not cfg.quiet and rank0:
        print(f"note: plain solvers run {settings.steps} network calls, nested ones {sum(settings.budgets)} "
              "(--steps given); leave --steps out to compare at equal cost", file=sys.stderr)
    model = resolve_model(settings.model, quiet=cfg.quiet or not rank0)
    if Path(os.path.expanduser(model)).exists():
        model = str(Path(os.path.expanduser(model)).resolve())
    mask = str(Path(settings.mask).resolve()) if settings.mask else None
    kernel = str(Path(settings.kernel).resolve()) if settings.kernel else None
    settings = replace(settings, model=model, mask=mask, kernel=kernel)

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder; choose another --out")
    dist, device = init_distributed(resolve_device(cfg.device))
    held: list[FolderLock] = []  # rank 0 holds the output folder for the whole run
    try:
        return _run(settings, cfg, images, data, out, device, dist, held)
    except OSError as error:  # a full disk, a folder turned read-only: the rows written are whole
        raise WriteError(f"cannot write to {out}: {one_line(error)}; the rows written so far are kept: free the "
                         "space or fix the folder, then run the same command again to resume") from None
    finally:
        for lock in held:
            lock.release()
        dist.close()


def _frames(settings: Settings, sizes: dict[str, tuple[int, int]], prior) -> dict[str, Frame]:
    """Each image's frame (restore.restoration.sizing; the per-image notes are the module's documented rules)."""
    margin = boundary_margin(settings)
    return {rel: simulation_frame(settings, h, w, prior, note=lambda line: None, margin=margin)
            for rel, (h, w) in sizes.items()}


def _run(settings: Settings, cfg: EvalConfig, images, data: Path, out: Path, device, dist: Dist, held: list):
    say = (lambda line: None) if cfg.quiet or dist.rank else (lambda line: print(f"note: {line}", file=sys.stderr))
    if (applied := describe_config(settings)) is not None:  # as anytime-restore says it
        say(applied)
    prior = configure(load_prior(settings.model, device), settings, note=say)
    solver_groups = {s: candidate_groups(s, settings.candidates, oracle_of(cfg.choose)) for s in cfg.solvers}
    baselines = task_baselines(settings.task, settings.boundary)
    groups = [g for s in cfg.solvers for g in solver_groups[s]] + baselines
    expected = {g: expected_nfes(g, settings) for g in groups}
    identity = _identity(settings, cfg)

    # rank 0 reads every image, claims the folder and finds the work left; every rank gets the same plan
    plan: Any = None
    if dist.rank == 0:
        try:
            if out.is_dir():  # another evaluation writing here is refused at once
                held.append(FolderLock(out, "output folder"))
            sizes, unreadable = check_images(data, images, cfg.skip_unreadable, cfg.max_pixels, cfg.folders)
            frames = _frames(settings, sizes, prior)
            for frame in set(frames.values()):  # refuse a size that cannot fit before the first call
                plan_network(prior, device, cfg.batch_size * settings.candidates, frame.height, frame.width, settings.tile)
                build_operator(settings, (frame.height, frame.width))  # a bad kernel or mask before any folder
            if not held:  # a new folder, made once the images and sizes are known to be fine
                out.mkdir(parents=True, exist_ok=True)
                held.append(FolderLock(out, "output folder"))
            done = prepare(out, identity, cfg.overwrite, expected)
            todo = [(rel, [g for g in groups if (rel, g) not in done]) for rel in images if rel in sizes]
            plan = ([(rel, work, frames[rel]) for rel, work in todo if work], unreadable)
        except UsageError as error:
            plan = error
    plan = dist.broadcast(plan)
    if isinstance(plan, UsageError):
        if dist.rank == 0:
            raise plan
        raise SystemExit(2)  # rank 0 says why
    plan, unreadable = plan
    images = [rel for rel in images if rel not in {u["image"] for u in unreadable}]
    if unreadable and dist.rank == 0 and not cfg.quiet:
        print(f"note: skipping {len(unreadable)} unreadable image(s) and folder(s): "
              f"{', '.join(u['image'] for u in unreadable)}", file=sys.stderr)
    if cfg.loops and dist.rank == 0 and not cfg.quiet:
        print(f"note: not following {len(cfg.loops)} link(s) to a folder above them (a loop): {', '.join(cfg.loops)}",
              file=sys.stderr)
    mine = plan[dist.rank :: dist.world]
    by_frame: dict[Frame, list] = {}
    for rel, work, frame in mine:  # batched by size, largest group first
        by_frame.setdefault(frame, []).append((rel, work))

    progress = Progress(len(images), len(images) - len(plan), len(mine), dist, cfg.quiet, cfg.solvers)
    writer = Writer(out / f"{ROW_PREFIX}{dist.rank}.csv") if mine else None
    try:
        for n, (frame, items) in enumerate(sorted(by_frame.items(), key=lambda kv: -len(kv[1]))):
            size = build_frame(settings, cfg.solvers, prior, frame, device, min(cfg.batch_size, len(items)), warm_up=n == 0)
            for start in range(0, len(items), cfg.batch_size):
                batch = items[start : start + cfg.batch_size]
                evaluate_batch(settings, cfg, size, batch, data, out, device, solver_groups, writer, progress)
                progress.images_done(len(batch))
    finally:
        if writer is not None:
            writer.close()
        progress.close()

    dist.barrier()
    if dist.rank != 0:
        return None
    shapes = sorted({f"{f.shown[1]}x{f.shown[0]}" for _, _, f in plan})
    settings_out = {**identity["settings"], "solvers": list(cfg.solvers), "choose": cfg.choose,
                    "groups": groups, "baselines": baselines, "data": identity["data"],
                    "ddrm_steps": settings.steps, "nested_nfe": sum(settings.budgets),
                    "batch_size": cfg.batch_size, "device": str(device), "world_size": dist.world, "limit": cfg.limit,
                    "lpips_available": lpips_available(), "unreadable": unreadable,
                    "links_not_followed": cfg.loops, "sizes_restored": shapes}
    title = (f"{settings.task}, sigma_y={settings.sigma_y:g}, {len(images)} images, "
             f"{' vs '.join(cfg.solvers)}, {settings.steps} calls")
    if settings.candidates > 1:
        title += f", {settings.candidates} candidates"
    summary = merge(out, images, groups, expected, settings_out, title)
    if not cfg.quiet:
        print_table(summary, out)
    return summary
