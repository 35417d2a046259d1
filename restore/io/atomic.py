"""Writing a file so that it is either whole or absent: into a temporary file beside it, flushed to
the disk, then renamed over it (an atomic step on POSIX and Windows file systems); JSON written
strict (no NaN or Infinity, which are not JSON)."""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Callable


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


def finite(data: Any) -> Any:
    """`data` with every NaN or infinite float replaced by None, so that it is strict JSON."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def json_text(data: Any, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259: no NaN or Infinity; those become null) with a final newline."""
    return json.dumps(finite(data), indent=indent, allow_nan=False) + "\n"


def write_json(path: str | Path, data: Any, indent: int | None = 2) -> None:
    """`data` as strict JSON (json_text), written atomically."""
    write_text(path, json_text(data, indent))
