"""A local web page for anytime restoration: upload an image (or pick the example), choose a task,
watch each outer result arrive with its scores, stop when it is good enough, draw a mask for
inp_mask, steer several candidates by clicking one, download final.png and metrics.json.

    python scripts/app.py                       # http://127.0.0.1:7860
    python scripts/app.py --port 8000
    python scripts/app.py --host 0.0.0.0        # reachable from other machines (says so)

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

LOCAL = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    if args.host not in LOCAL:
        print(f"warning: serving on {args.host}: anyone who can reach this machine on port {args.port} can use the "
              "page and its compute", file=sys.stderr)
    root = Path(tempfile.mkdtemp(prefix="anytime-restore-page-"))
    # before Gradio and matplotlib are imported: each reads its folder once, at import
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C, so that the folder is removed
    try:
        from restore.page.layout import (
            serve,  # here: Gradio reads GRADIO_TEMP_DIR once, when imported
        )

        serve(args.host, args.port, root=root, block=True, quiet=False)
    except OSError as error:  # the port is taken, the address is not ours
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {one_line(error)}; "
                         "choose another --port") from None
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def console() -> int:
    """The `anytime-app` command."""
    return run_cli(main)
