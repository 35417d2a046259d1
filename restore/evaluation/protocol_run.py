"""Run a benchmark protocol (restore.evaluation.protocol) over a folder: every task, every
`--solvers name@budget`, scored at every anytime step by PSNR, SSIM and LPIPS, with Inception
features kept for FID and KID at the protocol's anytime points; resumable and sharded over
torchrun ranks like restore.evaluation.run, whose folder machinery it reuses.

What is computed
- Images: the protocol's `names` found under --data, or its first `count` images in sorted order
  (restore.evaluation.images.find_images), centre-cropped and resized to the protocol's size (or
  --size, which scales every length of the operators: a smaller, quicker run, not the protocol).
  An image's index in that list seeds its per-image draws (box, random mask, motion kernel).
- Operators: restore.evaluation.protocol_ops.build_task, once per run or once per image as the
  task's `draw` says; images sharing an operator are restored together (--batch-size).
- Measurement: the reference's noiseless measurement plus Gaussian noise of the protocol's std
  (on [-1, 1]), drawn from the image's observation seed (restore.restoration.seeds.image_seeds):
  shared by every solver.
- Solvers: each label's settings are restore.settings.compose of the protocol's noise, the
  task's `settings_task`, --model, --seed and the label's budget (measured configs and task
  defaults apply as for any run; `config: none` in the protocol turns them off), built by
  restore.settings.build.build_solver; the SVD solvers restore through the task's SVD model, the
  matrix-free ones (DPS, DiffPIR) through its exact forward operator.
- Rows (`per_image.csv`, solver = "task/label"): one per image and anytime step as in
  evaluate.py; `seconds` is the solver's wall time per image (the batch's time over its images).
- Features: `features/<task>/<label>/<image>.npz` (nfe, float16 Inception features at the FID
  points: every outer step of a nested solver, `fid.anytime_points` evenly spaced calls of a
  plain one) and `features/reference/<image>.npy` (the clean image's), written before the rows
  they go with, so a complete row group always has its features.
- `summary.json`, `table.md`, `table.tex`, `anytime.png`: restore.evaluation.protocol_table.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from degradations.noise import randn
from restore.errors import UsageError, WriteError, one_line
from restore.evaluation.distributed import Dist, init_distributed
from restore.evaluation.folder import RUN_FILE, Writer, prepare
from restore.evaluation.images import check_images, find_images, load_batch, png_name
from restore.evaluation.protocol import Protocol, SolverSpec
from restore.evaluation.protocol_ops import build_task
from restore.evaluation.rows import ROW_PREFIX, Row, load_all
from restore.evaluation.solve import sync
from restore.io.atomic import atomic_write
from restore.io.images import save_image
from restore.io.locks import FolderLock
from restore.models.loading import configure
from restore.models.network import plan_network
from restore.models.prior import load_prior
from restore.quality.fid import load_inception, to_uint8
from restore.quality.metrics import compute_all
from restore.restoration.seeds import candidate_seed, image_seeds
from restore.settings.build import build_solver, resolve_device
from restore.settings.compose import compose
from restore.settings.model_spec import resolve_model
from restore.settings.schema import MATRIX_FREE, Settings, solver_parts
from solvers import Run, make_generators

FEATURES_DIR = "features"


@dataclass
class ProtocolConfig:
    """Everything a protocol run needs. features: "auto" (Inception, downloaded on first use),
    None (no FID), or a restore.quality.fid.FeatureNet (tests: a small network)."""

    protocol: Protocol
    data: Path
    out: Path
    solvers: list[SolverSpec]
    model: str | None = None
    seed: int = 0
    size: int | None = None
    limit: int | None = None
    tasks: list[str] | None = None
    batch_size: int = 4
    device: str = "auto"
    overwrite: bool = False
    quiet: bool = False
    features: Any = "auto"
    save_images: bool = False
    skip_unreadable: bool = False
    notes: list[str] = field(default_factory=list)


def fid_points(settings: Settings, points: int) -> list[int]:
    """The nfes a group gets FID at: every outer result of a nested solver; `points` evenly
    spaced calls of a plain one, the last included."""
    if settings.nested:
        return expected_nfes(settings)
    return sorted({max(1, round(settings.steps * k / points)) for k in range(1, points + 1)})


def expected_nfes(settings: Settings) -> list[int]:
    if settings.nested:
        return [sum(settings.budgets[: j + 1]) for j in range(settings.outer)]
    return list(range(1, settings.steps + 1))


def select_images(protocol: Protocol, data: Path, out: Path, limit: int | None) -> list[str]:
    """The protocol's images under `data`, in the protocol's order (its index seeds the draws)."""
    found = find_images(data, exclude=out)
    if protocol.names:
        by_name = {Path(rel).name: rel for rel in found}
        missing = [n for n in protocol.names if n not in by_name]
        if len(missing) == len(protocol.names):
            raise UsageError(f"none of the {len(protocol.names)} images protocol {protocol.name} lists "
                             f"({protocol.names[0]}, ...) is under {data}")
        images = [by_name[n] for n in protocol.names if n in by_name]
        if missing:
            print(f"note: {len(missing)} of the protocol's {len(protocol.names)} images are not under {data} "
                  f"(e.g. {missing[0]}); running without them", file=sys.stderr)
    else:
        if not found:
            raise UsageError(f"no images found under {data}")
        images = found[: protocol.count] if protocol.count else found
        if protocol.count and len(found) < protocol.count:
            print(f"note: protocol {protocol.name} takes {protocol.count} images, {data} holds {len(found)}: "
                  "its numbers are not the protocol's", file=sys.stderr)
    return images[:limit] if limit else images


def solver_settings(protocol: Protocol, task: str, spec: SolverSpec, model: str, seed: int, size: int) -> Settings:
    explicit = {"task": protocol.settings_task(task), "sigma_y": protocol.sigma_y, "model": model, "seed": seed,
                "size": size, **spec.settings}
    if isinstance(explicit.get("inner"), tuple):
        explicit["inner"] = list(explicit["inner"])
    return compose(explicit, config=protocol.data.get("config"))


def _draw_key(spec: dict[str, Any], index: int) -> tuple[Any, int | None]:
    """(operator cache key, numpy seed) of an image's draws."""
    draw = spec.get("draw")
    if draw is None:
        return "fixed", None
    if draw["per"] == "run":
        return "run", int(draw.get("seed", 0))
    seed = int(draw.get("seed_base", 0)) + int(draw.get("seed_step", 1)) * index
    return ("image", seed), seed


def run_protocol(cfg: ProtocolConfig) -> dict[str, Any] | None:
    """Run the protocol; returns the summary on rank 0 (None elsewhere)."""
    protocol = cfg.protocol
    tasks = cfg.tasks or list(protocol.tasks)
    unknown = [t for t in tasks if t not in protocol.tasks]
    if unknown:
        raise UsageError(f"protocol {protocol.name} has no task {unknown[0]!r}; its tasks: {', '.join(protocol.tasks)}")
    size = int(cfg.size or protocol.size)
    for task in tasks:
        spec = protocol.tasks[task]
        if spec["operator"] == "resizer" and size % int(spec["factor"]):
            raise UsageError(f"--size {size}: task {task} down-samples by {spec['factor']}: give a multiple of it")
    if cfg.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {cfg.batch_size}")
    data, out = Path(cfg.data), Path(cfg.out)
    if not data.is_dir():
        raise UsageError(f"data folder {data} not found" if not data.exists() else f"--data {data} is not a folder")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder; choose another --out")
    images = select_images(protocol, data, out, cfg.limit)
    model = resolve_model(cfg.model, quiet=True)
    if Path(os.path.expanduser(model)).exists():
        model = str(Path(os.path.expanduser(model)).resolve())
    settings = {(task, s.label): solver_settings(protocol, task, s, model, cfg.seed, size)
                for task in tasks for s in cfg.solvers}
    expected = {f"{task}/{label}": expected_nfes(st) for (task, label), st in settings.items()}
    identity = {"protocol": protocol.name, "protocol_digest": protocol.digest, "data": str(data.resolve()),
                "solvers": [s.label for s in cfg.solvers], "tasks": tasks, "size": size, "seed": cfg.seed,
                "settings": {f"{t}/{label}": st.as_dict() for (t, label), st in settings.items()}}
    dist, device = init_distributed(resolve_device(cfg.device))
    held: list[FolderLock] = []
    try:
        return _run(cfg, tasks, size, images, settings, expected, identity, device, dist, held)
    except OSError as error:
        raise WriteError(f"cannot write to {out}: {one_line(error)}; the rows written so far are kept: free the space "
                         "or fix the folder, then run the same command again to resume") from None
    finally:
        for lock in held:
            lock.release()
        dist.close()


def _clear_own(out: Path, identity: dict[str, Any]) -> None:
    """With --overwrite and another run in `out`: remove this module's own files (prepare() removes
    the rows and run.json)."""
    import json

    try:
        old = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        old = None
    if old != identity:
        shutil.rmtree(out / FEATURES_DIR, ignore_errors=True)
        for name in ("table.md", "table.tex"):
            (out / name).unlink(missing_ok=True)


def _run(cfg, tasks, size, images, settings, expected, identity, device, dist: Dist, held):
    from restore.evaluation.protocol_table import write_outputs

    protocol, out, data = cfg.protocol, Path(cfg.out), Path(cfg.data)
    say = (lambda line: None) if cfg.quiet or dist.rank else (lambda line: print(f"note: {line}", file=sys.stderr))
    first = next(iter(settings.values()))
    prior = configure(load_prior(first.model, device), first, note=say)
    plan: Any = None
    position = {rel: i for i, rel in enumerate(images)}  # the index that seeds an image's draws
    if dist.rank == 0:
        try:
            if out.is_dir():
                held.append(FolderLock(out, "output folder"))
            _, unreadable = check_images(data, images, cfg.skip_unreadable)
            if unreadable:
                bad = {u["image"] for u in unreadable}
                images[:] = [rel for rel in images if rel not in bad]
                say(f"skipping {len(bad)} unreadable image(s): {', '.join(sorted(bad))}")
            plan_network(prior, device, cfg.batch_size, size, size, first.tile)
            if not held:
                out.mkdir(parents=True, exist_ok=True)
                held.append(FolderLock(out, "output folder"))
            if cfg.overwrite and (out / RUN_FILE).exists():
                _clear_own(out, identity)
            done = prepare(out, identity, cfg.overwrite, expected)
            plan = [(task, rel, index, [f"{task}/{s.label}" for s in cfg.solvers
                                        if (rel, f"{task}/{s.label}") not in done])
                    for task in tasks for rel in images for index in [position[rel]]]
            plan = [p for p in plan if p[3]]
        except UsageError as error:
            plan = error
    plan, images[:] = dist.broadcast((plan, images))
    if isinstance(plan, UsageError):
        if dist.rank == 0:
            raise plan
        raise SystemExit(2)
    net = cfg.features
    if net == "auto":  # a missing metric is said even with --quiet
        net = load_inception(device, note=(lambda line: print(f"note: {line}", file=sys.stderr)) if dist.rank == 0
                             else (lambda line: None))
    mine = [p for i, p in enumerate(plan) if i % dist.world == dist.rank]
    bar = None
    if not cfg.quiet:
        from tqdm.auto import tqdm

        if dist.rank == 0:
            print(f"protocol {protocol.name}: {len(tasks)} tasks x {len(images)} images x {len(cfg.solvers)} solvers; "
                  f"{len(plan)} (task, image) pairs to do on {dist.world} process(es)", file=sys.stderr)
        bar = tqdm(total=len(mine), desc=f"rank {dist.rank}" if dist.world > 1 else protocol.name, unit="img",
                   position=dist.rank, dynamic_ncols=True, file=sys.stderr)
    network = plan_network(prior, device, cfg.batch_size, size, size, first.tile)
    writer = Writer(out / f"{ROW_PREFIX}{dist.rank}.csv") if mine else None
    scale = size / protocol.size
    try:
        for task in tasks:
            groups: dict[Any, list] = {}
            for t, rel, index, todo in mine:
                if t == task:
                    key, seed = _draw_key(protocol.tasks[task], index)
                    groups.setdefault(key, []).append((rel, index, todo, seed))
            for key, items in groups.items():
                seed = items[0][3]
                try:
                    ops = build_task(protocol.tasks[task], size, np.random.RandomState(seed if seed is not None else 0),
                                     scale=scale)
                except ValueError as error:
                    raise UsageError(f"protocol {protocol.name}: tasks.{task} at {size} x {size}: "
                                     f"{str(error).splitlines()[0]}") from None
                ops.model.to(device)
                ops.forward.to(device)
                solvers = {}
                for start in range(0, len(items), cfg.batch_size):
                    batch = items[start : start + cfg.batch_size]
                    _restore_batch(cfg, task, batch, ops, solvers, settings, network, size, device, net, writer)
                    if bar is not None:
                        bar.update(len(batch))
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
    dist.barrier()
    if dist.rank != 0:
        return None
    rows = [r for group in load_all(out, expected).values() for r in group]
    return write_outputs(out, protocol, cfg, tasks, images, rows, settings, net, str(device), dist.world, size)


def _restore_batch(cfg, task, batch, ops, solvers, settings, network, size, device, net, writer) -> None:
    protocol, out = cfg.protocol, Path(cfg.out)
    rels = [rel for rel, _, _, _ in batch]
    x = load_batch(Path(cfg.data), rels, (size, size), device)
    seeds = [image_seeds(cfg.seed, rel) for rel in rels]
    y = ops.measure(x)
    sigma = 2.0 * protocol.sigma_y
    if sigma > 0:
        y = y + sigma * randn((y.shape[1],), len(rels), make_generators([s[0] for s in seeds]), device=y.device)
    features = out / FEATURES_DIR
    if net is not None:
        reference = [features / "reference" / f"{rel}.npy" for rel in rels]
        if not all(p.exists() for p in reference):
            for path, row in zip(reference, np.asarray(net(to_uint8(x)), dtype=np.float32)):
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, lambda tmp, row=row: np.save(tmp, row.astype(np.float16), allow_pickle=False))
    for spec in cfg.solvers:
        group = f"{task}/{spec.label}"
        idx = [i for i, (_, _, todo, _) in enumerate(batch) if group in todo]
        if not idx:
            continue
        st = settings[(task, spec.label)]
        if spec.label not in solvers:
            operator = ops.forward if solver_parts(st.solver)[1] in MATRIX_FREE else ops.model
            solvers[spec.label] = build_solver(st, network, operator)
        sub = torch.tensor(idx, device=device)
        finals = _solve(solvers[spec.label], st, group, [rels[i] for i in idx], x[sub], y[sub],
                        [seeds[i][1] for i in idx], protocol, net, features, writer, device)
        if cfg.save_images:
            for j, i in enumerate(idx):
                save_image(finals[j : j + 1], out / "images" / task / spec.label / png_name(rels[i]))


def _solve(solver, st: Settings, group: str, rels, x, y, sampler_seeds, protocol, net, features: Path,
           writer: Writer, device) -> None:
    run = Run(solver, y, st.sigma_y, make_generators([candidate_seed(s, 0) for s in sampler_seeds]))
    points = set(fid_points(st, protocol.fid_points)) if net is not None else set()
    rows: dict[str, list[Row]] = {rel: [] for rel in rels}
    kept: list[tuple[int, np.ndarray]] = []
    elapsed = 0.0
    while not run.done:
        sync(device)
        start = time.perf_counter()
        record = run.step()[-1]
        sync(device)
        elapsed += time.perf_counter() - start
        scores = {k: v.detach().cpu().double().tolist() for k, v in compute_all(record.x0, x).items()}
        for b, rel in enumerate(rels):
            rows[rel].append(Row(rel, group, record.nfe, scores["psnr"][b], scores["ssim"][b], scores["lpips"][b],
                                 elapsed / len(rels)))
        if record.nfe in points:
            kept.append((record.nfe, np.asarray(net(to_uint8(record.x0)), dtype=np.float32)))
    for b, rel in enumerate(rels):
        if kept:
            path = features / group / f"{rel}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            nfe = np.array([n for n, _ in kept])
            feats = np.stack([f[b] for _, f in kept]).astype(np.float16)
            atomic_write(path, lambda tmp: np.savez(tmp, nfe=nfe, features=feats))
        writer.write(rows[rel])
    return record.x0
