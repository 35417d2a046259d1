"""Choices scripted ahead, one per anytime step (the command line's `--choose 2,2@eyes.png+1,0`,
or `restore_image(choose=[2, RegionChoice(...), 0])`), checked against the job before the first
network call: candidate numbers, the number of entries, and every region mask read and sized
once, so a bad entry is one line before anything is computed or written, and a mask file changed
during the run does not change it.

    chooser = scripted([2, RegionChoice([(2, "eyes.png")], rest=1), 0], job, steps=4)
    pick = chooser(step, session)      # the entry of step.index (None past the last entry)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from restore.errors import UsageError
from restore.restoration.job import Job
from restore.restoration.regions import RegionChoice, read_mask


def scripted(picks: Sequence[Any], job: Job, steps: int, name: str = "choose") -> Callable[[Any, Any], Any]:
    """A chooser for `picks`: per step None or 0 (keep all), a candidate number, or a
    RegionChoice (not at the last step); name: how messages call the argument ("--choose" on the
    command line). Raises UsageError for the first bad entry."""
    candidates = job.settings.candidates
    if len(picks) > steps:
        raise UsageError(f"{name} has {len(picks)} entries but the run has {steps} steps; give at most one per step")
    checked = [_check(pick, i, steps, candidates, job, name) for i, pick in enumerate(picks, 1)]

    def choose(step, session):
        return checked[step.index - 1] if step.index <= len(checked) else None

    return choose


def _number(n: Any, candidates: int, where: str, allow_zero: bool = False) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n > candidates or (n == 0 and not allow_zero):
        raise UsageError(f"{where} names candidate {n!r}, but there are {candidates} (numbered 1 to {candidates})")
    return n


def _check(pick: Any, i: int, steps: int, candidates: int, job: Job, name: str) -> int | RegionChoice:
    where = f"{name} entry {i}"
    if pick is None:
        return 0
    if not isinstance(pick, RegionChoice):
        return _number(pick, candidates, where, allow_zero=True)
    if i == steps:
        raise UsageError(f"{where} is a region choice, but after the last step nothing is left to steer; "
                         "pick a whole candidate there")
    if not pick.regions:
        raise UsageError(f"{where}: a region choice needs at least one region")
    if not (isinstance(pick.feather, (int, float)) and math.isfinite(pick.feather) and 0 <= pick.feather <= 64):
        raise UsageError(f"{where}: feather must be a number of pixels in [0, 64], got {pick.feather!r}")
    rest = None if pick.rest is None else _number(pick.rest, candidates, where)
    regions = []
    for n, mask in pick.regions:
        n = _number(n, candidates, where)
        try:
            regions.append((n, read_mask(mask, job.frame.shown)))
        except UsageError as error:
            raise UsageError(f"{where}: {error}") from None
    return RegionChoice(tuple(regions), rest, pick.feather)
