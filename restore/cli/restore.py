"""Restore one image with anytime previews, PSNR / SSIM / LPIPS tracking, candidates to steer.

    python scripts/restore.py --task sr4 --input face.png           # or: anytime-restore --task sr4 ...
    anytime-restore --task sr4 --input example                      # the shipped example face
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
import sys
from pathlib import Path

from restore.api import Cancelled, restore_image
from restore.cli.options import (
    ArgumentParser,
    add_arguments,
    check_paths,
    run_cli,
    settings_from_args,
)
from restore.cli.options import given as options_given
from restore.cli.steering import Signals, ask, parse_choices
from restore.errors import UsageError
from restore.outputs.resume import load_state
from restore.paths import named_input
from restore.restoration.result import Step
from restore.settings.schema import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="Command-line flags override --config; see configs/README.md.")
    parser.add_argument("--input", help="the image: clean (simulation) or degraded (--observed); 'example': the "
                        "shipped example face")
    parser.add_argument("--observed", action="store_true", default=None,
                        help="--input is already degraded (low-resolution for srN, grey for color, ...)")
    parser.add_argument("--reference", help="clean image to score against in --observed mode")
    add_arguments(parser)
    parser.add_argument("--choose", metavar="ask|none|LIST",
                        help="with --candidates K > 1: 'ask' after each step (default on a terminal), 'none' "
                             "(all continue independently), or one scripted choice per step, e.g. 2,1 "
                             "(0 or empty: keep all at that step); by region: 2@eyes.png+1 is candidate 2 in "
                             "the white pixels of eyes.png and 1 elsewhere, 2@a.png+3@b.png+1 several regions")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="anytime stop: keep the latest result once this much restoration time has passed")
    parser.add_argument("--out", help="output folder (default outputs/<input stem>_<task>/)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--resume", metavar="OUT", help="continue the stopped run in folder OUT to its planned end")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, notes or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_paths(args)
    if args.resume:
        if args.out or args.overwrite:
            raise UsageError("--resume writes on into its own folder; leave out --out and --overwrite")
        saved = load_state(args.resume)["identity"]["settings"]
        try:
            settings = Settings(**saved)
        except TypeError:
            raise UsageError(f"--resume {args.resume}: the run was saved by another version of this tool; start a "
                             "new run instead") from None
        out = Path(args.resume)
        given = dict(options_given(args))  # every setting given must agree with the saved run's
    else:
        if not args.input:
            raise UsageError("the following arguments are required: --input (or --resume OUT)")
        args.input = named_input(args.input)  # "example": the shipped example face, from any folder
        settings = settings_from_args(args)
        out = Path(args.out) if args.out else Path("outputs") / f"{Path(args.input).stem}_{settings.task}"
        given = {"settings": settings, "out": out, "overwrite": args.overwrite}
    if args.reference and not args.observed and not args.resume:
        raise UsageError("--reference is only for --observed mode (in simulation mode the input is the reference)")
    anytime = settings.anytime_steps
    choices = parse_choices(args.choose, settings.candidates, anytime, sys.stdin.isatty())

    signals = Signals(args.quiet)
    chooser = ask(signals, out) if choices == "ask" else choices if isinstance(choices, list) else None  # a list: checked first

    def kept(step: Step) -> None:
        signals.kept = True

    try:
        result = restore_image(args.input, observed=args.observed, reference=args.reference, device=args.device,
                               config=args.config if args.resume else None, time_budget=args.time_budget,
                               max_pixels=args.max_pixels,
                               progress=not args.quiet, quiet=args.quiet, callback=kept, choose=chooser,
                               stop=signals.stop, resume=args.resume, naming="flag", **given)
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




def console() -> int:
    """The `anytime-restore` command."""
    return run_cli(main, prog="anytime-restore")
