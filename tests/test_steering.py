"""Anytime for a person: the output folder filling as the run goes, candidates and choices,
stopping (real signals too) and resuming, through scripts/restore.py and restore_image; with a
tiny random model (fast, meaningless images)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli_restore import SCRIPT, _rgb, cli, cli_module

REPO = Path(__file__).resolve().parents[1]


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(int)


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def base(src, out, model, *extra):
    return ["--task", "sr4", "--input", src, "--out", out, "--model", model, "--quiet", *extra]


# --------------------------------------------------------------------------- the live folder
def test_folder_fills_as_the_run_goes(tiny_model_dir, tmp_path):
    from restore import restore_image

    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    seen = []

    def look(step):
        names = sorted(p.name for p in out.iterdir())
        m = metrics(out)
        seen.append((step.index, names, m["status"], m["nfe_total"]))
        assert np.array_equal(pixels(out / "latest.png"), pixels(out / f"step_{step.index}_nfe{step.nfe}.png"))

    result = restore_image(src, "sr4", model=str(tiny_model_dir), outer=3, inner=2, out=out, quiet=True, callback=look)
    assert [s[0] for s in seen] == [1, 2, 3]
    # .lock: the folder is held by this run while it writes (restore.io.locks), and only then
    assert seen[0][1] == [".lock", "latest.png", "metrics.json", "observation.png", "state.pt", "step_1_nfe2.png"]
    assert [(s[2], s[3]) for s in seen] == [("running", 2), ("running", 4), ("running", 6)]
    assert "final.png" not in seen[-1][1] and not any(n.startswith(".") and n != ".lock" for s in seen for n in s[1])
    assert not (out / ".lock").exists()
    m = metrics(out)
    assert m["status"] == "complete" and not (out / "state.pt").exists()
    assert result.status == "complete" and [s.nfe for s in result.steps] == [2, 4, 6]


# --------------------------------------------------------------------------- candidates, choices
def test_candidates_and_a_scripted_choice(tiny_model_dir, tmp_path, capsys):
    src = _rgb(tmp_path / "in.png", 32, 32)
    free, steered = tmp_path / "free", tmp_path / "steered"
    common = ["--outer", "3", "--inner", "2", "--candidates", "3", "--sigma-y", "0.05"]
    assert cli(base(src, free, tiny_model_dir, *common, "--choose", "none"), capsys)[0] == 0
    assert cli(base(src, steered, tiny_model_dir, *common, "--choose", "2,,3"), capsys)[0] == 0
    names = {p.name for p in steered.iterdir()}
    assert {"candidates_step1.png", "candidates_step3.png", "final_1.png", "final_2.png", "final_3.png"} <= names
    m, f = metrics(steered), metrics(free)
    assert m["choices"] == [{"after_step": 1, "choose": 2}, {"after_step": 3, "choose": 3}] and f["choices"] == []
    assert m["chosen"] == 3 and f["chosen"] == 1 and m["candidates_left"] == [1, 2, 3]
    assert np.array_equal(pixels(steered / "final.png"), pixels(steered / "final_3.png"))
    assert len(m["final_candidates"]) == 3 and m["final"] == {k: m["final_candidates"][2][k] for k in m["final"]}
    # step 1 is the same in both runs; candidate 2 continues as it would have; the others now
    # start from candidate 2's state, so their previews move away from the free run's
    step1 = lambda mm: [c["psnr"] for c in mm["steps"][0]["candidates"]]  # noqa: E731
    assert step1(m) == pytest.approx(step1(f), abs=1e-4)
    assert m["steps"][0]["lead"] == 2 and m["steps"][1]["lead"] == 2 and m["steps"][2]["lead"] == 3
    at2 = lambda mm, k: mm["steps"][1]["candidates"][k - 1]["psnr"]  # noqa: E731
    assert at2(m, 2) == pytest.approx(at2(f, 2), abs=1e-4)
    assert abs(at2(m, 1) - at2(f, 1)) > 1e-3 and abs(at2(m, 3) - at2(f, 3)) > 1e-3
    # candidate 1 of three is the single-candidate run with the same seed
    single = tmp_path / "single"
    assert cli(base(src, single, tiny_model_dir, "--outer", "3", "--inner", "2", "--sigma-y", "0.05"), capsys)[0] == 0
    assert np.abs(pixels(single / "final.png") - pixels(free / "final_1.png")).max() <= 1
    assert m["per_call"][0]["candidate"] == 1 and len(m["per_call"]) == 3 * 6


def test_terminal_prompt(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """--choose ask: a wrong answer is asked again, 2 continues from candidate 2, 'd 3' drops
    candidate 3 (and asks again), Enter keeps all, a number after the last step picks the result."""
    import io

    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    monkeypatch.setattr(sys, "stdin", io.StringIO("x\n2\nd 3\n\n1\n"))
    code, _, err = cli([*base(src, out, tiny_model_dir), "--outer", "3", "--inner", "2", "--candidates", "3",
                        "--choose", "ask"], capsys)
    assert code == 0, err
    assert "type Enter, a number" in err and str(out / "candidates_step1.png") in err
    m = metrics(out)
    assert m["choices"] == [{"after_step": 1, "choose": 2}, {"after_step": 2, "drop": [3]},
                            {"after_step": 3, "choose": 1}]
    assert m["candidates_left"] == [1, 2] and m["chosen"] == 1
    assert sorted(p.name for p in out.glob("final_*.png")) == ["final_1.png", "final_2.png"]


def test_api_choose_callback_and_stop_event(tiny_model_dir):
    import threading

    from restore import restore_image

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    picks = []

    def choose(step, run):
        picks.append((step.index, run.alive))
        return 2 if step.index == 1 else None

    r = restore_image(x, "sr2", model=str(tiny_model_dir), outer=3, inner=2, candidates=2, choose=choose, quiet=True)
    assert picks == [(1, [1, 2]), (2, [1, 2]), (3, [1, 2])]
    assert r.metrics["choices"] == [{"after_step": 1, "choose": 2}] and r.chosen == 2
    assert torch.equal(r.final, r.finals[2]) and set(r.finals) == {1, 2}

    stop = threading.Event()
    r = restore_image(x, "sr2", model=str(tiny_model_dir), outer=3, inner=2, quiet=True, stop=stop,
                      callback=lambda step: stop.set())
    assert r.status == "interrupted" and r.metrics["nfe_total"] == 2 and len(r.steps) == 1


# --------------------------------------------------------------------------- stopping and resuming
def test_stop_then_resume_equals_uninterrupted(tiny_model_dir, tmp_path, capsys, monkeypatch):
    src = _rgb(tmp_path / "in.png", 32, 32)
    args = ["--outer", "4", "--inner", "2", "--candidates", "2", "--choose", "2", "--sigma-y", "0.05"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert cli(base(src, whole, tiny_model_dir, *args), capsys)[0] == 0

    from restore.outputs.live import LiveFolder

    write_step = LiveFolder.write_step

    def write_then_ctrl_c(self, session):
        write_step(self, session)
        if len(session.steps) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: the run stops, keeping step 2

    monkeypatch.setattr(LiveFolder, "write_step", write_then_ctrl_c)
    code, stdout, err = cli(base(src, cut, tiny_model_dir, *args), capsys)
    monkeypatch.undo()
    assert code == 0, err
    m = metrics(cut)
    assert m["status"] == "interrupted" and m["nfe_total"] == 4 and m["nfe_planned"] == 8
    assert (cut / "state.pt").is_file() and np.array_equal(pixels(cut / "final.png"), pixels(cut / "step_2_nfe4.png"))
    assert {"progress.png", "metrics.png", "final_1.png", "final_2.png"} <= {p.name for p in cut.iterdir()}

    code, _, err = cli(["--resume", cut, "--quiet"], capsys)
    assert code == 0, err
    m, w = metrics(cut), metrics(whole)
    assert m["status"] == "complete" and m["nfe_total"] == 8 and not (cut / "state.pt").exists()
    assert [s["nfe"] for s in m["steps"]] == [2, 4, 6, 8] and m["choices"] == w["choices"]
    for name in ("final.png", "final_1.png", "final_2.png", "step_4_nfe8.png"):
        assert np.array_equal(pixels(cut / name), pixels(whole / name)), name
    assert m["final"] == pytest.approx(w["final"], abs=1e-6)
    assert code == 0 and cli(["--resume", cut], capsys)[2].strip().endswith("there is nothing to resume")


def test_abort_after_a_result_keeps_a_resumable_folder(tiny_model_dir, tmp_path):
    """A second Ctrl-C (an exception in the middle of a step): the folder stays, marked interrupted."""
    from restore import restore_image

    out = tmp_path / "o"
    calls = []

    def boom(step):
        calls.append(step.index)
        if step.index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore_image(_rgb(tmp_path / "in.png", 32, 32), "sr4", model=str(tiny_model_dir), outer=3, inner=2,
                      out=out, quiet=True, callback=boom)
    assert metrics(out)["status"] == "interrupted" and (out / "state.pt").is_file()
    r = restore_image(resume=out, quiet=True)
    assert r.status == "complete" and [s.index for s in r.steps] == [1, 2, 3]


def test_signal_handler():
    before = signal.getsignal(signal.SIGINT)
    sig = cli_module.Signals(quiet=True)
    try:
        sig._handle(signal.SIGTERM, None)  # the first: stop (the run keeps or cancels)
        assert sig.stop.is_set()
        with pytest.raises(KeyboardInterrupt):  # the second: abort
            sig._handle(signal.SIGINT, None)
        sig.stop.clear()
        sig.prompting = True
        with pytest.raises(KeyboardInterrupt):  # at a prompt: the prompt takes it as "s"
            sig._handle(signal.SIGINT, None)
    finally:
        sig.restore()
    assert signal.getsignal(signal.SIGINT) is before


def _slow_run(src, out, model, *extra):
    """A subprocess whose first outer step takes a while (150 network calls)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(SCRIPT), *map(str, base(src, out, model, "--outer", "2", "--inner", "150", *extra))]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)


def test_real_ctrl_c_after_the_first_result(tiny_model_dir, tmp_path):
    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    proc = _slow_run(src, out, tiny_model_dir)
    _wait_for(out / "latest.png", proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    m = metrics(out)
    assert m["status"] == "interrupted" and m["nfe_total"] == 150 and m["nfe_planned"] == 300
    assert (out / "final.png").is_file() and (out / "state.pt").is_file()


def test_real_sigterm_before_the_first_result_leaves_nothing(tiny_model_dir, tmp_path):
    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "deep" / "o"
    proc = _slow_run(src, out, tiny_model_dir)
    _wait_for(out / "observation.png", proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_overwrite_then_cancel_brings_the_old_folder_back(tiny_model_dir, tmp_path):
    from restore import restore_image
    from restore.restoration.session import Cancelled

    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    restore_image(src, "sr4", model=str(tiny_model_dir), outer=1, inner=1, out=out, quiet=True)
    before = snapshot(out)
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        restore_image(src, "sr4", model=str(tiny_model_dir), outer=2, inner=2, out=out, overwrite=True, quiet=True,
                      stop=stop)
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "o"]


# --------------------------------------------------------------------------- errors
def test_user_errors_change_nothing(tiny_model_dir, tmp_path, capsys):
    src = _rgb(tmp_path / "in.png", 32, 32)
    other = _rgb(tmp_path / "other.png", 32, 32, seed=5)
    stopped, done, empty = tmp_path / "stopped", tmp_path / "done", tmp_path / "empty"
    empty.mkdir()
    from restore import restore_image

    restore_image(src, "sr4", model=str(tiny_model_dir), outer=2, inner=2, out=done, quiet=True)
    restore_image(src, "sr4", model=str(tiny_model_dir), outer=2, inner=2, out=stopped, quiet=True,
                  time_budget=1e-9)
    cases = {
        "no candidates": (base(src, tmp_path / "n1", tiny_model_dir, "--candidates", "0"), "--candidates must be at least 1"),
        "choice out of range": (base(src, tmp_path / "n2", tiny_model_dir, "--candidates", "2", "--choose", "1,3"),
                                "names candidate 3, but there are 2"),
        "too many choices": (base(src, tmp_path / "n3", tiny_model_dir, "--candidates", "2", "--outer", "2",
                                  "--choose", "1,1,1"), "3 entries but the run has 2 steps"),
        "bad choice": (base(src, tmp_path / "n4", tiny_model_dir, "--candidates", "2", "--choose", "two"),
                       "--choose takes ask, none"),
        "resume: no state": (["--resume", empty], "no saved state"),
        "resume: no folder": (["--resume", tmp_path / "nope"], "no such folder"),
        "resume: complete": (["--resume", done], "nothing to resume"),
        "resume: other input": (["--resume", stopped, "--input", other], "is not the input of the saved run"),
        "resume: other task": (["--resume", stopped, "--task", "sr2"], "has --task 'sr4', not 'sr2'"),
        "resume: other model": (["--resume", stopped, "--model", "natural-ddpm"], "has --model"),
        # once silently ignored with --resume: every setting given must be the saved run's
        "resume: --lambda": (["--resume", stopped, "--lambda", "30"], "has --lambda None, not 30.0"),
        "resume: --zeta": (["--resume", stopped, "--zeta", "0.3"], "--zeta 0.3: --zeta is an old name"),
        "resume: --boundary": (["--resume", stopped, "--boundary", "exact"], "has --boundary None, not 'exact'"),
        "resume: --outer-power": (["--resume", stopped, "--outer-power", "1"], "has --outer-power 2.0, not 1.0"),
        "resume: --outer-times": (["--resume", stopped, "--outer-times", "cosine"], "has --outer-times None"),
        "resume: --inner-power": (["--resume", stopped, "--inner-power", "0.5"], "has --inner-power 1.0, not 0.5"),
        "resume: --eta": (["--resume", stopped, "--eta", "0.5"], "has --eta 0.85, not 0.5"),
        "resume with --out": (["--resume", stopped, "--out", tmp_path / "n5"], "leave out --out"),
    }
    for name, (argv, expected) in cases.items():
        before = snapshot(tmp_path)
        code, stdout, err = cli(argv, capsys)
        assert code == 2, (name, err)
        assert len(err.strip().splitlines()) == 1 and expected in err, (name, err)
        assert snapshot(tmp_path) == before, name
    assert cli(["--resume", stopped, "--input", src, "--task", "sr4", "--eta", "0.85", "--outer-power", "2"],
               capsys)[0] == 0  # the same: fine
