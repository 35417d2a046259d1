"""Writing a file so that it is either whole or absent: into a temporary file beside it, flushed to
the disk, then renamed over it (an atomic step on POSIX and Windows file systems)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """write(tmp) into a temporary file beside `path` (same suffix, so writers that go by it still
    do), fsync it, then rename it to `path`; the temporary file never outlives the call."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(3)}{path.suffix}")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """`text` as the whole content of `path` (UTF-8), written atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
