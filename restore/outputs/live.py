"""The output folder of a restoration that fills as the run goes, and resuming from it.

After each anytime step: step_<k>_nfe<n>.png, latest.png, candidates_step<k>.png and
spread_step<k>.png (several candidates), region_step<k>_<j>.png (the masks of a region choice
after step k), metrics.json with "status": "running", and state.pt (what a resume needs). At the
end: final.png, final_<i>.png (several candidates), progress.png, metrics.png (with a reference)
and metrics.json with the status "complete", "interrupted" or "time budget"; state.pt is removed
once the run is complete. Every file is written atomically, so a file that exists is whole.

A run stopped before its first result leaves nothing (an earlier folder replaced with
--overwrite comes back); one aborted later keeps its files and its state. The folder is held
(restore.io.locks) while the run writes: a second process on it is refused. A write that fails
(full disk, read-only folder) ends the run with one line and metrics.json "status": "failed".
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import torch

from restore.errors import WriteError, one_line
from restore.io.atomic import atomic_write
from restore.io.images import load_image
from restore.io.locks import FolderLock
from restore.outputs.files import (FolderClaim, step_file, write_final, write_metrics, write_observation,
                                   write_region_masks, write_step)
from restore.outputs.resume import STATE_FILE
from restore.restoration.result import RestoreResult, Step
from restore.restoration.session import Cancelled, Restoration


class LiveFolder:
    """`out` taken for a new run (restore.outputs.files.FolderClaim), or an existing run's folder
    held to resume it (restore.io.locks; a busy or unwritable folder is refused at once, before any
    work). The folder is held until the run ends (finish, cancel or abort).

    A write that fails (a full disk, a folder turned read-only) ends the run with one WriteError
    line: metrics.json then says "status": "failed" with the reason, and the last whole step stays
    in state.pt, resumable; before the first step nothing stays."""

    def __init__(self, out: str | Path, overwrite: bool = False, resume: bool = False):
        self.claim = None if resume else FolderClaim(out, overwrite)
        self.lock = FolderLock(out, "output folder") if resume else self.claim.lock
        self.out = Path(out)
        self.kept = resume  # whether the folder holds a result worth keeping
        self.saved_steps: int | None = None  # the steps state.pt holds (None: as found when resuming)
        self.failed = False

    def begin(self, session: Restoration) -> None:
        """Before the first step: the observation (nothing to do when resuming)."""
        if not self.kept:
            self._writing(session, lambda: write_observation(session.job.observation, self.out))

    def write_step(self, session: Restoration) -> None:
        """After a step, or after a choice changed what the last step shows."""
        self._writing(session, lambda: self._write_step(session))
        if not self.kept and self.claim is not None:
            self.claim.commit()  # a result exists: an earlier folder replaced by --overwrite goes now
        self.kept = True

    def finish(self, session: Restoration) -> RestoreResult:
        """The end of the run: the final files; returns the result. The folder is released."""
        result = session.result()
        for step in result.steps:  # earlier steps of a resumed run: their images are the step files
            if step.image is None and (self.out / step_file(result, step)).is_file():
                step.candidate(step.lead).image = load_image(self.out / step_file(result, step))
        self._writing(session, lambda: self._write_final(session, result))
        self.release()
        return result

    def cancel(self) -> None:
        """Stopped before any result: remove what this run wrote."""
        if self.claim is not None and not self.kept:
            self.claim.rollback()
        self.release()

    def abort(self, session: Restoration | None) -> None:
        """Aborted at once (a second Ctrl-C, an error): without a result, remove what was
        written; with one, keep the folder and mark it interrupted (latest.png is the result)."""
        if self.failed:
            return self.release()  # failed() said why, in metrics.json too
        if not self.kept or session is None or not session.steps:
            return self.cancel()
        metrics = session.result().metrics
        metrics.update(status="interrupted", stopped_early=True)
        with contextlib.suppress(OSError):
            write_metrics(metrics, self.out)
        self.release()

    def release(self) -> None:
        self.lock.release()

    # -- internals ----------------------------------------------------------------------------
    def _write_step(self, session: Restoration) -> None:
        result = session.result()
        step = result.steps[-1]
        write_step(result, step, self.out)
        write_region_masks(session.run.events, session.job.frame.shown, self.out)
        atomic_write(self.out / "latest.png", lambda tmp: shutil.copyfile(self.out / step_file(result, step), tmp))
        self._save_state(session)
        write_metrics({**result.metrics, "status": "running"}, self.out)  # until finish() writes the end

    def _write_final(self, session: Restoration, result: RestoreResult) -> None:
        if session.status != "complete":
            self._save_state(session)  # stopped: resumable
        try:
            write_final(result, self.out)
        except OSError:  # the final files of an unfinished end would lie: they go, metrics.json says why
            for name in ("final.png", "progress.png", "metrics.png", *(f"final_{n}.png" for n in result.finals)):
                (self.out / name).unlink(missing_ok=True)
            raise
        if session.status == "complete":
            (self.out / STATE_FILE).unlink(missing_ok=True)

    def _save_state(self, session: Restoration) -> None:
        atomic_write(self.out / STATE_FILE, lambda tmp: torch.save(session.state_dict(), tmp))
        self.saved_steps = len(session.steps)

    def _writing(self, session: Restoration, write) -> None:
        """Run `write`; an OSError ends the run as failed (see the class docstring)."""
        try:
            write()
        except OSError as error:
            reason = one_line(error)
            self.failed = True
            if not self.kept:
                self.cancel()
                raise WriteError(f"cannot write to {self.out}: {reason}; nothing was kept") from None
            kept = "the steps it held before" if self.saved_steps is None else f"step {self.saved_steps}"
            metrics = {**session.result().metrics, "status": "failed", "failure": reason, "stopped_early": True,
                       "resumable_from_step": self.saved_steps}
            with contextlib.suppress(OSError):
                write_metrics(metrics, self.out)
            self.release()
            raise WriteError(f"cannot write to {self.out}: {reason}; the run stopped and state.pt keeps {kept}: "
                             f"free the space or fix the folder, then --resume {self.out}") from None


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
