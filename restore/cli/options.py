"""What every command shares: the flags of a restoration's settings, argparse with one-line
errors, the settings the flags compose (restore.settings.compose), and the exit codes (2 for a
UsageError, 130 for an interrupt)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

from degradations import TASKS
from restore.errors import UsageError, one_line
from restore.io.images import MAX_PIXELS
from restore.models.memory import keep_freed_memory
from restore.models.registry import model_help
from restore.settings.compose import compose
from restore.settings.schema import Settings, parse_inner, parse_size, parse_times


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str):
        print(f"error: {one_line(message)} (see --help)", file=sys.stderr)  # a value may hold a line break
        raise SystemExit(2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every restoration command shares (defaults None: config, then Settings)."""
    parser.add_argument("--task", help=f"degradation, one of: {', '.join(TASKS)}")
    parser.add_argument("--sigma-y", type=float, help="measurement noise std on the [0, 1] pixel scale (default 0)")
    parser.add_argument("--mask", help="mask image for inp_mask (black = missing)")
    parser.add_argument("--kernel", help="blur kernel for task deblur: a .npy array or an image, any size "
                        "(normalised to sum 1); circular boundaries unless --boundary exact")
    parser.add_argument("--boundary", choices=("periodic", "exact"), help="the Fourier blurs' edges: periodic "
                        "(default; circular, every solver) or exact (a photo blurred by a lens: the blur of a "
                        "larger scene, cropped; DiffPIR and DPS only)")
    parser.add_argument("--model", help=model_help())
    parser.add_argument("--solver", metavar="NAME", help="ddrm, ddnm, diffpir, dps, pigdm, or nested-<one of them> for "
                        "its anytime version (default nested = nested-ddrm)")
    parser.add_argument("--outer", type=int, help="nested solvers: outer steps (anytime previews, default 4)")
    parser.add_argument("--inner", type=parse_inner, metavar="N|N1,N2,..",
                        help="nested solvers: network calls per outer step (default 5), or one budget per outer step")
    parser.add_argument("--outer-power", type=float, help="nested solvers: outer times t_start ((N-j)/N)^p "
                        "(default 2: denser towards clean; 1 = the paper's even grid; docs/studies/nested-inpainting.md)")
    parser.add_argument("--outer-eta", type=float, help="nested solvers: DDIM eta of the outer loop (default 0)")
    parser.add_argument("--outer-times", type=parse_times, metavar="T1,T2,..|cosine",
                        help="nested solvers: the outer times, one per outer step, or 'cosine' (t_start cos(pi/2 j/N)); "
                        "overrides --outer-power")
    parser.add_argument("--outer-noise", type=float, help="nested solvers: share of fresh noise when the outer step "
                        "re-noises the inner result (0: DDIM, default; 1: a restart; docs/studies/nested-inpainting.md)")
    parser.add_argument("--inner-power", type=float, help="nested solvers: every inner run but the last calls at "
                        "t (s/t)^p over the solver's grid s (default 1: the solver's grid; < 1 gathers the calls at the "
                        "top of each run; docs/studies/nested-inpainting.md)")
    parser.add_argument("--steps", type=int, help="plain solvers: network calls (default 20)")
    parser.add_argument("--eta", type=float, help="DDRM and DDNM eta (default 0.85)")
    parser.add_argument("--eta-b", type=float, help="DDRM eta_b (default 1.0)")
    parser.add_argument("--zeta", type=float, help="DiffPIR zeta (default 0.1) or DPS step size (default 1.0)")
    parser.add_argument("--lambda", dest="lam", type=float, help="DiffPIR lambda (default 1.0, as its released code; "
                        "30 measured best on noisy deblurring: docs/studies/any-blur.md)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--size", type=parse_size, metavar="S|native",
                        help="restore at S x S (centre crop and resize) or at the input's own size (native); default "
                        "native, or the model's size for one trained at a single size (CelebA-HQ)")
    parser.add_argument("--tile", type=int, metavar="PIXELS", help="call the network on overlapping tiles of this "
                        "size (0: never; default: only when one call would not fit the memory)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                        help="the network's arithmetic (autocast; the solver stays fp32): fp32 (default), bf16, fp16 (GPU)")
    parser.add_argument("--compile", action="store_true", default=None,
                        help="torch.compile the network (CUDA graphs on a GPU; slow to build on a CPU)")
    parser.add_argument("--candidates", type=int, metavar="K",
                        help="K restorations of the same measurement, each with its own noise (default 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    parser.add_argument("--max-pixels", type=int, metavar="N", help="the largest image decoded, width x height "
                        f"(default {MAX_PIXELS}; checked from the file's header before any decoding)")
    parser.add_argument("--config", help="YAML file of settings (see configs/); flags override it. Default: the "
                        "measured configs/<task>_<model>.yaml when there is one; 'none' ignores it")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings of parsed flags: defaults < config file (given, or the task's and model's
    measured one) < the flags (restore.settings.compose)."""
    explicit: dict[str, Any] = {f.name: getattr(args, f.name, None) for f in fields(Settings) if f.name != "config"}
    return compose(explicit, config=getattr(args, "config", None) or None)


def run_cli(main, argv: list[str] | None = None) -> int:
    """Run `main(argv)`, turning a UsageError (every one-line input error) into exit code 2. Every
    command keeps the network's freed memory for its next call (restore.models.memory)."""
    keep_freed_memory()
    try:
        return main(argv) or 0
    except UsageError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
