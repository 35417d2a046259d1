"""What one person may ask of the page, and what the page may say to anyone: the start-up limits
(models loaded, network calls per candidate, candidates, pixels decoded) and their checks, and
messages cut to one line with no server path in them. No Gradio here: restore/cli/app.py reads the
defaults before Gradio may be imported."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from restore.errors import UsageError, one_line
from restore.settings.rules import MAX_CANDIDATES
from restore.settings.schema import Settings, solver_parts

#: the start-up limits' defaults (restore/cli/app.py's --max-models, --max-calls, --max-candidates,
#: --max-pixels): models loaded at once, network calls per candidate, candidates, pixels decoded
MAX_MODELS = 2
MAX_CALLS = 200
MAX_CANDIDATES_PAGE = 8
MAX_PIXELS_PAGE = 4_000_000
#: the page's number fields, as their labels name them in a message
FIELDS = {"sigma_y": "sigma_y", "seed": "Seed", "outer": "Outer steps", "inner": "Inner steps", "steps": "DDRM steps",
          "candidates": "Candidates K"}
_PATH = re.compile(r"(?<![\w.:/~-])(?:~|\.{1,2})?/[^\s'\"`,;:()\[\]{}<>]+")


def check_limits(**limits: Any) -> dict[str, int]:
    """The start-up limits (max_models, max_calls, max_candidates, max_pixels) checked: whole numbers
    >= 1, candidates at most restore.settings.rules.MAX_CANDIDATES; a UsageError naming the flag."""
    for name, value in limits.items():
        flag = "--" + name.replace("_", "-")
        top = MAX_CANDIDATES if name == "max_candidates" else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (top is not None and value > top):
            within = f" and at most {top}" if top is not None else ""
            raise UsageError(f"{flag} must be a whole number >= 1{within}, got {value!r}")
    return dict(limits)


def public(text: Any, *folders: str | Path) -> str:
    """`text` on one line with every absolute path in it cut to its last part (a file's name): what
    the page may show anyone. folders: known folders (the page's), cut first wherever they appear
    (their names may hold spaces)."""
    line = one_line(text) if isinstance(text, BaseException) else " ".join(str(text).split())
    for folder in folders:
        for form in {str(folder), str(Path(folder).resolve())}:
            line = line.replace(form, "")
    return _PATH.sub(lambda m: Path(m.group(0).rstrip("/.")).name or "a folder", line)


def menu_name(spec: str) -> str:
    """The model menu's name for a model spec: a local file or folder by its name (its path stays on
    the server), anything else (the bundled prior, an alias, a model id) as given."""
    path = Path(spec).expanduser()
    return path.name if ("/" in spec or spec.startswith("~")) and path.exists() else spec


class Refused:
    """An editor image over the pixel limit, in place of the decoded image (Gradio's ImageEditor
    decodes what the browser sends before the handler runs: restore.page.layout's editor puts
    this instead, from the file's header)."""

    def __init__(self, name: str, width: int, height: int, limit: int):
        self.name, self.width, self.height, self.limit = name, width, height, limit

    def message(self) -> str:
        return too_large(self.name, self.width, self.height, self.limit)


def too_large(name: str, width: int, height: int, limit: int) -> str:
    return (f"{name} is too large: {width}x{height} = {width * height:,} pixels, over this page's limit of "
            f"{limit:,}; upload a smaller image")


def header_size(path) -> tuple[int, int] | None:
    """(width, height) from an image file's header (nothing decoded), or None if PIL cannot tell."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - not an image: no size
        return None



def check_fields(solver, numbers: dict[str, Any], max_calls: int, max_candidates: int) -> None:
    """The page's number fields: none empty (compose would take an empty one as "not set"), each of
    its setting's type and range (restore.settings.schema), and within the page's limits."""
    for name, value in numbers.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            raise UsageError(f"{FIELDS[name]} is empty: enter a number")
    checked = {name: Settings.check(name, value) for name, value in numbers.items()}
    nested = solver_parts(solver if isinstance(solver, str) else str(solver))[0]
    inner = checked["inner"]
    budgets = list(inner) if isinstance(inner, list) else [inner] * checked["outer"]
    check_calls(nested, budgets, checked["steps"], checked["candidates"], max_calls, max_candidates)

def check_calls(nested: bool, budgets: list[int], steps: int, candidates: int, max_calls: int,
                max_candidates: int) -> None:
    """Network calls per candidate and candidates within the page's limits."""
    calls = sum(budgets) if nested else steps
    if calls > max_calls:
        what = (f"{len(budgets)} outer x {budgets[0]} inner steps" if len(set(budgets)) == 1 else
                "+".join(map(str, budgets)) + " inner steps") if nested else f"{steps} DDRM steps"
        raise UsageError(f"{what} make {calls} network calls per candidate, over this page's limit of "
                         f"{max_calls}: choose fewer steps")
    if candidates > max_candidates:
        raise UsageError(f"Candidates K must be at most {max_candidates} on this page, got {candidates}")
