"""The one-line note for a solver that does not suit a run (restore/settings/suited.py): its table
(configs/notes/suited.yaml) is what the study's shipped rows give, every gap in it is a real one,
and a restoration says it only where it was measured (noisy, the bundled prior, that task)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from restore.settings.schema import Settings
from restore.settings.suited import TABLE, table, unsuited
from restore.studies.recent_solvers import GAP_DB, suited, table_stats

REPO = Path(__file__).resolve().parents[1]
ROWS = sorted((REPO / "data" / "results" / "recent_solvers").glob("*.csv"))


def test_the_table_is_the_studys_rows_and_every_gap_is_real():
    assert ROWS and yaml.safe_load(TABLE.read_text()) == suited(ROWS)  # written by the script, not by hand
    for path in ROWS:
        task, _, calls = path.stem.rsplit("_", 2)
        stats = table_stats(path)
        best = max(s["psnr"] for s in stats.values())
        listed = {g["solver"] for g in table()["gaps"] if g["task"] == task and g["calls"] == int(calls)}
        assert listed == {s for s, m in stats.items() if best - m["psnr"] > GAP_DB}
        assert all(m["psnr"] <= best for m in stats.values())


def test_the_note_is_given_where_measured_and_only_there():
    gap = next(g for g in table()["gaps"] if g["calls"] == 20 and not g["solver"].startswith(("dps", "nested-dps")))
    line = unsuited(Settings(solver=gap["solver"], task=gap["task"], sigma_y=0.05, model="natural-ddpm"))
    assert line.startswith(f"{gap['solver']} on noisy {gap['task']}: measured {gap['gap_db']:.1f} dB below {gap['best']}")
    assert "\n" not in line
    assert unsuited(Settings(solver=gap["solver"], task=gap["task"], sigma_y=0.0, model="natural-ddpm")) is None
    assert unsuited(Settings(solver=gap["best"], task=gap["task"], sigma_y=0.05, model="natural-ddpm")) is None
    assert unsuited(Settings(solver=gap["solver"], task="deno", sigma_y=0.05, model="natural-ddpm")) is None  # not measured
    assert unsuited(Settings(solver=gap["solver"], task=gap["task"], sigma_y=0.05, model="celebahq")) is None
    # DPS with few calls, on any task and noise
    assert "hundreds of calls" in unsuited(Settings(solver="dps", task="deno", sigma_y=0.0, steps=20))
    assert unsuited(Settings(solver="dps", task="deno", sigma_y=0.0, steps=100)) is None


@pytest.mark.parametrize("solver", ["reddiff", "ddnm"])
def test_a_restoration_says_it(solver):
    from restore import restore_image

    result = restore_image(torch.zeros(1, 3, 16, 16), task="sr4", sigma_y=0.05, solver=solver, steps=2,
                           model="natural-ddpm", quiet=True)
    said = [n for n in result.notes if "docs/studies/recent-solvers.md" in n]
    expected = unsuited(Settings(solver=solver, task="sr4", sigma_y=0.05, steps=2, model="natural-ddpm"))
    assert said == ([expected] if expected else [])
    assert (solver == "reddiff") == bool(said)  # measured 3 dB under the best on sr4; DDNM is the best
