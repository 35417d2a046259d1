"""The errors a person sees as one line: bad input, an unreadable image, a model that cannot be
found, an output that cannot be written.

Every front end (the command line, the page, evaluate.py) prints `error: <message>` for a
`UsageError` and exits with code 2; the message says what is wrong and what to do. The more
specific kinds are UsageErrors too, so one `except UsageError` catches every input error. All
are ValueErrors, as a wrong value given to a function is in Python.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the person; its message is one line saying what to do."""


class ImageReadError(UsageError):
    """An image file could not be read (missing, not an image, corrupt)."""


class PriorNotFound(UsageError):
    """A model spec that cannot be resolved or loaded."""


class WriteError(UsageError):
    """An output could not be written (a full disk, a folder that turned read-only): the run ends
    with this one line and keeps what it wrote whole."""


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__
