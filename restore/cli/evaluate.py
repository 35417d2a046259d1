"""The command line of the batch evaluation (scripts/evaluate.py, `anytime-evaluate`). The work:
restore.evaluation.run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from restore.cli.options import (
    ArgumentParser,
    add_arguments,
    check_paths,
    run_cli,
    settings_from_args,
)
from restore.errors import UsageError
from restore.evaluation.run import CHOICES, EvalConfig, run_evaluation
from restore.settings.configs import load_config


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Evaluate solvers at equal network calls over a folder of images "
                    "(per-image CSV, summary JSON, anytime plot); resumable; runs under torchrun.")
    parser.add_argument("--data", required=True, help="folder of clean images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (resumed when it holds the same run)")
    parser.add_argument("--solvers", default="nested,ddrm",
                        help="comma-separated solvers to compare: ddrm, ddnm, diffpir, dps, nested-<one of them> "
                             "(nested = nested-ddrm); default nested,ddrm. Plain solvers get the nested split's "
                             "calls unless --steps is given")
    parser.add_argument("--choose", default="none", choices=CHOICES,
                        help="with --candidates K: 'oracle-lpips' also runs K candidates steered by an oracle that "
                             "keeps the best LPIPS after each step (an upper bound for a person's choice); "
                             "'oracle-regions' that one and one steered by region (the best LPIPS in each cell of "
                             "a 4 x 4 grid)")
    parser.add_argument("--batch-size", type=int, default=4, help="images restored together (default 4)")
    parser.add_argument("--save-images", action="store_true", help="also write the final restorations to OUT/images/")
    parser.add_argument("--overwrite", action="store_true", help="discard an existing evaluation in OUT with other arguments")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images (sorted)")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="go on without images that cannot be read (listed in summary.json); by default any "
                             "unreadable image stops the run before its first network call")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or table")
    add_protocol_arguments(parser)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_paths(args)
    if args.protocol is not None:
        return protocol_main(args)
    if args.protocol_tasks is not None:
        raise UsageError("--protocol-tasks chooses among a protocol's tasks: give --protocol NAME too")
    if args.solver is not None:
        raise UsageError("evaluate.py compares solvers: use --solvers (e.g. --solvers nested,ddrm), not --solver")
    solvers = tuple(s.strip() for s in args.solvers.split(",") if s.strip())
    if args.boundary == "exact" and solvers:  # the settings' own solver must be one the boundary allows
        args.solver = solvers[0]
    settings = settings_from_args(args)
    explicit_steps = args.steps is not None or (bool(args.config) and "steps" in load_config(args.config))
    cfg = EvalConfig(data=Path(args.data), out=Path(args.out),
                     solvers=solvers, choose=args.choose,
                     batch_size=args.batch_size, save_images=args.save_images, overwrite=args.overwrite,
                     quiet=args.quiet, limit=args.limit, skip_unreadable=args.skip_unreadable,
                     device=args.device, max_pixels=args.max_pixels)
    try:
        run_evaluation(settings, cfg, explicit_steps=explicit_steps)
    except UsageError:
        if int(os.environ.get("RANK", "0")) != 0:
            raise SystemExit(2) from None  # every rank fails alike; rank 0 says why
        raise
    return 0


def console() -> int:
    """The `anytime-evaluate` command."""
    return run_cli(main, prog="anytime-evaluate")


# --------------------------------------------------------------------------- --protocol
# The field's benchmark suites (restore.evaluation.protocol, configs/protocols/); kept apart from
# the per-task evaluation above.
#: flags a protocol fixes itself, refused beside --protocol
PROTOCOL_FIXES = ("task", "sigma_y", "mask", "kernel", "boundary", "solver", "outer", "inner", "steps",
                  "candidates", "config")


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    from restore.evaluation.protocol import builtin_protocols

    parser.add_argument("--protocol", metavar="NAME|FILE",
                        help=f"run a benchmark suite: {', '.join(builtin_protocols())} (configs/protocols/), or a "
                             "copy you edited; its tasks, noise, image size and metrics (FID, KID) are fixed by it; "
                             "--solvers takes budgets: ddrm@20,nested-ddrm@4x5,dps@1000; writes table.md, "
                             "table.tex, anytime.png (docs/usage/evaluation.md)")
    parser.add_argument("--protocol-tasks", metavar="T1,T2", help="with --protocol: only these of its tasks")


def protocol_main(args: argparse.Namespace) -> int:
    from restore.evaluation.protocol import load_protocol, parse_solvers
    from restore.evaluation.protocol_run import ProtocolConfig, run_protocol

    given = [f"--{k.replace('_', '-')}" for k in PROTOCOL_FIXES if getattr(args, k, None) is not None]
    if args.choose != "none":
        given.append("--choose")
    if given:
        raise UsageError(f"--protocol fixes the tasks, noise and budgets itself: drop {', '.join(given)} (copy the "
                         "protocol file and edit it for a variant; budgets go in --solvers, e.g. ddrm@20)")
    protocol = load_protocol(args.protocol)
    size = args.size
    if size == "native":
        raise UsageError("--size native: a protocol restores at its own size; give a number of pixels or leave --size out")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    tasks = [t.strip() for t in args.protocol_tasks.split(",") if t.strip()] if args.protocol_tasks else None
    cfg = ProtocolConfig(protocol=protocol, data=Path(args.data), out=Path(args.out),
                         solvers=parse_solvers(args.solvers), model=args.model, seed=args.seed or 0, size=size,
                         limit=args.limit, tasks=tasks, batch_size=args.batch_size, device=args.device,
                         overwrite=args.overwrite, quiet=args.quiet, save_images=args.save_images,
                         skip_unreadable=args.skip_unreadable)
    try:
        run_protocol(cfg)
    except UsageError:
        if int(os.environ.get("RANK", "0")) != 0:
            raise SystemExit(2) from None
        raise
    return 0
