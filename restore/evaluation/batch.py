"""One batch of same-sized images in a folder evaluation: the operator, network and solvers of its
size (built once per size), and every solver and baseline run on it, rows written as they finish.
The whole run: restore.evaluation.run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from restore.evaluation.folder import IMAGES_DIR, Writer
from restore.evaluation.images import load_batch, png_name
from restore.evaluation.report import Progress
from restore.evaluation.solve import baseline_rows, oracle_of, solve_batch, steered_kinds, sync
from restore.io.images import save_image
from restore.models.network import plan_network
from restore.quality.baselines import baseline_names
from restore.restoration.seeds import image_seeds
from restore.restoration.sizing import Frame, simulated_scene
from restore.settings.build import build_operator, build_solver
from restore.settings.schema import Settings
from solvers import make_generators


@dataclass
class FrameTools:
    """What restores the images of one frame: its operator, network and solvers."""

    frame: Frame
    operator: Any
    solvers: dict[str, Any]


def build_frame(settings: Settings, solver_names, prior, frame: Frame, device, batch: int, warm_up: bool) -> FrameTools:
    """The operator, network and solvers of one frame; with `warm_up`, one untimed call of the
    network at its size, so that lazy initialisation (kernels, allocator, autotuning) is not
    billed to the first image's seconds."""
    network = plan_network(prior, device, batch * settings.candidates, frame.height, frame.width, settings.tile)
    operator = build_operator(settings, (frame.height, frame.width)).to(device)
    solvers = {name: build_solver(replace(settings, solver=name), network, operator) for name in solver_names}
    rows = batch * settings.candidates
    if warm_up:
        with torch.no_grad():
            network(torch.zeros(rows, 3, frame.height, frame.width, device=device), torch.full((rows,), 500, device=device))
        sync(device)
    return FrameTools(frame, operator, solvers)


def evaluate_batch(settings: Settings, cfg, size: FrameTools, batch, data: Path, out: Path, device,
                    solver_groups, writer: Writer, progress: Progress) -> None:
    """Every solver and baseline on one batch of same-sized images; rows written as they finish."""
    rels = [rel for rel, _ in batch]
    scene, x = simulated_scene(load_batch(data, rels, size.frame.input_size, device, cfg.max_pixels), size.frame)
    seeds = [image_seeds(settings.seed, rel) for rel in rels]
    y = size.operator.observe(scene, settings.sigma_y, make_generators([s[0] for s in seeds]))
    for name in cfg.solvers:
        # the independent runs give every group but the oracles'; each oracle's is a run of its own
        kinds = steered_kinds(oracle_of(cfg.choose))
        steered_groups = {f"{name}/{kind}{settings.candidates}": kind for kind in kinds}
        for steered in [None, *kinds]:
            wanted = [g for g in solver_groups[name] if steered_groups.get(g) == steered]
            idx = [i for i, (_, todo) in enumerate(batch) if set(wanted) & set(todo)]
            if not idx:
                continue
            sub = torch.tensor(idx, device=device)
            rows, finals = solve_batch(size.solvers[name], name, [rels[i] for i in idx], x[sub], y[sub],
                                       settings.sigma_y, [seeds[i][1] for i in idx], settings.candidates,
                                       oracle=steered, view=size.frame.view)
            for j, i in enumerate(idx):
                rel, todo = batch[i]
                for group in wanted:
                    if group in todo:
                        writer.write(rows[group][rel])
                        progress.group_done(group, rows[group][rel][-1].psnr)
                if cfg.save_images and (name in todo or steered):
                    folder = (wanted[0] if steered else name).replace("/", "-")  # nested-oracle4, nested-regions4
                    save_image(finals[j : j + 1], out / IMAGES_DIR / folder / png_name(rel))
    for group in baseline_names(size.operator):
        idx = [i for i, (_, todo) in enumerate(batch) if group in todo]
        if idx:
            sub = torch.tensor(idx, device=device)
            rows = baseline_rows(size.operator, group, y[sub], x[sub], [rels[i] for i in idx], view=size.frame.view,
                                 sigma_y=settings.sigma_y)
            for rel, group_rows in rows.items():
                writer.write(group_rows)

