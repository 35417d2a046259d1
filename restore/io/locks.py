"""An exclusive claim on a folder while a run writes into it: a second process (another run, a
--resume, evaluate.py on the same --out) is refused in one line instead of writing into it too.

The claim is an advisory lock (flock) on the file `.lock` in the folder, which holds the owner's
process id; the kernel releases it if the process dies, so a killed run never leaves the folder
locked. A folder that cannot take the file (read-only, no permission) is refused the same way,
before any work. On systems without fcntl (Windows) folders are not locked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from restore.errors import UsageError, WriteError, one_line

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = ".lock"


class FolderLock:
    """Hold `folder` for this process until `release()` (a context manager too)."""

    def __init__(self, folder: str | Path, what: str = "folder"):
        self.folder, self.path, self.fd = Path(folder), Path(folder) / LOCK_FILE, None
        if fcntl is None:
            return
        while True:  # until the file locked is the one at the path (another holder may remove it)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise WriteError(f"{what} {self.folder} cannot be written ({one_line(error)}); "
                                 "choose a folder this process can write to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise UsageError(f"{what} {self.folder} is in use by another run (process {owner}); wait for it "
                                 "to end, or choose another folder") from None
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        """Give the folder back (the lock file goes; a folder that was removed meanwhile is fine)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)  # closing releases the flock
        self.fd = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
