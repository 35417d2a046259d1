"""One restoration in progress, for a person: a `solvers.Run` driven one anytime step at a time,
with candidates numbered from 1, choices, a stop request honoured within one network call, a
time budget, the restoration clock, and the scores of every preview. Front ends (restore_image,
the command line, the page) drive it; it writes no files.

    session = Restoration(prepare_job("face.png", settings))
    while (step := session.step()) is not None:     # None: complete or stopped
        show(step.candidates)                       # every candidate's preview and scores
        session.choose(2)                           # or .drop([3]), .stop() (from any thread)
    result = session.result()

Timing: `seconds` counts the restoration's own time (network calls and solver arithmetic), not
the scoring, so a budget stops at the same point with or without a reference. The budget counts
this session's time (a resumed run gets a fresh budget); it never stops a run before its first
result. A stop request before the first result cancels the run (`Cancelled`).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import torch

from restore.errors import UsageError, one_line
from restore.quality import metrics as quality
from restore.quality.baselines import baselines as compute_baselines
from restore.quality.spread import spread, unmeasured_region
from restore.quality.spread import summary as spread_summary
from restore.restoration.job import Job
from restore.restoration.regions import RegionChoice, in_frame, read_mask, region_file
from restore.restoration.result import Candidate, RestoreResult, Step, num
from restore.restoration.seeds import candidate_seed
from restore.settings.build import build_solver
from solvers import Record, Run, make_generators
from solvers.regions import FEATHER


class Cancelled(Exception):
    """The run was stopped before its first result: there is nothing to keep."""


class Restoration:
    """A restoration of one image with `job.settings.candidates` candidates.

    time_budget: seconds of restoration time after which the latest result is kept.
    state: a `state_dict()` to resume from (the job must be the same; see restore.outputs.live).
    listener(record): called after every network call (a progress bar, say). stop: an Event to
    use as the stop request (set it from anywhere; default a new one, set by `stop()`).
    started: perf_counter() when the job began (model loading included in `wall_seconds`).
    score_calls: score every network call's prediction (`per_call`, for the metrics plot), not
    only each step's result; about 50 ms of LPIPS per candidate and call on a CPU at 256x256."""

    def __init__(self, job: Job, *, time_budget: float | None = None, state: dict | None = None,
                 listener: Callable[[Record], None] | None = None, started: float | None = None,
                 stop: threading.Event | None = None, score_calls: bool = True):
        if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
            raise UsageError(f"--time-budget must be a positive, finite number of seconds, got {time_budget}")
        self.job, self.settings = job, job.settings
        self.solver = build_solver(job.settings, job.network, job.operator)
        if state is None:
            seeds = [candidate_seed(job.sampler_seed, k) for k in range(job.settings.candidates)]
            self.run = Run(self.solver, job.y, job.settings.sigma_y, make_generators(seeds), job.settings.candidates)
            self.steps: list[Step] = []
            self.per_call: list[dict[str, Any]] = []
            self.seconds, self._wall_before, self.notes = 0.0, 0.0, list(job.notes)
        else:
            try:
                self.run = Run.from_state(self.solver, state["run"], job.device)
            except (ValueError, RuntimeError, KeyError, TypeError) as error:  # a state.pt of another run
                raise UsageError(f"the saved state does not fit this run ({one_line(error)[:160]}); "
                                 "start a new run instead") from None
            self.steps = [Step.from_dict(d) for d in state["steps"]]
            self.per_call = list(state["per_call"])
            self.seconds, self._wall_before, self.notes = state["seconds"], state["wall_seconds"], list(state["notes"])
        self.status = "complete" if self.run.done else "running"
        self.time_budget, self.listener, self.score_calls = time_budget, listener, score_calls
        self._started = time.perf_counter() if started is None else started
        self._budget_from = self.seconds
        self._stop = stop if stop is not None else threading.Event()
        self._step_start: float | None = None
        self._tracked = 0.0
        self._scores: list[dict[str, float | None]] = []
        self.unmeasured = unmeasured_region(job.operator, job.frame.shown)
        self.baselines = {k: job.frame.view(v).cpu() for k, v in compute_baselines(job.operator, job.y, job.settings.sigma_y).items()}
        self.baseline_scores = {k: self._score(v.to(job.device), ssim=True)[0] for k, v in self.baselines.items()}
        if job.reference is not None and state is None:
            if not quality.lpips_available():
                self.notes.append("LPIPS unavailable (no AlexNet weights found): reported as null")

    # -- where it stands ----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.run.done

    @property
    def alive(self) -> list[int]:
        """The numbers of the candidates left."""
        return [k + 1 for k in self.run.alive()]

    @property
    def nfe(self) -> int:
        return self.run.nfe

    @property
    def nfe_total(self) -> int:
        return self.solver.nfe_total

    # -- driving ------------------------------------------------------------------------------
    def step(self) -> Step | None:
        """Make the next anytime step and return it; None once the run is complete or has
        stopped (then `status` says why). Raises Cancelled when stopped before any result."""
        if self.status != "running":
            return None
        if self._should_stop():
            return self._halt()
        self._step_start, self._tracked = time.perf_counter(), 0.0
        try:
            records = self.run.step(stop=self._should_stop, on_call=self._on_call)
        finally:
            self.seconds += time.perf_counter() - self._step_start - self._tracked
            self._step_start = None
        if records is None:
            return self._halt()
        x0 = self.job.frame.view(records[-1].x0).clamp(-1.0, 1.0).cpu()
        cands = [Candidate(k + 1, x0[r : r + 1], **self._scores[r]) for r, (_, k) in enumerate(self.run.rows)]
        step = Step(len(self.steps) + 1, records[-1].nfe, records[-1].t, self.seconds, cands, self.run.lead() + 1)
        if x0.shape[0] > 1:  # where the candidates disagree
            step.spread = spread(x0)
            step.spread_summary = spread_summary(step.spread, self.unmeasured)
        self.steps.append(step)
        if self.run.done:
            self.status = "complete"
        return step

    def stop(self) -> None:
        """Ask the run to stop within one network call and keep its latest result (safe from a
        signal handler or another thread)."""
        self._stop.set()

    def choose(self, number: int) -> None:
        """Every candidate continues from candidate `number` (after the last step: the pick)."""
        self.run.choose(self._check(number) - 1)
        if self.steps:
            self.steps[-1].lead = number

    def choose_regions(self, regions: RegionChoice | Mapping[int, Any] | Sequence[tuple[int, Any]],
                       rest: int | None = None, feather: float = FEATHER) -> None:
        """Steer by region (restore.restoration.regions.RegionChoice): candidate n inside each
        region, `rest` elsewhere (None: each keeps its own), masks at the result's size; every
        candidate continues from its composite (solvers.regions). Not after the last step."""
        choice = RegionChoice.of(regions, rest, feather)
        if self.done:
            raise UsageError("the run is complete: a region choice steers the next step; pick a whole candidate")
        if not choice.regions:
            raise UsageError("a region choice needs at least one region")
        if not (math.isfinite(choice.feather) and 0 <= choice.feather <= 64):
            raise UsageError(f"feather must be a number of pixels in [0, 64], got {choice.feather}")
        pairs = [(self._check(n) - 1, in_frame(read_mask(m, self.job.frame.shown), self.job.frame))
                 for n, m in choice.regions]
        rest = None if choice.rest is None else self._check(choice.rest) - 1
        try:
            self.run.choose_regions(pairs, rest, feather=choice.feather)
        except ValueError as error:  # steered twice after one step
            raise UsageError(one_line(error)) from None
        if self.steps:
            self.steps[-1].lead = self.run.lead() + 1

    def drop(self, numbers: Sequence[int]) -> None:
        """Candidates `numbers` leave the run (at least one must stay)."""
        numbers = sorted({self._check(n) for n in numbers})
        if len(numbers) >= len(self.alive):
            raise UsageError(f"cannot drop every candidate; {self.alive} are left, keep at least one")
        self.run.drop([n - 1 for n in numbers])
        if self.steps:
            self.steps[-1].lead = self.run.lead() + 1

    def _check(self, number) -> int:
        if isinstance(number, bool) or not isinstance(number, int) or number not in self.alive:
            raise UsageError(f"no candidate {number!r}: the candidates left are {', '.join(map(str, self.alive))}")
        return number

    # -- internals ----------------------------------------------------------------------------
    def _clock(self) -> float:
        """Restoration seconds of this session so far (during a step, up to now)."""
        running = 0.0 if self._step_start is None else time.perf_counter() - self._step_start - self._tracked
        return self.seconds + running - self._budget_from

    def _should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        return self.time_budget is not None and bool(self.steps) and self._clock() > self.time_budget

    def _halt(self) -> None:
        if not self.steps:
            self.status = "cancelled"
            raise Cancelled("stopped before the first result")
        last = self.steps[-1]
        self.status = "interrupted" if self._stop.is_set() else "time budget"
        why = "stopped" if self.status == "interrupted" else f"time budget of {self.time_budget:g} s ran out"
        self.notes.append(f"{why} after {self.nfe} of {self.nfe_total} network calls; "
                          f"keeping the output of step {last.index} (nfe {last.nfe})")
        return None

    def _score(self, x: torch.Tensor, ssim: bool) -> list[dict[str, float | None]]:
        """Per-row scores against the reference (None without one)."""
        ref = self.job.reference
        if ref is None:
            return [{"psnr": None, "ssim": None, "lpips": None} for _ in range(x.shape[0])]
        x = x.clamp(-1.0, 1.0)
        ref = ref.expand_as(x)
        psnr, lpips = quality.psnr(x, ref), quality.lpips(x, ref)
        ssims = quality.ssim(x, ref) if ssim else [None] * x.shape[0]
        return [{"psnr": num(p), "ssim": num(s), "lpips": num(v)} for p, s, v in zip(psnr, ssims, lpips)]

    def _on_call(self, record: Record) -> None:
        tick = time.perf_counter()
        if self.listener is not None:
            self.listener(record)
        if record.anytime or self.score_calls:
            self._scores = self._score(self.job.frame.view(record.x0), ssim=record.anytime)
            if self.job.reference is not None and self.score_calls:
                for (_, k), s in zip(self.run.rows, self._scores):
                    self.per_call.append({"nfe": record.nfe, "kind": record.kind, "t": record.t,
                                          "candidate": k + 1, "psnr": s["psnr"], "lpips": s["lpips"]})
        self._tracked += time.perf_counter() - tick

    # -- results and saving -------------------------------------------------------------------
    def wall_seconds(self) -> float:
        return self._wall_before + time.perf_counter() - self._started

    def result(self) -> RestoreResult:
        """The restoration as it stands (needs at least one step)."""
        latest = self.job.frame.view(self.run.latest.x0).clamp(-1.0, 1.0).cpu()
        finals = {k + 1: latest[r : r + 1] for r, (_, k) in enumerate(self.run.rows)}
        job = self.job
        result = RestoreResult(final=finals[self.run.lead() + 1], finals=finals, observation=job.observation,
                               measurement=job.y.cpu(), reference=None if job.reference is None else job.reference.cpu(),
                               baselines=self.baselines, steps=self.steps, per_call=self.per_call, metrics={},
                               settings=self.settings, notes=self.notes)
        result.metrics = self.metrics()
        return result

    def metrics(self) -> dict[str, Any]:
        """metrics.json: the settings, the status, every step's scores per candidate, the choices,
        the final scores, the baselines and every network call's scores."""
        job, s, last = self.job, self.settings, self.steps[-1]
        lead = self.run.lead() + 1
        choices = [choice_record(e) for e in self.run.events]
        return {
            "status": self.status,
            "task": s.task, "model": s.model, "solver": s.solver, "sigma_y": s.sigma_y, "seed": s.seed,
            "image_size": list(job.frame.shown), "mode": job.mode, "input": job.input,
            "reference": job.reference_name if job.mode == "observed" else "input",
            "device": str(job.device), "settings": s.as_dict(),
            "candidates": s.candidates, "candidates_left": self.alive, "chosen": lead, "choices": choices,
            "nfe_total": self.nfe, "nfe_planned": self.nfe_total,
            "steps_done": len(self.steps), "steps_planned": self.solver.anytime_steps,
            "wall_seconds": round(self.wall_seconds(), 3), "restoration_seconds": round(self.seconds, 4),
            "time_budget": self.time_budget, "stopped_early": self.status in ("interrupted", "time budget"),
            "steps": [st.as_dict() for st in self.steps],
            "final": last.candidate(lead).scores(),
            "final_candidates": [{"candidate": c.number, **c.scores()} for c in last.candidates if c.number in self.alive],
            "baselines": self.baseline_scores,
            "per_call": self.per_call,
            "notes": self.notes,
        }

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs: the run's state, the job's identity and the history so far."""
        return {"run": self.run.state_dict(), "identity": self.job.identity, "input": self.job.input,
                "reference": self.job.reference_name, "steps": [s.as_dict() for s in self.steps],
                "per_call": self.per_call, "seconds": self.seconds, "wall_seconds": self.wall_seconds(),
                "notes": self.notes}


def choice_record(event: dict) -> dict[str, Any]:
    """A run's choice event as metrics.json records it: candidates numbered from 1, region masks
    by file name (written beside it by restore.outputs.live)."""
    out: dict[str, Any] = {"after_step": event["after_step"]}
    if "choose" in event:
        out["choose"] = event["choose"] + 1
    elif "drop" in event:
        out["drop"] = [k + 1 for k in event["drop"]]
    else:
        out["regions"] = [{"candidate": k + 1, "mask": region_file(event["after_step"], j)}
                          for j, (k, _) in enumerate(event["regions"], 1)]
        out["rest"] = None if event["rest"] is None else event["rest"] + 1
        out["feather"] = event["feather"]
    return out
