#!/usr/bin/env python
"""A local web page for anytime restoration: upload an image (or pick the example), choose a task,
watch each outer result arrive with its scores, stop when it is good enough, draw a mask for
inp_mask, steer several candidates by clicking one, download final.png and metrics.json.

    python scripts/app.py                       # http://127.0.0.1:7860
    python scripts/app.py --port 8000
    python scripts/app.py --host 0.0.0.0        # reachable from other machines (says so)

Works offline; everything it writes lives in one temporary folder, removed when it stops
(Ctrl-C). See restore/page.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.settings import ArgumentParser, UsageError, run_cli

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
    # before Gradio is imported: it reads its temporary folder once, at import
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C, so that the folder is removed
    try:
        from restore.page import serve

        serve(args.host, args.port, root=root, block=True, quiet=False)
    except OSError as error:  # the port is taken, the address is not ours
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {' '.join(str(error).split())}; "
                         "choose another --port") from None
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(run_cli(main))
