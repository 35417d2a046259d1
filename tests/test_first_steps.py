"""A newcomer's first steps (issue 33, item 6): the docs' lists of tasks, solvers and choices are
the code's, the console commands call themselves by their names, `--input example` works from
any folder, eval_prior.py without its photo packages says what to install, anytime-evaluate says
when it applies a config, and Ctrl-C ends anytime-app."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _row(doc: str, flag: str) -> str:
    """The text of the options table's row for `flag` in docs/usage/<doc>."""
    for line in (REPO / "docs" / "usage" / doc).read_text().splitlines():
        if line.startswith(f"| `{flag}"):
            return line
    raise AssertionError(f"no row for {flag} in {doc}")


def _listed(row: str, after: str, until: str) -> list[str]:
    text = row.split(after, 1)[1].split(until, 1)[0]
    return [w.strip() for w in text.split(",") if w.strip()]


def test_the_docs_list_every_task_solver_and_choice_the_code_accepts():
    from degradations.registry import tasks
    from restore.cli.evaluate import build_parser
    from restore.settings.schema import Settings
    from solvers.registry import solver_names

    task_row = _row("command-line.md", "--task")
    assert _listed(task_row, "one of:", " (") == list(tasks())
    assert f"default {Settings().task}" in task_row
    assert _listed(_row("command-line.md", "--solver"), "one of:", ":") == list(solver_names())
    assert _listed(_row("evaluation.md", "--solvers"), "of:", " (") == list(solver_names())
    choose = next(a for a in build_parser()._actions if "--choose" in a.option_strings)
    assert _listed(_row("evaluation.md", "--choose"), "one of:", " (") == list(choose.choices)
    assert f"`--task` (default {Settings().task})" in (REPO / "docs" / "usage" / "evaluation.md").read_text()


@pytest.mark.parametrize("module, name", [("restore", "anytime-restore"), ("evaluate", "anytime-evaluate"),
                                          ("app", "anytime-app")])
def test_each_console_command_calls_itself_by_its_name(module, name, monkeypatch, capsys):
    import importlib

    from restore.cli.options import PROG

    console = importlib.import_module(f"restore.cli.{module}").console
    monkeypatch.setattr(sys, "argv", ["/somewhere/else.py", "--help"])
    try:
        with pytest.raises(SystemExit) as done:
            console()
    finally:
        PROG.name = None
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {name} ")


def test_input_example_is_the_shipped_face_from_any_folder(tiny_model_dir, tmp_path, monkeypatch, capsys):
    from restore.cli.restore import main
    from restore.cli.options import run_cli
    from restore.paths import EXAMPLE_IMAGE, named_input

    monkeypatch.chdir(tmp_path)
    assert named_input("example") == str(EXAMPLE_IMAGE) and EXAMPLE_IMAGE.is_file()
    code = run_cli(main, ["--task", "sr4", "--input", "example", "--model", str(tiny_model_dir), "--size", "32",
                          "--outer", "1", "--inner", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "outputs" / "face_sr4" / "final.png").is_file()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "example", format="PNG")
    assert named_input("example") == "example"  # a person's own file of that name wins


def test_eval_prior_without_its_photos_says_what_to_install(tmp_path, capsys):
    from restore.training.held_out import main

    out = tmp_path / "heldout"
    with pytest.raises(SystemExit) as done:
        main(["--save-set", str(out), "--root", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "pip install scikit-image" in err and "apt-get install opencv-doc" in err and "--root" in err
    assert not out.exists()


def test_evaluate_says_when_it_applies_a_config(tiny_model_dir, tmp_path, capsys):
    from restore.cli.evaluate import main
    from restore.cli.options import run_cli

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / "a.png")
    config = tmp_path / "mine.yaml"
    config.write_text("solver: nested\nouter: 2\ninner: 1\neta: 0.5\n")
    code = run_cli(main, ["--data", str(data), "--out", str(tmp_path / "out"), "--task", "sr4", "--model",
                          str(tiny_model_dir), "--size", "32", "--config", str(config), "--solvers", "nested"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert re.search(r"note: settings from .*mine\.yaml", err), err
    assert (tmp_path / "out" / "rows.rank0.csv").is_file()  # documented in docs/usage/evaluation.md
    assert "rows.rank<k>.csv" in (REPO / "docs" / "usage" / "evaluation.md").read_text()
