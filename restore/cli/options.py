"""What every command shares: the flags of a restoration's settings (derived from the
declarations: restore.settings.schema.SETTINGS), argparse with one-line errors, the settings the
flags compose (restore.settings.compose), and the exit codes (2 for a UsageError, 130 for an
interrupt)."""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from typing import Any

from degradations import TASKS
from restore.errors import UsageError, one_line
from restore.io.images import MAX_PIXELS
from restore.names import check_path, name_too_long
from restore.models.memory import keep_freed_memory
from restore.models.registry import model_help
from restore.settings.compose import compose
from restore.settings.schema import ALIASES, SETTINGS, SOLVER_NAMES, Setting, Settings


class _Prog:
    """The console command being run (`anytime-evaluate`, ...; set by run_cli), None otherwise."""

    name: str | None = None


PROG = _Prog()


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2 (no usage dump); its
    program name is the console command's when one runs it (else argparse's: the script's)."""

    def __init__(self, *args, **kwargs):
        if PROG.name is not None:
            kwargs["prog"] = PROG.name
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        print(f"error: {one_line(message)} (see --help)", file=sys.stderr)  # a value may hold a line break
        raise SystemExit(2)


def _argument_type(setting: Setting):
    """What argparse turns a flag's text into: the declaration's parser, a Literal's choices, or
    its base type (ranges are checked by the settings schema, so the message is the same as for a
    config file or a keyword)."""
    if setting.spec.parse is not None:
        def parse(text: str, parse=setting.spec.parse):
            try:
                return parse(text)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
        return {"type": parse}
    base = setting.spec.annotation
    while typing.get_origin(base) in (typing.Annotated, typing.Union, types.UnionType):
        args = [a for a in typing.get_args(base) if a is not type(None)]
        base = args[0] if typing.get_origin(base) is typing.Annotated or len(args) == 1 else \
            next((a for a in args if typing.get_origin(a) is not typing.Literal), args[0])
    if base is bool:
        return {"action": "store_true", "default": None}
    if typing.get_origin(base) is typing.Literal:
        return {"choices": typing.get_args(base)}
    return {"type": base if base in (int, float) else str}


_GROUPS = {"task": "the task's options (its declaration: degradations)",
           "nested": "nested solvers: the outer loop (solvers.nested)",
           "solver": "the solvers' options (their declarations: solvers)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of every setting, derived from the declarations (restore.settings.schema.SETTINGS:
    the run's own, the tasks', Nested's and the solvers'), defaults None (then the config, then
    Settings), plus the old names still accepted (--zeta)."""
    groups = {kind: parser.add_argument_group(title) for kind, title in _GROUPS.items()}
    extra = {"task": f": {', '.join(TASKS)}", "solver": f": {', '.join(SOLVER_NAMES)}"}
    for name, setting in SETTINGS.items():
        target = groups.get(setting.kind, parser)
        described = model_help() if name == "model" else setting.help() + extra.get(name, "")  # the model families'
        kwargs = {"dest": name, "help": described, **_argument_type(setting)}
        if setting.spec.metavar:
            kwargs["metavar"] = setting.spec.metavar
        target.add_argument(setting.flag, **kwargs)
    for alias, meanings in ALIASES.items():
        now = "; ".join(f"{SETTINGS[s].flag} of {owner}" for owner, s in meanings)
        groups["solver"].add_argument("--" + alias.replace("_", "-"), dest=alias, type=float,
                                      help=f"the old name of {now} (still accepted)")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, ...")
    parser.add_argument("--max-pixels", type=_pixels, metavar="N", help="the largest image decoded, width x height "
                        f"(default {MAX_PIXELS}; checked from the file's header before any decoding)")


def _pixels(text: str) -> int:
    """--max-pixels: a whole number >= 1."""
    if not (text.isascii() and text.strip().isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of pixels >= 1, got {text!r}")
    return int(text)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings a person set on the command line (every setting's flag and the old names; None: not set)."""
    return {k: getattr(args, k, None) for k in (*SETTINGS, *ALIASES) if k != "config"}


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings of parsed flags: defaults < config file (given, or the task's and model's
    measured one) < the flags (restore.settings.compose)."""
    return compose(given(args), config=getattr(args, "config", None) or None)


#: the flags that name a file or folder (checked by check_paths before anything is read or made)
PATH_FLAGS = ("input", "reference", "out", "resume", "data", "config", "model",
              *(name for name, s in SETTINGS.items() if s.spec.file))


def check_paths(args: argparse.Namespace) -> None:
    """Refuse, in one line naming the flag, a path that the file system cannot take (a name part
    over 255 bytes: restore.names), before anything is read or made."""
    for name in dict.fromkeys(PATH_FLAGS):
        value = getattr(args, name, None)
        if isinstance(value, (str, os.PathLike)):
            check_path(value, "--" + name.replace("_", "-"))


def run_cli(main, argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run `main(argv)`, turning a UsageError (every one-line input error) into exit code 2. Every
    command keeps the network's freed memory for its next call (restore.models.memory). prog: the
    console command's name, which `--help` and argparse's errors then use (PROG.name)."""
    keep_freed_memory()
    PROG.name = prog
    try:
        return main(argv) or 0
    except UsageError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # a path too long for the file system that no check named first
        usage = name_too_long(error)
        if usage is None:
            raise
        print(f"error: {one_line(usage)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
