"""The prepared GPU session (restore.bench.session, scripts/gpu_session.sh) in its dry mode: the same
steps on the CPU with a tiny U-Net, so that every step is known to start and to write its record,
and the session's own machinery: a failing or hanging step never stops the later ones, pytest's
report read back, the output packed into the few files the device tool returns."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from restore.bench import session as S

REPO = Path(__file__).resolve().parents[1]
GPU_ONLY = {"compile", "fp16"}


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    """One dry session, packed as on the card: (its output folder, summary.json, the steps it lists)."""
    root = tmp_path_factory.mktemp("gpu_session")
    out, work = root / "out", root / "work"
    done = subprocess.run([sys.executable, "-m", "restore.bench.session", "--dry", "--pack", "--out", str(out),
                           "--work", str(work)], cwd=REPO, capture_output=True, text=True, timeout=600)
    listed = subprocess.run([sys.executable, "-m", "restore.bench.session", "--dry", "--list", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    names = [line.split()[2] for line in listed.stdout.splitlines() if line.startswith("part ")]
    summary = json.loads((out / "summary.json").read_text())
    return out, work, summary, names, done


def test_every_step_starts_and_passes_or_says_why_it_is_skipped(dry):
    out, _, summary, names, done = dry
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    records = {r["name"]: r for r in summary["steps"]}
    assert list(records) == names and len(names) >= 20  # every step, in the listed order
    for name, r in records.items():
        if name in GPU_ONLY:
            assert r["status"] == "skipped" and r["error"].startswith("needs a GPU: "), r
        else:
            assert r["status"] == "passed", r
            assert r["command"].startswith("python ") and r["seconds"] >= 0
    assert summary["finished"] and summary["failed"] == [] and sorted(summary["skipped"]) == sorted(GPU_ONLY)
    md = (out / "summary.md").read_text()
    assert all(f"| {name} |" in md for name in names) and "needs a GPU: inductor on a CPU takes minutes" in md


def test_the_numbers_of_each_part_are_in_the_summary(dry):
    out, _, summary, _, _ = dry
    n = {r["name"]: r["numbers"] for r in summary["steps"]}
    assert n["pytest-cuda"]["tests"] > 0 and n["pytest-cuda"]["skipped"] == n["pytest-cuda"]["tests"]  # no GPU here
    assert n["restore-dps"]["nfe_total"] == 2 and n["candidates"]["candidates"] == 4
    assert n["region-choice"]["choices"] and n["tiled"]["image_size"] == [64, 64]
    # on a CPU the resumed run is the uninterrupted one bit for bit; stopped mid-way, not at the end
    assert n["interrupt-resume"]["identical"] and n["interrupt-resume"]["interrupted_status"] == "interrupted"
    assert 0 < n["interrupt-resume"]["interrupted_at_nfe"] < n["interrupt-resume"]["planned_nfe"]
    assert n["torchrun"]["world_size"] == 1 and n["torchrun"]["backend"] == "gloo"
    assert {r["precision"] for r in n["bench-gpu"]["network"]} == {"fp32", "bf16"} and n["bench-gpu"]["solver_share"]
    rows = n["precision"]["tasks"]["sr4"]["rows"]
    assert [r["precision"] for r in rows] == ["fp32", "bf16"] and rows[0]["dpsnr"] == 0
    assert n["train"]["steps"] == 3 and n["train"]["model_bytes"] > 0
    for card in ("card-new", "card-bundled"):
        assert set(n[card]) == {"sr4", "inp_box", "color"}
        assert n[card]["sr4"]["baseline_name"] == "bicubic" and n[card]["color"]["baseline_name"] == "pinv"
    md = (out / "summary.md").read_text()
    assert "## scripts/bench.py gpu" in md and "## The prior's held-out card" in md and "Training: 3 steps" in md


def test_the_output_is_what_the_device_tool_returns(dry):
    """At most 8 files, none over 16 MiB, no folder: the summary, the packed logs, the model."""
    out, work, summary, names, _ = dry
    files = sorted(p.name for p in out.iterdir())
    assert files == ["model.tar", "session.tar.gz", "summary.json", "summary.md"]
    assert all((out / f).stat().st_size < 16 * 2**20 for f in files)
    with tarfile.open(out / "session.tar.gz") as tar:
        packed = set(tar.getnames())
    assert {f"session/logs/{name}.log" for name in names if name not in GPU_ONLY} <= packed
    assert "session/steps/restore-nested/final.png" in packed and not any(n.endswith(".pt") for n in packed)
    with tarfile.open(out / "model.tar") as tar:
        tar.extractall(work / "unpacked", filter="data")
    from restore.models.prior import load_prior

    prior = load_prior(str(work / "unpacked" / "model"))
    assert prior.unet.config.add_attention and (work / "unpacked" / "model" / "loss.csv").exists()


def _session(tmp_path, steps):
    args = argparse.Namespace(out=str(tmp_path / "out"), spawn=True, minutes=5.0, parts=[1], jobs=2, only=set(),
                              pack=False)
    plan = S.Plan(dry=True, card=None, work=tmp_path / "work", heldout=tmp_path, photos=None, init=None)
    session = S.Session(args, plan)
    session.out.mkdir(parents=True)
    session.run_part(steps, deadline=S.time.time() + 60, jobs=2)
    return session


def test_a_failing_or_hanging_step_never_stops_the_next(tmp_path):
    steps = [S.Step("fails", 1, ["-c", "import sys; print('warming up'); print('ValueError: bad thing', file=sys.stderr); "
                                       "sys.exit(3)"], 30, "fails"),
             S.Step("hangs", 1, ["-c", "import time; print('working', flush=True); time.sleep(60)"], 5, "hangs"),
             S.Step("gpu", 1, ["-c", "pass"], 30, "needs a card", gpu_only="CUDA only"),
             S.Step("wrong", 1, ["-c", "pass"], 30, "its result is wrong",
                    check=lambda step, plan: (_ for _ in ()).throw(S.Failed("the output says no", {"n": 1}))),
             S.Step("works", 1, ["-c", "print('fine')"], 30, "works", check=lambda step, plan: {"n": 2})]
    session = _session(tmp_path, steps)
    got = {r["name"]: r for r in session.records}
    assert got["fails"]["status"] == "failed" and got["fails"]["error"] == "exit 3: ValueError: bad thing"
    assert got["hangs"]["status"] == "timeout" and "ran over its 5 s; last line: working" in got["hangs"]["error"]
    assert got["gpu"]["status"] == "skipped" and got["gpu"]["error"] == "needs a GPU: CUDA only"
    assert got["wrong"]["status"] == "failed" and got["wrong"]["error"] == "the output says no"
    assert got["wrong"]["numbers"] == {"n": 1}
    assert got["works"]["status"] == "passed" and got["works"]["numbers"] == {"n": 2}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sorted(summary["failed"]) == ["fails", "hangs", "wrong"]
    assert "| hangs | timeout |" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "work" / "logs" / "hangs.log").read_text().startswith("$ python -c ")


def test_pytest_s_report_gives_the_first_failure_and_leaves_unimportable_modules_aside(tmp_path):
    step = S.Step("pytest-cuda", 1, [], 1, "", out=tmp_path)
    (tmp_path / "pytest.xml").write_text(
        '<testsuites><testsuite tests="4" failures="1" errors="1" skipped="1">'
        '<testcase classname="" name="tests.test_page"><error message="collection failure">'
        "E   ModuleNotFoundError: No module named 'gradio'</error></testcase>"
        '<testcase classname="tests.test_run" name="test_a[cuda]"><failure message="assert 1 == 2">x</failure></testcase>'
        '<testcase classname="tests.test_run" name="test_b[cuda]"><skipped message="why"/></testcase>'
        '<testcase classname="tests.test_run" name="test_c[cuda]"/></testsuite></testsuites>')
    with pytest.raises(S.Failed) as failed:
        S.junit(step, None)
    message, numbers = failed.value.args
    assert message == "1 of 4 failed; first: test_a[cuda]: assert 1 == 2"
    assert numbers["passed"] == 1 and numbers["errors"] == 0
    assert numbers["modules_not_collected"] == ["tests.test_page: E   ModuleNotFoundError: No module named 'gradio'"]
