#!/usr/bin/env python
"""Restore one image with anytime previews and PSNR / SSIM / LPIPS tracking.

    python scripts/restore.py --task sr4 --input face.png
    python scripts/restore.py --task sr4 --input lowres64.png --observed --reference face.png
    python scripts/restore.py --task inp_mask --mask holes.png --input face.png --solver ddrm

Simulation mode (default): --input is a clean image; it is degraded with the task's operator
(plus --sigma-y noise) and restored, and every outer result is scored against it. --observed:
--input is the degraded image itself; metrics need --reference. Writes to --out (default
outputs/<input stem>_<task>/): observation.png, step_<k>_nfe<n>.png, final.png, progress.png,
metrics.png, metrics.json. See restore/api.py for the details (the same job from Python).
User errors print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _paths  # noqa: F401  (must come first: this file's name would shadow the restore package)
from restore.settings import ArgumentParser, UsageError, add_arguments, run_cli, settings_from_args


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Command-line flags override --config; see configs/README.md.")
    parser.add_argument("--input", required=True, help="the image: clean (simulation) or degraded (--observed)")
    parser.add_argument("--observed", action="store_true",
                        help="--input is already degraded (low-resolution for srN, grey for color, ...)")
    parser.add_argument("--reference", help="clean image to score against in --observed mode")
    add_arguments(parser)
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="anytime stop: return the latest outer result once this much restoration time has passed")
    parser.add_argument("--out", help="output folder (default outputs/<input stem>_<task>/)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, notes or summary")
    return parser


def _fmt(scores: dict, key: str, spec: str, unit: str = "") -> str:
    v = scores.get(key)
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def main(argv: list[str] | None = None) -> int:
    from restore.api import restore_image
    from restore.report import check_output_dir

    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    out = Path(args.out) if args.out else Path("outputs") / f"{Path(args.input).stem}_{settings.task}"
    check_output_dir(out, args.overwrite)  # before any work
    if args.time_budget is not None and not args.time_budget > 0:
        raise UsageError(f"--time-budget must be a positive number of seconds, got {args.time_budget}")
    if args.reference and not args.observed:
        raise UsageError("--reference is only for --observed mode (in simulation mode the input is the reference)")

    result = restore_image(args.input, settings=settings, observed=args.observed, reference=args.reference,
                           device=args.device, time_budget=args.time_budget, progress=not args.quiet,
                           quiet=args.quiet)
    folder = result.save(out, overwrite=args.overwrite)
    if not args.quiet:
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
        n = len(result.steps)
        figures = "progress.png, metrics.png" if result.reference is not None else "progress.png"
        print(f"wrote {folder}/ (observation.png, {n} step image{'s' if n != 1 else ''}, final.png, {figures}, "
              "metrics.json)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
