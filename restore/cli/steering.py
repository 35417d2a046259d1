"""How a person steers candidates from the command line: --choose parsed, the terminal prompt after
each step, a scripted choice, and the signals (Ctrl-C, SIGTERM) that stop a run and keep its
latest result."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from restore.errors import UsageError
from restore.restoration.regions import RegionChoice


FORMS = "ask, none, candidate numbers such as 2,1, or region choices such as 2@eyes.png+1"


def parse_choices(text: str | None, candidates: int, steps: int, interactive: bool):
    """'ask' | None (never ask) | a list with one entry per step: a candidate number (0: keep
    all) or a RegionChoice (`parse_entry`)."""
    if text is None:
        text = "ask" if candidates > 1 and interactive else "none"
    if text in ("ask", "none"):
        return text if candidates > 1 else "none"
    picks = [parse_entry(e, candidates) for e in text.split(",")]
    if len(picks) > steps:
        raise UsageError(f"--choose has {len(picks)} entries but the run has {steps} steps; give at most one per step")
    if len(picks) == steps and isinstance(picks[-1], RegionChoice):
        raise UsageError(f"--choose entry {steps} is a region choice, but after the last step nothing is left to "
                         "steer; pick a whole candidate there")
    return picks


def parse_entry(entry: str, candidates: int) -> int | RegionChoice:
    """One step's choice: '' or 0 (keep all), a candidate number, or regions: '2@eyes.png+1' is
    candidate 2 in the white pixels of eyes.png and candidate 1 elsewhere; '2@a.png+3@b.png+1'
    several regions (b over a); without the last '+N' each candidate keeps its own outside."""
    entry = entry.strip()
    if entry == "" or _digits(entry):
        return _number(entry or "0", candidates, allow_zero=True)
    parts = entry.split("+")
    rest = None if "@" in parts[-1] else _number(parts.pop(), candidates)
    regions = []
    for part in parts:
        number, at, mask = part.partition("@")
        if not at or not mask:
            raise UsageError(f"--choose takes {FORMS}; got {entry!r}")
        try:
            found = Path(mask).is_file()
        except OSError:  # a name the system refuses (too long, ...)
            found = False
        if not found:
            raise UsageError(f"--choose: region mask {mask} not found (a mask is an image file at the result's size)")
        regions.append((_number(number, candidates), mask))
    return RegionChoice(tuple(regions), rest)


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit also accepts '²' and other digits int() refuses."""
    return text.isascii() and text.isdigit()


def _number(text: str, candidates: int, allow_zero: bool = False) -> int:
    text = text.strip()
    if not _digits(text):
        raise UsageError(f"--choose takes {FORMS}; got {text!r}")
    n = int(text)
    if n > candidates or (n == 0 and not allow_zero):
        raise UsageError(f"--choose names candidate {n}, but there are {candidates} (numbered 1 to {candidates})")
    return n


class Signals:
    """SIGINT / SIGTERM: the first asks the run to stop within one network call, keeping its latest
    result (or, before the first result, cancelling it); the second aborts at once
    (KeyboardInterrupt), and so does one at a prompt."""

    def __init__(self, quiet: bool):
        self.stop, self.kept, self.prompting, self.quiet = threading.Event(), False, False, quiet
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        if self.prompting or self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        if not self.quiet:
            keep = "keeping the latest result" if self.kept else "there is no result to keep yet"
            print(f"\nstopping after the current network call, {keep} (Ctrl-C again to abort)", file=sys.stderr)

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def ask(signals: Signals, out: Path):
    """The terminal prompt after each step: Enter keeps all, a number continues from it,
    '2@eyes.png+1' chooses by region (as --choose), 'd 2,4' drops candidates (then asks again),
    's' stops and keeps the latest results."""
    state = {"eof": False}

    def choose(step, run):
        if state["eof"]:
            return None
        last = step.index == run.solver.anytime_steps
        what = "pick the result" if last else "continue from it"
        while True:
            print(f"step {step.index} (nfe {step.nfe}): candidates {', '.join(map(str, run.alive))} in "
                  f"{out / f'candidates_step{step.index}.png'}\n  Enter: {'keep candidate ' + str(step.lead) if last else 'keep all'}"
                  f", a number: {what}{'' if last else ', 2@mask.png+1: by region'}, d 2,4: drop, s: stop > ", end="", file=sys.stderr, flush=True)
            signals.prompting = True
            try:
                line = sys.stdin.readline()
            except KeyboardInterrupt:
                line = "s\n"
            finally:
                signals.prompting = False
            if not line:  # no more input: keep all from now on
                state["eof"] = True
                print(file=sys.stderr)
                return None
            line = line.strip()
            try:
                if not line:
                    return None
                if line == "s":
                    run.stop()
                    return None
                if "@" in line and not last:  # a region choice: applied here, so that a bad mask asks again
                    run.choose_regions(parse_entry(line, run.settings.candidates))
                    return None
                if line.startswith("d"):  # then ask again: the same step may still choose
                    run.drop([int(p) for p in line[1:].replace(",", " ").split()])
                    if len(run.alive) == 1:
                        return None
                    continue
                return int(line)
            except (ValueError, UsageError) as error:
                print(f"  {error if isinstance(error, UsageError) else 'type Enter, a number, 2@mask.png+1, d 2,4 or s'}",
                      file=sys.stderr)

    return choose
