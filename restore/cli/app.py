"""A local web page for anytime restoration: upload an image (or pick the example), choose a task,
watch each outer result arrive with its scores, stop when it is good enough, draw a mask for
inp_mask, steer several candidates by clicking one, download final.png and metrics.json.

    python scripts/app.py                       # http://127.0.0.1:7860
    python scripts/app.py --port 8000
    python scripts/app.py --host 0.0.0.0        # reachable from other machines (says so)
    python scripts/app.py --model celebahq --model /models/faces.ckpt --max-calls 100

The model menu offers the bundled prior, celebahq when its weights are cached, and each --model
(loaded at start-up: one that does not load is an error); --allow-any-model lets a person type
any model instead. The limits bound what one person can ask of the server: --max-calls (network
calls per candidate), --max-candidates, --max-pixels (the largest upload decoded), --max-models
(models kept loaded at once).

Works offline; everything it writes lives in one temporary folder, removed when it stops
(Ctrl-C). See restore/page/. The same command: `anytime-app`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from restore.cli.options import ArgumentParser, run_cli
from restore.errors import UsageError, one_line
from restore.page.limits import MAX_CALLS, MAX_CANDIDATES_PAGE, MAX_MODELS, MAX_PIXELS_PAGE, check_limits

LOCAL = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--model", action="append", default=[], metavar="SPEC",
                        help="a model the menu offers besides the bundled prior (and celebahq when cached): a "
                        "diffusers folder or id, or a .ckpt; repeatable; each is loaded at start-up")
    parser.add_argument("--allow-any-model", action="store_true",
                        help="let a person type any model spec (a server path, a model id) into the menu")
    parser.add_argument("--max-models", type=int, default=MAX_MODELS, metavar="N",
                        help=f"models kept loaded at once, the least recently used dropped (default {MAX_MODELS})")
    parser.add_argument("--max-calls", type=int, default=MAX_CALLS, metavar="N",
                        help="network calls per candidate a run may make: outer x inner for a nested solver, "
                        f"steps for a plain one (default {MAX_CALLS})")
    parser.add_argument("--max-candidates", type=int, default=MAX_CANDIDATES_PAGE, metavar="K",
                        help=f"candidates a run may have (default {MAX_CANDIDATES_PAGE})")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS_PAGE, metavar="N",
                        help=f"the largest upload decoded, width x height (default {MAX_PIXELS_PAGE:,}; "
                        "checked from the file's header)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    root = Path(tempfile.mkdtemp(prefix="anytime-restore-page-"))
    # before Gradio and matplotlib are imported: each reads its folder once, at import
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    # Ctrl-C and SIGTERM stop the page and remove its folder, however it was started: a shell
    # starts a background job (`anytime-app &` in a script) with SIGINT ignored, which Python would
    # keep, and the page would then outlive every Ctrl-C
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        limits = check_limits(max_models=args.max_models, max_calls=args.max_calls,
                              max_candidates=args.max_candidates, max_pixels=args.max_pixels)
        specs = list(dict.fromkeys(args.model))
        warm = check_models(specs, args.max_models)
        if args.host not in LOCAL:
            print(f"warning: serving on {args.host}: anyone who can reach this machine on port {args.port} can use "
                  "the page and its compute", file=sys.stderr)
        from restore.page.layout import serve

        serve(args.host, args.port, root=root, block=True, quiet=False, specs=specs, warm=warm,
              allow_any_model=args.allow_any_model, **limits)
    except OSError as error:  # the port is taken, the address is not ours
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {one_line(error)}; "
                         "choose another --port") from None
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def check_models(specs: list[str], keep: int) -> dict[str, object]:
    """Load every --model once, so that one that does not load stops the start (one line); returns
    the last `keep` of them, loaded (the page starts with them in memory)."""
    if not specs:
        return {}
    from restore.models.loading import quiet_loading
    from restore.models.prior import load_prior
    from restore.settings.build import resolve_device

    loaded: dict[str, object] = {}
    for spec in specs:
        try:
            with quiet_loading():
                loaded[spec] = load_prior(spec, device=resolve_device("auto"))
        except Exception as error:  # noqa: BLE001 - a broken file, a wrong folder, an unknown id: one line
            raise UsageError(f"--model {spec}: does not load ({one_line(error)})") from None
        while len(loaded) > keep:
            del loaded[next(iter(loaded))]
    return loaded


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def console() -> int:
    """The `anytime-app` command."""
    return run_cli(main, prog="anytime-app")
