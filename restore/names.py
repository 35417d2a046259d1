"""Path names the file system cannot take: a name part over 255 bytes (NAME_MAX on Linux, macOS
and Windows file systems) or a whole path over 4096 bytes (Linux's PATH_MAX). Every path a person
gives is checked here before it is used, so such a path is one line naming the flag or keyword
(`check_path`), not the operating system's `OSError: [Errno 36] File name too long`;
`name_too_long` turns that OSError, wherever it still comes from, into the same kind of line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from restore.errors import UsageError

#: the longest name part (bytes) and whole path (bytes) the toolkit passes to the file system
NAME_MAX, PATH_MAX = 255, 4096


def _shown(text: str, keep: int = 40) -> str:
    return text if len(text) <= keep else text[:keep] + "..."


def check_path(path: str | os.PathLike | None, what: str) -> None:
    """UsageError when `path` (given as `what`: a flag such as "--out", or a keyword "out=") has a
    name part over NAME_MAX bytes or is over PATH_MAX bytes in all; None passes."""
    if path is None:
        return
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    whole = len(os.fsencode(text))
    if whole > PATH_MAX:
        raise UsageError(f"{what} {_shown(text)}: the path is {whole} bytes long, over the file system's limit of "
                         f"{PATH_MAX}; choose a shorter path")
    for part in Path(text).parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            raise UsageError(f"{what} {_shown(text)}: the name {_shown(part, 24)} is {size} bytes long, over the file "
                             f"system's limit of {NAME_MAX} bytes a name; choose a shorter name")


def name_too_long(error: OSError) -> UsageError | None:
    """The one-line UsageError for an OSError of a name the file system refused (ENAMETOOLONG),
    else None."""
    if error.errno != errno.ENAMETOOLONG:
        return None
    name = os.fsdecode(error.filename) if error.filename is not None else "a path"
    return UsageError(f"{_shown(name)}: the name is too long for the file system (at most {NAME_MAX} bytes a "
                      f"name, {PATH_MAX} a path); choose a shorter name")
