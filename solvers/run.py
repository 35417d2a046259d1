"""A restoration advanced one anytime step at a time: candidates, steering, stopping, saving.

    run = Run(NestedDDRM(prior, operator), y, sigma_y=0.05,
              generator=make_generators([11, 12, 13]), candidates=3)
    records = run.step()         # one outer step (one network call for plain DDRM)
    records[-1].x0               # (3, C, H, W): the three candidates' previews
    run.choose(1)                # every candidate continues from candidate 1's next state
    run.drop([2])                # candidate 2 leaves the batch: fewer rows per network call
    torch.save(run.state_dict(), "run.pt")
    run = Run.from_state(solver, torch.load("run.pt", weights_only=True))   # ... resumes bit for bit

This is the one sampling loop of the project: `Sampler.sample` / `restore`, `restore_image`, the
command line, the batch evaluation and the page all drive a Run. It only samples: it scores
nothing and writes no files.

Rows. y holds one measurement per image (B, m); each image gets `candidates` K restorations,
so the batch has B x K rows, image by image (row b K + k is candidate k of image b). Candidate
ids are 0-based and stable: dropping candidate 1 leaves ids 0 and 2. With one generator per row
(`make_generators`), a candidate's result depends only on its own generator, not on K or B (up
to the rounding of batched network calls).

Steering (Nested Diffusion, sec. 5). After a step, `choose(k, image=b)` copies candidate k's
state (the next outer state x_t) to every candidate of image b; each keeps its own generator, so
they differ again from the next step on. After the last step, `choose` only records the pick.
`choose_regions` does the same per pixel: one candidate inside painted regions, another (or each
its own) elsewhere (solvers.regions: how the composite keeps the noise level of its time).
`drop` removes candidates. Both are recorded in `events`, so a seed and the events reproduce a
run exactly.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

from degradations.noise import Generators
from solvers.records import Record, Stepwise
from solvers.regions import FEATHER, compose, region_weights

STATE_FORMAT = "anytime-restore run"
STATE_VERSION = 1


class Run:
    """The whole sampling state of a batch of restorations between two anytime steps.

    Attributes: `x` (rows, C, H, W) the state the next step starts from (Nested: the outer
    state x_t); `index` anytime steps done; `latest` the last anytime Record (x0 of every row);
    `rows` [(image, candidate)] of the rows alive; `events` the choices made."""

    def __init__(self, solver: Stepwise, y: torch.Tensor, sigma_y: float = 0.0,
                 generator: Generators = None, candidates: int = 1):
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        sigma_y = float(sigma_y)
        solver.check(y, sigma_y)
        rows = [(b, k) for b in range(y.shape[0]) for k in range(candidates)]
        if isinstance(generator, (list, tuple)):
            if len(generator) != len(rows):
                raise ValueError(f"got {len(generator)} generators for {len(rows)} rows "
                                 f"({y.shape[0]} images x {candidates} candidates)")
            generator = list(generator)
        self.solver, self.y, self.sigma_y, self.candidates = solver, y, sigma_y, candidates
        self.rows, self.generator = rows, generator
        self.index, self.latest, self.events = 0, None, []
        self.meas = solver.measure(self._rows_y(), sigma_y)
        self.x = solver.begin(self.meas, generator)

    # -- where the run stands -----------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.index >= self.solver.anytime_steps

    @property
    def nfe(self) -> int:
        """Network calls made so far (per row)."""
        return self.solver.calls_before(self.index)

    def alive(self, image: int = 0) -> list[int]:
        """The candidate ids of `image` still in the batch, ascending."""
        return [k for b, k in self.rows if b == image]

    def lead(self, image: int = 0) -> int:
        """The candidate to show as the result: the last one chosen (by a region choice: the one
        chosen outside the regions), if still alive, else the lowest id alive."""
        for event in reversed(self.events):
            pick = event.get("choose", event.get("rest"))
            if event["image"] == image and pick is not None and pick in self.alive(image):
                return pick
        return self.alive(image)[0]

    def row(self, image: int, candidate: int) -> int:
        """The batch row of a candidate (ValueError when it is not in the batch)."""
        try:
            return self.rows.index((image, candidate))
        except ValueError:
            raise ValueError(f"candidate {candidate} of image {image} is not in the run "
                             f"(alive: {self.alive(image)})") from None

    # -- advancing ----------------------------------------------------------------------------
    def _advance(self) -> Iterator[Record]:
        """Make the next anytime step, yielding each network call's record; the state is
        committed once the step's generator has returned."""
        step = self.solver.advance(self.x, self.index, self.meas, self.generator)
        latest = None
        while True:
            try:
                record = next(step)
            except StopIteration as end:
                self.x = end.value
                break
            latest = record if record.anytime else latest
            yield record
        self.index += 1
        self.latest = latest

    def records(self) -> Iterator[Record]:
        """Every remaining network call's record, to the end (what `Sampler.sample` yields)."""
        while not self.done:
            yield from self._advance()

    def step(self, stop: Callable[[], bool] | None = None,
             on_call: Callable[[Record], None] | None = None) -> list[Record] | None:
        """Make one anytime step and return its records (the last is the anytime output).

        on_call(record) is called after every network call. stop() is asked after every call
        that does not end the step: when it says True the step is abandoned (None is returned)
        and the run stays where it was, generators included, so it can still be saved, resumed
        or stepped again. With generator=None torch's global generator is not rewound."""
        if self.done:
            raise RuntimeError("the run is complete; nothing left to step")
        saved = self._generator_states()
        calls = self._advance()
        records = []
        try:
            for record in calls:
                records.append(record)
                if on_call is not None:
                    on_call(record)
                if not record.anytime and stop is not None and stop():
                    calls.close()
                    self._restore_generators(saved)
                    return None
        except BaseException:
            calls.close()
            self._restore_generators(saved)
            raise
        return records

    # -- steering -----------------------------------------------------------------------------
    def choose(self, candidate: int, image: int = 0) -> None:
        """Every candidate of `image` continues from `candidate`'s state (its own noise from
        now on). After the last step this only records the pick (see `lead`)."""
        src = self.row(image, candidate)
        if not self.done:
            x = self.x.clone()
            x[[r for r, (b, _) in enumerate(self.rows) if b == image]] = self.x[src]
            self.x = x
        self.events.append({"after_step": self.index, "image": image, "choose": candidate})

    def choose_regions(self, regions: Sequence[tuple[int, torch.Tensor]], rest: int | None = None,
                       image: int = 0, feather: float = FEATHER) -> None:
        """Steer by region: candidate k inside each (k, mask) of `regions` (masks (H, W), bool
        or in [0, 1]; a later one covers an earlier one), candidate `rest` elsewhere (None: each
        candidate keeps its own there), the edges feathered; every candidate of `image` continues
        from its composite, with the noise kept at its time's level (solvers.regions). Regions
        that give one candidate k every pixel (a region covering the whole image) are `choose(k)`:
        the same state, event and lead, so the rest of the run is the same too."""
        if self.done or self.latest is None:
            raise ValueError("a region choice composes the next state: make a step first, and not the last one "
                             "(after it, choose a whole candidate)")
        if any(e["after_step"] == self.index and e["image"] == image and ("choose" in e or "regions" in e)
               for e in self.events):  # the states are no longer the previews' (x_k = sqrt(a) x0_k + ...)
            raise ValueError(f"the candidates of image {image} were already steered after step {self.index}; "
                             "make the next step before choosing by region")
        rows = [r for r, (b, _) in enumerate(self.rows) if b == image]
        slot = {k: i for i, k in enumerate(self.alive(image))}
        named = [k for k, _ in regions] + ([] if rest is None else [rest])
        for k in named:
            self.row(image, k)  # ValueError for a candidate not in the run
        shape = tuple(self.x.shape[-2:])
        masks = [torch.as_tensor(m).cpu() for _, m in regions]
        if any(tuple(m.shape) != shape for m in masks):
            raise ValueError(f"region masks must be {shape[0]}x{shape[1]} (the image), got "
                             f"{[tuple(m.shape) for m in masks]}")
        weights = region_weights([(slot[k], m.to(self.x.device)) for (k, _), m in zip(regions, masks)],
                                 None if rest is None else slot[rest], len(rows), feather)
        whole = [i for i in range(len(rows)) if bool((weights[:, i] == 1).all())]
        if whole:  # one candidate everywhere, in every row: that is a whole choice, and recorded as one
            self.choose(self.alive(image)[whole[0]], image)
            return
        a = self.solver.schedule.alpha_bar(self.solver.state_time(self.index))
        index = torch.tensor(rows, device=self.x.device)
        x = self.x.clone()
        x[index] = compose(self.x[index], self.latest.x0[index], a, weights)
        self.x = x
        self.events.append({"after_step": self.index, "image": image, "regions": [[int(k), m] for (k, _), m in
                                                                                 zip(regions, masks)],
                            "rest": None if rest is None else int(rest), "feather": float(feather)})

    def drop(self, candidates: Sequence[int], image: int = 0) -> None:
        """Remove candidates of `image` from the batch (at least one must stay)."""
        gone = {self.row(image, k) for k in candidates}
        if len(gone) == len(self.alive(image)):
            raise ValueError(f"cannot drop every candidate of image {image}; keep at least one")
        keep = [r for r in range(len(self.rows)) if r not in gone]
        index = torch.tensor(keep, device=self.x.device)
        self.rows = [self.rows[r] for r in keep]
        self.x = self.x.index_select(0, index)
        if isinstance(self.generator, list):
            self.generator = [self.generator[r] for r in keep]
        if self.latest is not None:
            self.latest.x0 = self.latest.x0.index_select(0, index)
        self.meas = self.solver.measure(self._rows_y(), self.sigma_y)
        self.events.append({"after_step": self.index, "image": image, "drop": sorted(int(k) for k in candidates)})

    # -- saving and resuming ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue: tensors (on the CPU) and plain Python values, for
        `torch.save`; the generators' states included (so not with generator=None)."""
        if self.generator is None:
            raise ValueError("a run with torch's global generator cannot be saved; pass generators")
        gens = self.generator if isinstance(self.generator, list) else [self.generator]
        latest = None
        if self.latest is not None:
            r = self.latest
            latest = {"nfe": r.nfe, "t": r.t, "kind": r.kind, "final": r.final, "x0": r.x0.cpu()}
        return {
            "format": STATE_FORMAT, "version": STATE_VERSION, "plan": self._plan(),
            "index": self.index, "x": self.x.cpu(), "y": self.y.cpu(), "sigma_y": self.sigma_y,
            "candidates": self.candidates, "rows": [list(r) for r in self.rows], "events": list(self.events),
            "shared_generator": not isinstance(self.generator, list),
            "generators": [g.get_state() for g in gens], "generator_device": str(gens[0].device),
            "latest": latest, "x_spectral": None if (v := self._spectral()) is None else v.cpu(),
        }

    @classmethod
    def from_state(cls, solver: Stepwise, state: dict, device: torch.device | str | None = None) -> "Run":
        """The run `state_dict` saved, continued with `solver` (which must make the same plan)."""
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError("not a saved run of this version")
        run = cls.__new__(cls)
        y = state["y"].to(device)
        solver.check(y, state["sigma_y"])  # first: a Nested fits its outer grid to sigma_y here (its outer_floor)
        if state["plan"] != run._plan(solver):
            raise ValueError(f"the saved run was made by {state['plan']}, not by {run._plan(solver)}")
        gens = [torch.Generator(device=state["generator_device"]) for _ in state["generators"]]
        for g, s in zip(gens, state["generators"]):
            g.set_state(s)
        run.solver, run.y, run.sigma_y, run.candidates = solver, y, float(state["sigma_y"]), state["candidates"]
        run.rows = [tuple(r) for r in state["rows"]]
        run.generator = gens[0] if state["shared_generator"] else gens
        run.index, run.events = state["index"], list(state["events"])
        run.x = state["x"].to(y.device, y.dtype)
        latest = state["latest"]
        run.latest = None if latest is None else Record(
            latest["nfe"], latest["x0"].to(y.device, y.dtype), latest["t"], latest["kind"], latest["final"])
        run.meas = solver.measure(run._rows_y(), run.sigma_y)
        if state.get("x_spectral") is not None and hasattr(run.meas, "remember"):
            run.meas.remember(run.x, state["x_spectral"].to(y.device, y.dtype))  # goes on exactly as it would have
        return run

    # -- helpers ------------------------------------------------------------------------------
    def _plan(self, solver: Stepwise | None = None) -> dict:
        solver = solver or self.solver
        return {"solver": solver.name, "anytime_steps": solver.anytime_steps,
                "nfe_total": solver.nfe_total, "times": list(getattr(solver, "times", []))}

    def _spectral(self) -> torch.Tensor | None:
        """V^T x as the last step made it (a fused step's state; degradations.measurement), if known."""
        carried = getattr(self.meas, "carried", None)
        return None if carried is None else carried(self.x)

    def _rows_y(self) -> torch.Tensor:
        images = [b for b, _ in self.rows]
        if images == list(range(self.y.shape[0])):
            return self.y
        return self.y.index_select(0, torch.tensor(images, device=self.y.device))

    def _generator_states(self):
        if self.generator is None:
            return None
        gens = self.generator if isinstance(self.generator, list) else [self.generator]
        return [(g, g.get_state()) for g in gens]

    @staticmethod
    def _restore_generators(saved) -> None:
        for g, s in saved or ():
            g.set_state(s)
