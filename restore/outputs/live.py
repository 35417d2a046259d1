"""The output folder of a restoration that fills as the run goes, and resuming from it.

After each anytime step: step_<k>_nfe<n>.png, latest.png, candidates_step<k>.png (several
candidates), metrics.json with "status": "running", and state.pt (what a resume needs). At the
end: final.png, final_<i>.png (several candidates), progress.png, metrics.png (with a reference)
and metrics.json with the status "complete", "interrupted" or "time budget"; state.pt is removed
once the run is complete. Every file is written atomically, so a file that exists is whole.

A run stopped before its first result leaves nothing (an earlier folder replaced with
--overwrite comes back); one aborted later keeps its files and its state.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import torch

from restore.io.atomic import atomic_write
from restore.io.images import load_image
from restore.outputs.files import FolderClaim, step_file, write_final, write_metrics, write_observation, write_step
from restore.outputs.resume import STATE_FILE
from restore.restoration.result import RestoreResult, Step
from restore.restoration.session import Cancelled, Restoration


class LiveFolder:
    """`out` taken for a new run (see restore.outputs.files.FolderClaim), or an existing run's folder to
    resume (restore.outputs.resume)."""

    def __init__(self, out: str | Path, overwrite: bool = False, resume: bool = False):
        self.claim = None if resume else FolderClaim(out, overwrite)
        self.out = Path(out)
        self.kept = resume  # whether the folder holds a result worth keeping

    def begin(self, session: Restoration) -> None:
        """Before the first step: the observation (nothing to do when resuming)."""
        if not self.kept:
            write_observation(session.job.observation, self.out)

    def write_step(self, session: Restoration) -> None:
        """After a step, or after a choice changed what the last step shows."""
        result = session.result()
        step = result.steps[-1]
        write_step(result, step, self.out)
        atomic_write(self.out / "latest.png", lambda tmp: shutil.copyfile(self.out / step_file(result, step), tmp))
        self._save_state(session)
        write_metrics({**result.metrics, "status": "running"}, self.out)  # until finish() writes the end
        if not self.kept and self.claim is not None:
            self.claim.commit()  # a result exists: an earlier folder replaced by --overwrite goes now
        self.kept = True

    def finish(self, session: Restoration) -> RestoreResult:
        """The end of the run: the final files; returns the result."""
        result = session.result()
        for step in result.steps:  # earlier steps of a resumed run: their images are the step files
            if step.image is None and (self.out / step_file(result, step)).is_file():
                step.candidate(step.lead).image = load_image(self.out / step_file(result, step))
        if session.status != "complete":
            self._save_state(session)  # stopped: resumable
        write_final(result, self.out)
        if session.status == "complete":
            (self.out / STATE_FILE).unlink(missing_ok=True)
        return result

    def cancel(self) -> None:
        """Stopped before any result: remove what this run wrote."""
        if self.claim is not None and not self.kept:
            self.claim.rollback()

    def abort(self, session: Restoration | None) -> None:
        """Aborted at once (a second Ctrl-C, an error): without a result, remove what was
        written; with one, keep the folder and mark it interrupted (latest.png is the result)."""
        if not self.kept or session is None or not session.steps:
            self.cancel()
            return
        metrics = session.result().metrics
        metrics.update(status="interrupted", stopped_early=True)
        write_metrics(metrics, self.out)

    def _save_state(self, session: Restoration) -> None:
        atomic_write(self.out / STATE_FILE, lambda tmp: torch.save(session.state_dict(), tmp))


def run_steps(session: Restoration, folder: LiveFolder | None = None) -> Iterator[Step]:
    """The front ends' loop (restore_image, the page): step the session, keep the folder up to
    date, and yield each step; the consumer may choose, drop or stop before taking the next one.
    A cancelled run removes what it wrote; an aborted one (an exception, or the consumer dropping
    the loop) keeps its folder marked interrupted. Call `folder.finish(session)` afterwards."""
    try:
        if folder is not None:
            folder.begin(session)
        while (step := session.step()) is not None:
            if folder is not None:
                folder.write_step(session)
            events = len(session.run.events)
            yield step
            if folder is not None and len(session.run.events) != events:
                folder.write_step(session)  # the step now shows the chosen candidate
    except Cancelled:
        if folder is not None:
            folder.cancel()
        raise
    except BaseException:  # an error, Ctrl-C, or GeneratorExit when the consumer gave up
        if folder is not None:
            folder.abort(session)
        raise
