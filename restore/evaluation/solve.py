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
  upper bound for what a person's choice can buy); its row is that chosen candidate.
"""

from __future__ import annotations

import math
import time

import torch

from restore.evaluation.rows import Row
from restore.quality.baselines import baseline
from restore.quality.metrics import compute_all
from restore.restoration.seeds import candidate_seed
from solvers import Run, make_generators


def candidate_groups(solver: str, candidates: int, oracle: bool) -> list[str]:
    """The groups a solver gives (see the module docstring), in report order."""
    groups = [solver]
    if candidates > 1:
        groups += [f"{solver}/mean{candidates}", f"{solver}/best{candidates}"]
        if oracle:
            groups.append(f"{solver}/oracle{candidates}")
    return groups


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
                seeds: list[int], candidates: int = 1, oracle: bool = False, view=None):
    """Restore a batch and score it at every anytime step.

    seeds: one sampler seed per image (candidate k draws from candidate_seed(seed, k)).
    Returns ({group: {rel: [Row]}}, finals): with oracle=False the groups `name` (and with
    K > 1 `name/meanK`, `name/bestK`) and the finals of candidate 1; with oracle=True the group
    `name/oracleK` and the finals of the chosen candidates. seconds: the solver's wall time from
    the start of the batch (scoring and choosing excluded). view: the part of the solver's images
    that x shows (restore.restoration.sizing.Frame.view; None: all of it)."""
    view = view or (lambda image: image)
    k_count, device = candidates, x.device
    generators = make_generators([candidate_seed(s, k) for s in seeds for k in range(k_count)])
    run = Run(solver, y, sigma_y, generators, candidates=k_count)
    ref = x.repeat_interleave(k_count, dim=0)
    groups = candidate_groups(name, k_count, False) if not oracle else [f"{name}/oracle{k_count}"]
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
                if not run.done:
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
                  view=None) -> dict[str, list[Row]]:
    sync(x.device)
    start = time.perf_counter()
    guess = baseline(name, operator, y)
    guess = view(guess) if view is not None else guess
    sync(x.device)
    seconds = time.perf_counter() - start
    scores = score(guess, x)
    return {rel: [_row(rel, name, 0, scores, i, seconds)] for i, rel in enumerate(rels)}
