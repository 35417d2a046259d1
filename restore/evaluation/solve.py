"""One batch of images restored by one solver for the batch evaluation: a `solvers.Run` over
B images x K candidates, scored at every anytime step, optionally steered by an oracle.

Groups (the `solver` column of per_image.csv) a solver `s` gives:
- `s`: candidate 1 of each image, the plain restoration (the same numbers as a one-candidate run);
- with K > 1 candidates, from the same K independent runs: `s/meanK`, the mean of the K
  candidates' scores at each step, and `s/bestK`, the candidate with the best LPIPS at each step
  (chosen after the fact, no steering);
- with --choose oracle-lpips: `s/oracleK`, a steered run of K candidates in which after every
  anytime step every candidate continues from the one with the best LPIPS against the reference
  (Nested Diffusion's choice among candidates, sec. 5, with an oracle in place of the person: an
  upper bound for what a person's choice can buy); its row is that chosen candidate;
- with --choose oracle-regions: `s/oracleK` and `s/regionsK`, a steered run in which after every
  anytime step but the last the oracle chooses by region: in each cell of a GRID x GRID grid the
  candidate with the best LPIPS there (the whole-image best outside the cells' feathered
  seams), every candidate continuing from that composite (solvers.regions); after the last step
  it keeps the whole-image best. Its row is the whole-image best candidate at each step.
"""

from __future__ import annotations

import math
import time

import torch

from restore.evaluation.rows import Row
from restore.quality.baselines import baseline
from restore.quality.metrics import compute_all, lpips
from restore.restoration.regions import in_frame
from restore.restoration.seeds import candidate_seed
from solvers import Run, make_generators

#: the region oracle's grid: GRID x GRID cells
GRID = 4


def candidate_groups(solver: str, candidates: int, oracle: str | None) -> list[str]:
    """The groups a solver gives (see the module docstring), in report order; oracle: None,
    "lpips" or "regions"."""
    groups = [solver]
    if candidates > 1:
        groups += [f"{solver}/mean{candidates}", f"{solver}/best{candidates}"]
        groups += [f"{solver}/{kind}{candidates}" for kind in steered_kinds(oracle)]
    return groups


def oracle_of(choose: str) -> str | None:
    """evaluate.py's --choose as the oracle candidate_groups takes: None, "lpips", "regions"."""
    return {"none": None, "oracle-lpips": "lpips", "oracle-regions": "regions"}[choose]


def steered_kinds(oracle: str | None) -> list[str]:
    """The steered groups' kinds an oracle asks for: "oracle" (whole images), "regions"."""
    return {None: [], "lpips": ["oracle"], "regions": ["oracle", "regions"]}[oracle]


def cell_masks(h: int, w: int, grid: int = GRID) -> list[torch.Tensor]:
    """The grid x grid cells of an h x w image as bool masks, row by row (sides split as evenly
    as the sizes allow)."""
    rows, cols = torch.arange(h).tensor_split(grid), torch.arange(w).tensor_split(grid)
    masks = []
    for r in rows:
        for c in cols:
            m = torch.zeros(h, w, dtype=torch.bool)
            m[r[0] : r[-1] + 1, c[0] : c[-1] + 1] = True
            masks.append(m)
    return masks


def cell_picks(x0: torch.Tensor, ref: torch.Tensor, masks: list[torch.Tensor]) -> list[int]:
    """For each cell, the candidate (row of x0, (K, C, H, W)) with the best LPIPS against ref
    (1, C, H, W) inside it (one batched LPIPS call over every cell and candidate)."""
    crops, refs = [], []
    for m in masks:
        rows, cols = m.any(1).nonzero()[:, 0], m.any(0).nonzero()[:, 0]
        box = (slice(None), slice(None), slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        crops.append(x0[box])
        refs.append(ref[box].expand_as(x0[box]))
    scores = lpips(torch.cat(crops), torch.cat(refs)).view(len(masks), x0.shape[0]).tolist()
    return [_best(s) for s in scores]


def base_solver(group: str) -> str:
    return group.split("/")[0]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def score(x: torch.Tensor, ref: torch.Tensor) -> dict[str, list[float]]:
    return {k: v.detach().cpu().double().tolist() for k, v in compute_all(x, ref).items()}


def _row(rel, group, nfe, scores, i, seconds) -> Row:
    return Row(rel, group, nfe, scores["psnr"][i], scores["ssim"][i], scores["lpips"][i], seconds)


def _best(lpips: list[float]) -> int:
    """Index of the lowest LPIPS (NaNs last)."""
    return min(range(len(lpips)), key=lambda i: (math.isnan(lpips[i]), lpips[i]))


def solve_batch(solver, name: str, rels: list[str], x: torch.Tensor, y: torch.Tensor, sigma_y: float,
                seeds: list[int], candidates: int = 1, oracle: str | None = None, view=None):
    """Restore a batch and score it at every anytime step.

    seeds: one sampler seed per image (candidate k draws from candidate_seed(seed, k)).
    Returns ({group: {rel: [Row]}}, finals): with oracle=None the groups `name` (and with
    K > 1 `name/meanK`, `name/bestK`) and the finals of candidate 1; with oracle "oracle" (whole
    images) or "regions" the group `name/oracleK` or `name/regionsK` and the finals of the chosen
    candidates. seconds: the solver's wall time from
    the start of the batch (scoring and choosing excluded). view: the part of the solver's images
    that x shows (restore.restoration.sizing.Frame.view; None: all of it)."""
    view = view or (lambda image: image)
    k_count, device = candidates, x.device
    generators = make_generators([candidate_seed(s, k) for s in seeds for k in range(k_count)])
    run = Run(solver, y, sigma_y, generators, candidates=k_count)
    ref = x.repeat_interleave(k_count, dim=0)
    groups = candidate_groups(name, k_count, None) if not oracle else [f"{name}/{oracle}{k_count}"]
    masks = cell_masks(*view(x).shape[-2:]) if oracle == "regions" else []
    rows: dict[str, dict[str, list[Row]]] = {g: {rel: [] for rel in rels} for g in groups}
    elapsed = 0.0
    picks = [0] * len(rels)
    while not run.done:
        sync(device)
        start = time.perf_counter()
        record = run.step()[-1]
        sync(device)
        elapsed += time.perf_counter() - start
        scores = score(view(record.x0), ref)
        for b, rel in enumerate(rels):
            first = b * k_count  # rows are never dropped here: image b holds rows b K ... b K + K - 1
            own = {m: v[first : first + k_count] for m, v in scores.items()}
            if oracle:
                picks[b] = _best(own["lpips"])
                rows[groups[0]][rel].append(_row(rel, groups[0], record.nfe, own, picks[b], elapsed))
                if run.done:
                    continue
                if oracle == "regions":
                    cells = cell_picks(view(record.x0[first : first + k_count]), x[b : b + 1], masks)
                    full = [in_frame(m, tuple(record.x0.shape[-2:])) for m in masks]
                    run.choose_regions(list(zip(cells, full)), rest=picks[b], image=b)
                else:
                    run.choose(picks[b], image=b)
                continue
            rows[name][rel].append(_row(rel, name, record.nfe, own, 0, elapsed))
            if k_count > 1:
                mean = {m: [sum(v) / k_count] for m, v in own.items()}
                rows[groups[1]][rel].append(_row(rel, groups[1], record.nfe, mean, 0, elapsed))
                rows[groups[2]][rel].append(_row(rel, groups[2], record.nfe, own, _best(own["lpips"]), elapsed))
    finals = view(record.x0[[b * k_count + picks[b] for b in range(len(rels))]])
    return rows, finals


def baseline_rows(operator, name: str, y: torch.Tensor, x: torch.Tensor, rels: list[str],
                  view=None, sigma_y: float = 0.0) -> dict[str, list[Row]]:
    sync(x.device)
    start = time.perf_counter()
    guess = baseline(name, operator, y, sigma_y)
    guess = view(guess) if view is not None else guess
    sync(x.device)
    seconds = time.perf_counter() - start
    scores = score(guess, x)
    return {rel: [_row(rel, name, 0, scores, i, seconds)] for i, rel in enumerate(rels)}

