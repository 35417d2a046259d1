#!/usr/bin/env python
"""Restore one image with anytime previews, PSNR / SSIM / LPIPS tracking, candidates to steer.

    python scripts/restore.py --task sr4 --input face.png
    python scripts/restore.py --task sr4 --input lowres64.png --observed --reference face.png
    python scripts/restore.py --task sr4 --input face.png --candidates 4           # asks after each step
    python scripts/restore.py --task sr4 --input face.png --candidates 3 --choose 2,1
    python scripts/restore.py --resume outputs/face_sr4                            # after a Ctrl-C

Simulation mode (default): --input is a clean image; it is degraded with the task's operator
(plus --sigma-y noise) and restored, and every result is scored against it. --observed: --input
is the degraded image itself; metrics need --reference. The output folder (--out, default
outputs/<input stem>_<task>/) fills as the run goes: step_<k>_nfe<n>.png, latest.png and
metrics.json ("status": "running") after each step, then final.png, progress.png, metrics.png
and metrics.json with the final status. Ctrl-C (or SIGTERM) once a result exists stops within
one network call and keeps it (exit 0, resumable with --resume); before that, or a second time,
it aborts (exit 130). User errors print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import _paths  # noqa: F401  (must come first: this file's name would shadow the restore package)
from restore.settings import ArgumentParser, UsageError, add_arguments, run_cli, settings_from_args


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Command-line flags override --config; see configs/README.md.")
    parser.add_argument("--input", help="the image: clean (simulation) or degraded (--observed)")
    parser.add_argument("--observed", action="store_true", default=None,
                        help="--input is already degraded (low-resolution for srN, grey for color, ...)")
    parser.add_argument("--reference", help="clean image to score against in --observed mode")
    add_arguments(parser)
    parser.add_argument("--choose", metavar="ask|none|LIST",
                        help="with --candidates K > 1: 'ask' after each step (default on a terminal), 'none' "
                             "(all continue independently), or one scripted choice per step, e.g. 2,1 "
                             "(0 or empty: keep all at that step)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="anytime stop: keep the latest result once this much restoration time has passed")
    parser.add_argument("--out", help="output folder (default outputs/<input stem>_<task>/)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--resume", metavar="OUT", help="continue the stopped run in folder OUT to its planned end")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, notes or summary")
    return parser


def parse_choices(text: str | None, candidates: int, steps: int, interactive: bool):
    """'ask' | None (never ask) | a list with one entry per step (0: keep all)."""
    if text is None:
        text = "ask" if candidates > 1 and interactive else "none"
    if text in ("ask", "none"):
        return text if candidates > 1 else "none"
    entries = [e.strip() for e in text.split(",")]
    if not all(e.isdigit() or e == "" for e in entries):
        raise UsageError(f"--choose takes ask, none or candidate numbers such as 2,1; got {text!r}")
    picks = [int(e) if e else 0 for e in entries]
    if len(picks) > steps:
        raise UsageError(f"--choose has {len(picks)} entries but the run has {steps} steps; give at most one per step")
    bad = [p for p in picks if p > candidates]
    if bad:
        raise UsageError(f"--choose names candidate {bad[0]}, but there are {candidates} (numbered 1 to {candidates})")
    return picks


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
    'd 2,4' drops candidates (then asks again), 's' stops and keeps the latest results."""
    state = {"eof": False}

    def choose(step, run):
        if state["eof"]:
            return None
        last = step.index == run.solver.anytime_steps
        what = "pick the result" if last else "continue from it"
        while True:
            print(f"step {step.index} (nfe {step.nfe}): candidates {', '.join(map(str, run.alive))} in "
                  f"{out / f'candidates_step{step.index}.png'}\n  Enter: {'keep candidate ' + str(step.lead) if last else 'keep all'}"
                  f", a number: {what}, d 2,4: drop, s: stop > ", end="", file=sys.stderr, flush=True)
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
                if line.startswith("d"):  # then ask again: the same step may still choose
                    run.drop([int(p) for p in line[1:].replace(",", " ").split()])
                    if len(run.alive) == 1:
                        return None
                    continue
                return int(line)
            except (ValueError, UsageError) as error:
                print(f"  {error if isinstance(error, UsageError) else 'type Enter, a number, d 2,4 or s'}",
                      file=sys.stderr)

    return choose


def scripted(choices: list[int]):
    """--choose 2,1: one candidate per step (0: keep all)."""
    def choose(step, run):
        return choices[step.index - 1] if step.index <= len(choices) else None

    return choose


def main(argv: list[str] | None = None) -> int:
    from restore.api import Cancelled, restore_image
    from restore.result import Step

    args = build_parser().parse_args(argv)
    if args.resume:
        if args.out or args.overwrite:
            raise UsageError("--resume writes on into its own folder; leave out --out and --overwrite")
        from restore.live import load_state
        from restore.settings import Settings

        settings = Settings(**load_state(args.resume)["identity"]["settings"])
        out = Path(args.resume)
        given = {k: getattr(args, k) for k in ("task", "sigma_y", "mask", "model", "solver", "outer", "inner",
                                               "steps", "eta", "eta_b", "seed", "size", "tile", "precision", "compile", "candidates")}
    else:
        if not args.input:
            raise UsageError("the following arguments are required: --input (or --resume OUT)")
        settings = settings_from_args(args)
        out = Path(args.out) if args.out else Path("outputs") / f"{Path(args.input).stem}_{settings.task}"
        given = {"settings": settings, "out": out, "overwrite": args.overwrite}
    if args.reference and not args.observed and not args.resume:
        raise UsageError("--reference is only for --observed mode (in simulation mode the input is the reference)")
    anytime = settings.anytime_steps
    choices = parse_choices(args.choose, settings.candidates, anytime, sys.stdin.isatty())

    signals = Signals(args.quiet)
    chooser = ask(signals, out) if choices == "ask" else scripted(choices) if isinstance(choices, list) else None

    def kept(step: Step) -> None:
        signals.kept = True

    try:
        result = restore_image(args.input, observed=args.observed, reference=args.reference, device=args.device,
                               config=args.config if args.resume else None, time_budget=args.time_budget,
                               progress=not args.quiet, quiet=args.quiet, callback=kept, choose=chooser,
                               stop=signals.stop, resume=args.resume, **given)
    except Cancelled:
        print("interrupted before the first result; nothing was kept", file=sys.stderr)
        return 130
    finally:
        signals.restore()
    if not args.quiet:
        _summary(result, out)
    return 0


def _fmt(scores: dict, key: str, spec: str, unit: str = "") -> str:
    v = scores.get(key)
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def _summary(result, out: Path) -> None:
    m = result.metrics
    line = f"{m['task']}: {m['nfe_total']} network calls in {m['restoration_seconds']:.1f} s"
    if result.reference is not None:
        f = m["final"]
        line += (f"; final PSNR {_fmt(f, 'psnr', '.2f', ' dB')}, SSIM {_fmt(f, 'ssim', '.3f')}, "
                 f"LPIPS {_fmt(f, 'lpips', '.3f')}")
        line += "".join(f"; {name} {_fmt(s, 'psnr', '.2f', ' dB')}" for name, s in m["baselines"].items())
    else:
        line += "; no metrics (pass --reference to score the result)"
    print(line)
    if m["status"] != "complete":
        last = result.steps[-1]
        print(f"{m['status']} after {m['nfe_total']} of {m['nfe_planned']} network calls: kept step {last.index} "
              f"(nfe {last.nfe}) as final.png; continue with --resume {out}")
    n = len(result.steps)
    figures = "progress.png, metrics.png" if result.reference is not None else "progress.png"
    finals = "final.png" if len(result.finals) == 1 else \
        f"final.png (candidate {result.chosen}), final_<i>.png for candidates {', '.join(map(str, result.finals))}"
    print(f"wrote {out}/ (observation.png, {n} step image{'s' if n != 1 else ''}, {finals}, {figures}, metrics.json)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
