"""Batch evaluation: every image of a folder restored by several solvers at equal network calls,
scored at every anytime step; resumable, and sharded over `torch.distributed` ranks.

Used by `scripts/evaluate.py` (see `main`) and usable from Python (`run_evaluation`).

What is computed
- Images: every file with a common image suffix under the data folder (recursive, sorted by
  relative POSIX path; hidden files and folders and the output folder are skipped), loaded as RGB,
  centre-cropped and resized to the restoration size (`--size`, default the model's).
- Seeds: image `rel` gets its own seeds derived from (`--seed`, `rel`) by SHA-256
  (`image_seeds`): one for the observation noise, one for the sampler (the same for every solver,
  common random numbers). Every random draw of an image comes from its own generators (CPU
  generators, so the noise does not depend on the device either), so its numbers do not depend on
  the order, the batch or the process it ran in (up to float rounding of batched convolutions).
- Observation: y = H x + noise, drawn once per image and shared by every solver and baseline.
- Solvers: "nested" (Nested DDRM, outer x inner calls) and "ddrm" (DDRM). By default DDRM gets
  outer x inner steps, the same total number of network calls; a `steps` given explicitly
  (flag or config) is used as is.
- Rows (`per_image.csv`): image, solver, nfe, psnr, ssim, lpips, seconds. Nested: one row per
  outer result (nfe = inner, 2 inner, ...). DDRM: one row per network call, scored on that call's
  x0 prediction (the last one is DDRM's result). Baselines, once per image, nfe 0: "pinv"
  (H^+ y) and, for super-resolution tasks, "bicubic" (the low-resolution measurement upsampled by
  bicubic interpolation). lpips is empty when LPIPS is unavailable (see restore.metrics).
  seconds: wall-clock time of the solver from the start of the image's restoration to that
  record, the scoring excluded; images restored together in a batch share their batch's time.
- `summary.json`: per solver and per nfe the mean and (population) standard deviation of psnr,
  ssim, lpips and seconds over the images, the image count, the last nfe as "final", and the run's
  settings. Always rebuilt from the rows.
- `anytime.png`: mean PSNR and LPIPS against network calls (Nested's outer results as points,
  DDRM's per-call predictions as a line, +-1 std bands), as in Fig. 4 of the Nested Diffusion paper.
- `images/<solver>/<rel>.png` with `--save-images`: the final restorations.

Resuming
Rows are appended to `rows.rank<k>.csv` one (image, solver) group at a time, flushed and fsynced.
On start, rank 0 keeps only complete groups (a group cut by a kill is dropped, the file rewritten
atomically), and only the missing groups are computed; `per_image.csv`, `summary.json` and the
plot are rebuilt from all row files at the end. `run.json` holds the arguments that determine the
numbers; starting again with different ones is refused unless `--overwrite` (which deletes this
tool's own files in the folder, nothing else). Not compared: --batch-size, --quiet, --overwrite,
--device, --limit (raise it to extend a run; the outputs cover the current image list) and the
number of processes (the remaining work is re-sharded).

Distributed
With `torchrun` (WORLD_SIZE > 1) the process group is initialised (nccl on CUDA, one GPU per
LOCAL_RANK; gloo on CPU). Rank 0 checks the folder and broadcasts the work left; rank k takes every
world_size-th image of it; rows go through files in the output folder, which must therefore be on
a filesystem every node sees; after a barrier rank 0 merges them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from restore.baselines import baseline, baseline_names
from restore.distributed import Dist, init_distributed
from restore.eval_rows import (
    COLUMNS,
    ROW_PREFIX,
    Row,
    complete_groups,
    compact,
    csv_text,
    load_all,
    read_rows,
    row_files,
    summarize,
    write_atomic,
)
from restore.settings import (
    ArgumentParser,
    Settings,
    UsageError,
    add_arguments,
    build_operator,
    build_solver,
    load_config,
    resolve_device,
    resolve_model,
    settings_from_args,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SOLVERS",
    "COLUMNS",
    "Row",
    "EvalConfig",
    "find_images",
    "image_seeds",
    "expected_nfes",
    "read_rows",
    "complete_groups",
    "summarize",
    "run_evaluation",
    "build_parser",
    "main",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
SOLVERS = ("nested", "ddrm")
BASELINES = ("pinv", "bicubic")
LABELS = {"nested": "Nested DDRM (outer results)", "ddrm": "DDRM (per-call predictions)"}
RUN_FILE, SUMMARY_FILE, PER_IMAGE_FILE, PLOT_FILE, IMAGES_DIR = (
    "run.json", "summary.json", "per_image.csv", "anytime.png", "images")


# --------------------------------------------------------------------------- images and seeds
def find_images(root: str | Path, exclude: str | Path | None = None) -> list[str]:
    """Relative POSIX paths of the images under `root` (recursive, sorted), skipping hidden
    entries and anything under `exclude` (the output folder)."""
    root = Path(root)
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and (skip is None or (here / d).resolve() != skip)]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append((here / name).relative_to(root).as_posix())
    return sorted(found)


def _hash_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & (2**63 - 1)


def image_seeds(seed: int, rel: str) -> tuple[int, int]:
    """(observation seed, sampler seed) of image `rel` under run seed `seed`: 63-bit integers
    from SHA-256 of "seed/rel/observation" and "seed/rel/sampler"."""
    return _hash_seed(f"{seed}/{rel}/observation"), _hash_seed(f"{seed}/{rel}/sampler")


def expected_nfes(solver: str, settings: Settings) -> list[int]:
    """The nfe of every row a complete (image, solver) group has."""
    if solver == "nested":
        return [settings.inner * (j + 1) for j in range(settings.outer)]
    if solver == "ddrm":
        return list(range(1, settings.steps + 1))
    return [0]


def _png_name(rel: str) -> str:
    """Where --save-images puts image rel: rel itself for a PNG, else rel + ".png" (so that
    a.jpg and a.png do not collide)."""
    return rel if rel.lower().endswith(".png") else rel + ".png"


def _plot(summary: dict[str, Any], path: Path, title: str) -> None:
    from restore.plots import plot_anytime

    curves = {}
    for solver, label in LABELS.items():
        entry = summary["solvers"].get(solver)
        if not entry:
            continue
        nfes = sorted(int(n) for n in entry["nfe"])
        curve: dict[str, Any] = {"nfe": nfes, "style": "points" if solver == "nested" else "line"}
        for metric in ("psnr", "lpips"):
            for part, key in (("mean", metric), ("std", f"{metric}_std")):
                curve[key] = [math.nan if (v := entry["nfe"][str(n)][metric][part]) is None else v for n in nfes]
        curves[label] = curve
    plot_anytime(curves, path, title)


# --------------------------------------------------------------------------- the run
@dataclass
class EvalConfig:
    """Everything an evaluation needs besides the restoration Settings."""

    data: Path
    out: Path
    solvers: tuple[str, ...] = SOLVERS
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
    return {"data": str(cfg.data.resolve()), "solvers": list(cfg.solvers),
            "save_images": cfg.save_images, "settings": s}


def _clear(out: Path, solvers: Iterable[str]) -> None:
    for name in (RUN_FILE, SUMMARY_FILE, PER_IMAGE_FILE, PLOT_FILE):
        (out / name).unlink(missing_ok=True)
    for path in row_files(out):
        path.unlink()
    for solver in set(solvers) | set(SOLVERS):
        shutil.rmtree(out / IMAGES_DIR / solver, ignore_errors=True)
    images = out / IMAGES_DIR
    if images.is_dir() and not any(images.iterdir()):
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
            _clear(out, old.get("solvers", []))
    write_atomic(run_file, json.dumps({"identity": identity, "command": sys.argv}, indent=2) + "\n")
    return compact(out, expected)


def _load_batch(data: Path, rels: list[str], size: int, device: torch.device) -> torch.Tensor:
    from restore.imageio import center_crop_resize, load_image

    images = [center_crop_resize(load_image(data / rel, mode="RGB"), size)[0] for rel in rels]
    return torch.cat(images).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _score(x: torch.Tensor, ref: torch.Tensor) -> dict[str, list[float]]:
    from restore.metrics import compute_all

    return {k: v.detach().cpu().double().tolist() for k, v in compute_all(x, ref).items()}


class _Writer:
    """Appends whole (image, solver) groups to this rank's row file, flushed and fsynced."""

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


def _restore_rows(solver, name, rels, x, y, sigma_y, sampler_seeds):
    """Run one solver on a batch; returns {rel: [Row]} and the final images."""
    from solvers import make_generators

    device = x.device
    generators = make_generators(sampler_seeds)
    rows: dict[str, list[Row]] = {rel: [] for rel in rels}
    records = iter(solver.sample(y, sigma_y, generators))
    elapsed, final = 0.0, None
    while True:
        _sync(device)
        start = time.perf_counter()
        record = next(records, None)
        _sync(device)
        elapsed += time.perf_counter() - start
        if record is None:
            break
        scores = _score(record.x0, x)
        for i, rel in enumerate(rels):
            rows[rel].append(Row(rel, name, record.nfe, scores["psnr"][i], scores["ssim"][i],
                                 scores["lpips"][i], elapsed))
        if record.final:
            final = record.x0
    return rows, final


def _baselines(operator, name, y, x, rels) -> dict[str, list[Row]]:
    _sync(x.device)
    start = time.perf_counter()
    guess = baseline(name, operator, y)
    _sync(x.device)
    seconds = time.perf_counter() - start
    scores = _score(guess, x)
    return {rel: [Row(rel, name, 0, scores["psnr"][i], scores["ssim"][i], scores["lpips"][i], seconds)]
            for i, rel in enumerate(rels)}


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
    _plot(summary, tmp, title)
    os.replace(tmp, out / PLOT_FILE)
    return summary


def _print_table(summary: dict, out: Path, file=sys.stdout) -> None:
    def fmt(stat, spec):
        return "-" if stat["mean"] is None else format(stat["mean"], spec)

    print(f"{summary['images']} images; final results (mean over images):", file=file)
    print(f"  {'solver':<8} {'nfe':>4} {'PSNR':>7} {'SSIM':>6} {'LPIPS':>6} {'seconds':>8}", file=file)
    for solver, entry in summary["solvers"].items():
        f = entry["final"]
        print(f"  {solver:<8} {f['nfe']:>4} {fmt(f['psnr'], '7.2f')} {fmt(f['ssim'], '6.3f')} "
              f"{fmt(f['lpips'], '6.3f')} {fmt(f['seconds'], '8.2f')}", file=file)
    print(f"wrote {out / PER_IMAGE_FILE}, {SUMMARY_FILE}, {PLOT_FILE}", file=file)


def run_evaluation(settings: Settings, cfg: EvalConfig, explicit_steps: bool = False) -> dict[str, Any] | None:
    """Evaluate every image of cfg.data; returns the summary on rank 0 (None on other ranks).

    settings: the restoration settings (solver ignored); unless `explicit_steps`, DDRM's steps
    are set to outer x inner (equal network calls)."""
    from dataclasses import replace

    from restore.prior import load_prior

    for name in cfg.solvers:
        if name not in SOLVERS:
            raise UsageError(f"unknown solver {name!r} in --solvers; choose from {', '.join(SOLVERS)}")
    if not cfg.solvers or len(set(cfg.solvers)) != len(cfg.solvers):
        raise UsageError("--solvers must name each solver once, e.g. nested,ddrm")
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
    if cfg.limit is not None:
        images = images[: cfg.limit]
    cfg.images = images

    if not explicit_steps:
        settings = replace(settings, steps=settings.outer * settings.inner)
    elif settings.steps != settings.outer * settings.inner and set(SOLVERS) <= set(cfg.solvers) \
            and not cfg.quiet and int(os.environ.get("RANK", "0")) == 0:
        print(f"note: DDRM runs {settings.steps} network calls, Nested DDRM {settings.outer * settings.inner} "
              "(--steps given); leave --steps out to compare at equal cost", file=sys.stderr)
    model = resolve_model(settings.model, quiet=cfg.quiet or int(os.environ.get("RANK", "0")) != 0)
    if Path(os.path.expanduser(model)).exists():
        model = str(Path(os.path.expanduser(model)).resolve())
    mask = str(Path(settings.mask).resolve()) if settings.mask else None
    settings = replace(settings, model=model, mask=mask)
    device = resolve_device(cfg.device)

    dist, device = init_distributed(device)
    try:
        return _run(settings, cfg, images, data, out, device, dist, load_prior)
    finally:
        dist.close()


def _run(settings, cfg, images, data, out, device, dist, load_prior):
    from dataclasses import replace

    prior = load_prior(settings.model, device)
    size = settings.size or prior.image_size
    settings = replace(settings, size=size)
    operator = build_operator(settings, size)
    groups = list(cfg.solvers) + baseline_names(operator)
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
        _warm_up(prior, size, min(cfg.batch_size, len(mine)), device)
    progress = _Progress(len(images), len(images) - len(plan), len(mine), dist, cfg.quiet, cfg.solvers)
    writer = _Writer(out / f"{ROW_PREFIX}{dist.rank}.csv") if mine else None
    try:
        for start in range(0, len(mine), cfg.batch_size):
            batch = mine[start : start + cfg.batch_size]
            rels = [rel for rel, _ in batch]
            x = _load_batch(data, rels, size, device)
            seeds = [image_seeds(settings.seed, rel) for rel in rels]
            from solvers import make_generators

            y = operator.observe(x, settings.sigma_y, make_generators([s[0] for s in seeds]))
            for group in groups:
                idx = [i for i, (_, todo) in enumerate(batch) if group in todo]
                if not idx:
                    continue
                sub = torch.tensor(idx, device=device)
                sub_rels = [rels[i] for i in idx]
                if group in solvers:
                    rows, final = _restore_rows(solvers[group], group, sub_rels, x[sub], y[sub],
                                                settings.sigma_y, [seeds[i][1] for i in idx])
                    if cfg.save_images:
                        from restore.imageio import save_image

                        for i, rel in enumerate(sub_rels):
                            save_image(final[i : i + 1], out / IMAGES_DIR / group / _png_name(rel))
                else:
                    rows = _baselines(operator, group, y[sub], x[sub], sub_rels)
                for rel in sub_rels:
                    writer.write(rows[rel])
                    progress.group_done(group, rows[rel][-1].psnr)
            progress.images_done(len(batch))
    finally:
        if writer is not None:
            writer.close()
        progress.close()

    dist.barrier()
    if dist.rank != 0:
        return None
    settings_out = {**identity["settings"], "solvers": list(cfg.solvers), "baselines": groups[len(cfg.solvers):],
                    "data": identity["data"], "ddrm_steps": settings.steps,
                    "nested_nfe": settings.outer * settings.inner, "batch_size": cfg.batch_size,
                    "device": str(device), "world_size": dist.world, "limit": cfg.limit,
                    "lpips_available": _lpips_available()}
    title = (f"{settings.task}, sigma_y={settings.sigma_y:g}, {len(images)} images, "
             f"Nested {settings.outer}x{settings.inner} vs DDRM {settings.steps}")
    summary = _merge(out, images, groups, expected, settings_out, title)
    if not cfg.quiet:
        _print_table(summary, out)
    return summary


def _warm_up(prior, size: int, batch: int, device: torch.device) -> None:
    """One untimed network call, so that lazy initialisation (kernels, allocator, autotuning)
    is not billed to the first image's seconds."""
    with torch.no_grad():
        prior(torch.zeros(batch, 3, size, size, device=device), torch.full((batch,), 500, device=device))
    _sync(device)


def _lpips_available() -> bool:
    from restore.metrics import lpips_available

    return lpips_available()


class _Progress:
    """One tqdm bar per rank (images), postfix: running mean final PSNR per solver."""

    def __init__(self, total: int, done_before: int, mine: int, dist: Dist, quiet: bool, solvers):
        self.solvers, self.sums = solvers, {s: [0.0, 0] for s in solvers}
        self.bar = None
        if quiet:
            return
        from tqdm.auto import tqdm

        if dist.rank == 0:
            print(f"{total} images: {done_before} done before, {total - done_before} to do "
                  f"on {dist.world} process{'es' if dist.world > 1 else ''}", file=sys.stderr)
        desc = f"rank {dist.rank}" if dist.world > 1 else "images"
        self.bar = tqdm(total=mine, desc=desc, unit="img", position=dist.rank, dynamic_ncols=True,
                        leave=True, file=sys.stderr)

    def group_done(self, group: str, psnr: float) -> None:
        if group in self.sums:
            self.sums[group][0] += psnr
            self.sums[group][1] += 1

    def images_done(self, n: int) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix_str(" ".join(f"{s} {t / c:.2f}dB" for s, (t, c) in self.sums.items() if c),
                                 refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="evaluate.py",
        description="Evaluate solvers at equal network calls over a folder of images "
                    "(per-image CSV, summary JSON, anytime plot); resumable; runs under torchrun.")
    parser.add_argument("--data", required=True, help="folder of clean images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (resumed when it holds the same run)")
    parser.add_argument("--solvers", default="nested,ddrm",
                        help="comma-separated solvers to compare (default nested,ddrm; DDRM gets outer x inner "
                             "steps unless --steps is given)")
    parser.add_argument("--batch-size", type=int, default=4, help="images restored together (default 4)")
    parser.add_argument("--save-images", action="store_true", help="also write the final restorations to OUT/images/")
    parser.add_argument("--overwrite", action="store_true", help="discard an existing evaluation in OUT with other arguments")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images (sorted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.solver is not None:
        raise UsageError("evaluate.py compares solvers: use --solvers (e.g. --solvers nested,ddrm), not --solver")
    settings = settings_from_args(args)
    explicit_steps = args.steps is not None or (bool(args.config) and "steps" in load_config(args.config))
    cfg = EvalConfig(data=Path(args.data), out=Path(args.out),
                     solvers=tuple(s.strip() for s in args.solvers.split(",") if s.strip()),
                     batch_size=args.batch_size, save_images=args.save_images, overwrite=args.overwrite,
                     quiet=args.quiet, limit=args.limit, device=args.device)
    from restore.prior import PriorNotFound

    try:
        run_evaluation(settings, cfg, explicit_steps=explicit_steps)
    except (UsageError, PriorNotFound):
        if int(os.environ.get("RANK", "0")) != 0:
            raise SystemExit(2) from None  # every rank fails alike; rank 0 says why
        raise
    return 0
