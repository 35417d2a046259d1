"""Where a solver at its defaults does not suit a run: DPS with fewer than 100 calls (CALLS_NEEDED),
and every (solver, task) measured more than gap_db (1 dB) of final
PSNR under the best solver at the same number of calls, with measurement noise (configs/notes/suited.yaml,
written from the study's rows by scripts/recent_solvers_table.py --suited;
docs/studies/recent-solvers.md). `unsuited(settings)` is the one-line note a restoration then
gives: the measured gap, the solver that did best, and why where the studies say."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from restore.paths import CONFIG_DIR
from restore.settings.model_spec import resolve_model
from restore.settings.schema import Settings

TABLE = CONFIG_DIR / "notes" / "suited.yaml"
#: solvers that need many calls whatever the task and noise: (calls, why)
CALLS_NEEDED = {"dps": (100, "its gradient steps need hundreds of calls (its paper: 1000); with few calls it scores "
                             "far below the others (docs/studies/anytime-defaults.md)")}
#: the prior the table was measured with: other models' gaps are unknown, so they get no note
MEASURED_MODEL = "natural-ddpm"


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(TABLE.read_text(encoding="utf-8")) if TABLE.is_file() else {"gaps": [], "why": {}, "measured": {}}


def unsuited(settings: Settings) -> str | None:
    """The note for a run whose (solver, task) was measured more than gap_db under the best at the
    measured budget nearest its own calls, when its measurement is noisy; else None."""
    nested, spec = settings.parts
    solver = f"nested-{spec.name}" if nested else spec.name
    if spec.name in CALLS_NEEDED and settings.nfe < CALLS_NEEDED[spec.name][0]:
        return f"{solver} with {settings.nfe} network calls: {CALLS_NEEDED[spec.name][1]}"
    if settings.sigma_y <= 0 or resolve_model(settings.model, quiet=True) != MEASURED_MODEL:
        return None
    known = table()
    rows = [g for g in known["gaps"] if g["task"] == settings.task]
    budgets = known.get("measured", {}).get(settings.task, [])
    if not budgets:
        return None
    calls = min(budgets, key=lambda c: (abs(c - settings.nfe), c))
    hit = next((g for g in rows if g["solver"] == solver and g["calls"] == calls), None)
    if hit is None:
        return None
    why = known["why"].get(solver)
    return (f"{solver} on noisy {settings.task}: measured {hit['gap_db']:.1f} dB below {hit['best']} at {calls} calls on "
            f"the held-out photos{f': {why}' if why else ''} (docs/studies/recent-solvers.md)")
