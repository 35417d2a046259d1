"""Batch evaluation: every image of a folder restored by several solvers at equal network calls,
scored at every anytime step; resumable, and sharded over `torch.distributed` ranks.

Used by `scripts/evaluate.py` (restore.eval_cli) and from Python (`run_evaluation`).

What is computed
- Images (restore.eval_images): every image file under the data folder (recursive, sorted by
  relative POSIX path; hidden entries and the output folder skipped), RGB, centre-cropped and
  resized to the restoration size (`--size`, default the model's).
- Seeds: image `rel` gets an observation seed and a sampler seed from (`--seed`, `rel`) by
  SHA-256 (common random numbers across solvers); candidate k draws from its own generator
  (restore.job.candidate_seed), so numbers do not depend on the order, the batch, the process or
  the number of candidates (up to float rounding of batched convolutions).
- Observation: y = H x + noise, drawn once per image and shared by every solver and baseline.
- Solvers: any of restore.settings.SOLVER_NAMES (default "nested" = Nested DDRM with outer x
  inner calls, and "ddrm"); the plain ones get as many calls as the nested split makes, unless
  `steps` is given. Each is driven by a solvers.Run; with
  `--candidates K` and `--choose oracle-lpips` a solver gives more groups (restore.eval_solve).
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

import json
import os
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from restore.baselines import baseline_names
from restore.distributed import Dist, init_distributed
from restore.eval_report import Progress, plot, print_table
from restore.eval_images import IMAGE_EXTENSIONS, find_images, image_seeds, load_batch, png_name
from restore.eval_rows import ROW_PREFIX, Row, compact, csv_text, load_all, row_files, summarize, write_atomic
from restore.eval_solve import base_solver, baseline_rows, candidate_groups, solve_batch
from restore.settings import (SOLVER_NAMES, Settings, UsageError, build_operator, build_solver, resolve_device,
                              resolve_model)
from solvers import make_generators

__all__ = ["SOLVERS", "CHOICES", "EvalConfig", "find_images", "image_seeds", "expected_nfes", "run_evaluation"]

SOLVERS = ("nested", "ddrm")  # the default comparison; any of SOLVER_NAMES may be asked for
CHOICES = ("none", "oracle-lpips")
RUN_FILE, SUMMARY_FILE, PER_IMAGE_FILE, PLOT_FILE, IMAGES_DIR = (
    "run.json", "summary.json", "per_image.csv", "anytime.png", "images")


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
    device: str = "auto"
    images: list[str] = field(default_factory=list)  # filled by run_evaluation


def _identity(settings: Settings, cfg: EvalConfig) -> dict[str, Any]:
    """The arguments that determine the numbers (compared on restart)."""
    s = settings.as_dict()
    s.pop("solver")
    return {"data": str(cfg.data.resolve()), "solvers": list(cfg.solvers), "choose": cfg.choose,
            "save_images": cfg.save_images, "settings": s}


def _clear(out: Path) -> None:
    for name in (RUN_FILE, SUMMARY_FILE, PER_IMAGE_FILE, PLOT_FILE):
        (out / name).unlink(missing_ok=True)
    for path in row_files(out):
        path.unlink()
    images = out / IMAGES_DIR
    if images.is_dir():
        for folder in images.iterdir():
            if folder.is_dir() and folder.name.split("-")[0] in SOLVER_NAMES:
                shutil.rmtree(folder, ignore_errors=True)
        if not any(images.iterdir()):
            images.rmdir()


def _describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    if not old:
        return f"its {RUN_FILE} is missing or unreadable"
    flat_old = {**{k: v for k, v in old.items() if k != "settings"}, **old.get("settings", {})}
    flat_new = {**{k: v for k, v in new.items() if k != "settings"}, **new.get("settings", {})}
    diffs = [f"{k} {flat_old.get(k)!r} -> {flat_new.get(k)!r}"
             for k in sorted(set(flat_old) | set(flat_new)) if flat_old.get(k) != flat_new.get(k)]
    return ", ".join(diffs) or "unreadable run.json"


def _prepare(out: Path, identity: dict[str, Any], cfg: EvalConfig, expected: dict[str, list[int]]) -> dict:
    """Rank 0: check or claim the output folder, drop cut groups; returns the done groups."""
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / RUN_FILE
    if run_file.exists() or row_files(out):
        try:
            old = json.loads(run_file.read_text(encoding="utf-8"))["identity"]
        except (OSError, ValueError, KeyError, TypeError):
            old = {}
        if old != identity:
            if not cfg.overwrite:
                raise UsageError(f"{out} holds an evaluation with other arguments ({_describe_changes(old, identity)}); "
                                 "rerun with the same arguments to resume, pass --overwrite to start again, "
                                 "or choose another --out")
            _clear(out)
    write_atomic(run_file, json.dumps({"identity": identity, "command": sys.argv}, indent=2) + "\n")
    return compact(out, expected)


class _Writer:
    """Appends whole (image, group) rows to this rank's row file, flushed and fsynced."""

    def __init__(self, path: Path):
        fresh = not path.exists() or path.stat().st_size == 0
        self.file = open(path, "a", encoding="utf-8", newline="")
        if fresh:
            self.file.write(csv_text([], header=True))
            self.file.flush()

    def write(self, rows: list[Row]) -> None:
        self.file.write(csv_text(rows))
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def _merge(out: Path, images: list[str], order: list[str], expected, settings_out: dict, title: str) -> dict:
    done = load_all(out, expected)
    wanted = set(images)
    rank = {s: i for i, s in enumerate(order)}
    groups = sorted((k for k in done if k[0] in wanted and k[1] in rank), key=lambda k: (k[0], rank[k[1]]))
    rows = [r for k in groups for r in done[k]]
    missing = len(images) * len(order) - len(groups)
    write_atomic(out / PER_IMAGE_FILE, csv_text(rows, header=True))
    summary = summarize(rows, settings_out, order)
    if missing:
        summary["missing_groups"] = missing
    write_atomic(out / SUMMARY_FILE, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    tmp = out / f".{PLOT_FILE}.tmp{os.getpid()}.png"
    plot(summary, tmp, title)
    os.replace(tmp, out / PLOT_FILE)
    return summary


def run_evaluation(settings: Settings, cfg: EvalConfig, explicit_steps: bool = False) -> dict[str, Any] | None:
    """Evaluate every image of cfg.data; returns the summary on rank 0 (None on other ranks).

    settings: the restoration settings (solver ignored); unless `explicit_steps`, the plain
    solvers' steps are set to the nested split's calls (equal network calls)."""
    from restore.metrics import lpips_available

    for name in cfg.solvers:
        if name not in SOLVER_NAMES:
            raise UsageError(f"unknown solver {name!r} in --solvers; choose from {', '.join(SOLVER_NAMES)}")
    if not cfg.solvers or len(set(cfg.solvers)) != len(cfg.solvers):
        raise UsageError("--solvers must name each solver once, e.g. nested,ddrm")
    if cfg.choose not in CHOICES:
        raise UsageError(f"--choose must be one of {', '.join(CHOICES)} in evaluate.py, got {cfg.choose!r}")
    if cfg.choose == "oracle-lpips" and settings.candidates < 2:
        raise UsageError("--choose oracle-lpips chooses among candidates: give --candidates 2 or more")
    if cfg.choose == "oracle-lpips" and not lpips_available():
        raise UsageError("--choose oracle-lpips needs LPIPS, whose AlexNet weights were not found (see data/weights)")
    if cfg.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    if cfg.limit is not None and cfg.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {cfg.limit}")
    data, out = Path(cfg.data), Path(cfg.out)
    if not data.is_dir():
        raise UsageError(f"data folder {data} not found" if not data.exists() else f"--data {data} is not a folder")
    images = find_images(data, exclude=out)
    if not images:
        raise UsageError(f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) found under {data}")
    cfg.images = images = images[: cfg.limit] if cfg.limit is not None else images

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
    settings = replace(settings, model=model, mask=mask)

    dist, device = init_distributed(resolve_device(cfg.device))
    try:
        return _run(settings, cfg, images, data, out, device, dist)
    finally:
        dist.close()


def _run(settings: Settings, cfg: EvalConfig, images, data: Path, out: Path, device, dist: Dist):
    from restore.prior import load_prior

    prior = load_prior(settings.model, device)
    size = settings.size or prior.image_size
    settings = replace(settings, size=size)
    operator = build_operator(settings, size)
    oracle = cfg.choose == "oracle-lpips"
    solver_groups = {s: candidate_groups(s, settings.candidates, oracle) for s in cfg.solvers}
    groups = [g for s in cfg.solvers for g in solver_groups[s]] + baseline_names(operator)
    expected = {g: expected_nfes(g, settings) for g in groups}
    identity = _identity(settings, cfg)

    # rank 0 claims the folder and finds the work left; every rank gets the same plan
    plan: Any = None
    if dist.rank == 0:
        try:
            done = _prepare(out, identity, cfg, expected)
            plan = [(rel, [g for g in groups if (rel, g) not in done]) for rel in images]
            plan = [(rel, todo) for rel, todo in plan if todo]
        except UsageError as error:
            plan = error
    plan = dist.broadcast(plan)
    if isinstance(plan, UsageError):
        if dist.rank == 0:
            raise plan
        raise SystemExit(2)  # rank 0 says why
    mine = plan[dist.rank :: dist.world]

    solvers = {name: build_solver(replace(settings, solver=name), prior, operator) for name in cfg.solvers}
    operator.to(device)
    if mine:
        _warm_up(prior, size, min(cfg.batch_size, len(mine)) * settings.candidates, device)
    progress = Progress(len(images), len(images) - len(plan), len(mine), dist, cfg.quiet, cfg.solvers)
    writer = _Writer(out / f"{ROW_PREFIX}{dist.rank}.csv") if mine else None
    try:
        for start in range(0, len(mine), cfg.batch_size):
            batch = mine[start : start + cfg.batch_size]
            rels = [rel for rel, _ in batch]
            x = load_batch(data, rels, size, device)
            seeds = [image_seeds(settings.seed, rel) for rel in rels]
            y = operator.observe(x, settings.sigma_y, make_generators([s[0] for s in seeds]))
            for name in cfg.solvers:
                # the independent runs give every group but the oracle's; the oracle's is a run of its own
                for steered in (False, True) if oracle else (False,):
                    wanted = [g for g in solver_groups[name] if g.endswith(f"/oracle{settings.candidates}") == steered]
                    idx = [i for i, (_, todo) in enumerate(batch) if set(wanted) & set(todo)]
                    if not idx:
                        continue
                    sub = torch.tensor(idx, device=device)
                    rows, finals = solve_batch(solvers[name], name, [rels[i] for i in idx], x[sub], y[sub],
                                               settings.sigma_y, [seeds[i][1] for i in idx], settings.candidates,
                                               oracle=steered)
                    for j, i in enumerate(idx):
                        rel, todo = batch[i]
                        for group in wanted:
                            if group in todo:
                                writer.write(rows[group][rel])
                                progress.group_done(group, rows[group][rel][-1].psnr)
                        if cfg.save_images and (name in todo or steered):
                            from restore.imageio import save_image

                            folder = (wanted[0] if steered else name).replace("/", "-")  # nested-oracle4
                            save_image(finals[j : j + 1], out / IMAGES_DIR / folder / png_name(rel))
            for group in baseline_names(operator):
                idx = [i for i, (_, todo) in enumerate(batch) if group in todo]
                if idx:
                    sub = torch.tensor(idx, device=device)
                    rows = baseline_rows(operator, group, y[sub], x[sub], [rels[i] for i in idx])
                    for rel, group_rows in rows.items():
                        writer.write(group_rows)
            progress.images_done(len(batch))
    finally:
        if writer is not None:
            writer.close()
        progress.close()

    dist.barrier()
    if dist.rank != 0:
        return None
    settings_out = {**identity["settings"], "solvers": list(cfg.solvers), "choose": cfg.choose,
                    "groups": groups, "baselines": baseline_names(operator), "data": identity["data"],
                    "ddrm_steps": settings.steps, "nested_nfe": sum(settings.budgets),
                    "batch_size": cfg.batch_size, "device": str(device), "world_size": dist.world, "limit": cfg.limit,
                    "lpips_available": _lpips_available()}
    title = (f"{settings.task}, sigma_y={settings.sigma_y:g}, {len(images)} images, "
             f"{' vs '.join(cfg.solvers)}, {settings.steps} calls")
    if settings.candidates > 1:
        title += f", {settings.candidates} candidates"
    summary = _merge(out, images, groups, expected, settings_out, title)
    if not cfg.quiet:
        print_table(summary, out)
    return summary


def _warm_up(prior, size: int, batch: int, device: torch.device) -> None:
    """One untimed network call, so that lazy initialisation (kernels, allocator, autotuning)
    is not billed to the first image's seconds."""
    from restore.eval_solve import sync

    with torch.no_grad():
        prior(torch.zeros(batch, 3, size, size, device=device), torch.full((batch,), 500, device=device))
    sync(device)


def _lpips_available() -> bool:
    from restore.metrics import lpips_available

    return lpips_available()
