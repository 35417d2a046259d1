"""Steering by region and the candidates' spread, as a person meets them: --choose with masks, the
prompt, restore_image with a RegionChoice, the files and metrics.json, reproduction, resume, and
the one-line refusals (a tiny random model: fast, meaningless images)."""

from __future__ import annotations

import io
import json
import os
import signal
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli_restore import _rgb, cli

from restore.quality.spread import spread, summary


def metrics(out):
    return json.loads((out / "metrics.json").read_text())


def pixels(path):
    return np.asarray(Image.open(path)).astype(int)


def mask_file(path, w=32, h=32):
    a = np.zeros((h, w), np.uint8)
    a[:, : w // 2] = 255
    Image.fromarray(a).save(path)
    return path


def base(src, out, model, *extra):
    return ["--task", "inp_box", "--input", src, "--out", out, "--model", model, "--quiet", "--outer", "3",
            "--inner", "2", "--candidates", "3", "--sigma-y", "0.05", *extra]


def test_spread_is_the_candidates_std_pooled_over_colour():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 5, 7, generator=g) * 2 - 1
    expected = ((x0 / 2).double().var(0, correction=1).mean(0)).sqrt()
    torch.testing.assert_close(spread(x0).double(), expected, rtol=1e-6, atol=1e-7)
    assert float(spread(x0[:1].expand(3, -1, -1, -1)).abs().max()) == 0
    region = torch.zeros(5, 7, dtype=torch.bool)
    region[1:3, 2:5] = True
    s = summary(expected, region)
    assert s["inside"] == pytest.approx(float(expected[region].mean()), abs=1e-6)
    assert s["outside"] == pytest.approx(float(expected[~region].mean()), abs=1e-6)
    assert summary(expected, None)["inside"] is None
    with pytest.raises(ValueError, match="at least 2"):
        spread(x0[:1])


def test_region_choice_on_the_command_line_files_metrics_and_reproduction(tiny_model_dir, tmp_path, capsys):
    src, mask = _rgb(tmp_path / "in.png", 32, 32), mask_file(tmp_path / "left.png")
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        code, _, err = cli(base(src, out, tiny_model_dir, "--choose", f"2@{mask}+1,0"), capsys)
        assert code == 0, err
    m = metrics(outs[0])
    assert m["choices"] == [{"after_step": 1, "regions": [{"candidate": 2, "mask": "region_step1_1.png"}],
                             "rest": 1, "feather": 3.0}]
    assert m["chosen"] == 1 and m["steps"][0]["lead"] == 1
    assert np.array_equal(pixels(outs[0] / "region_step1_1.png"), pixels(mask))
    for k in (1, 2, 3):
        assert (outs[0] / f"spread_step{k}.png").is_file()
        s = m["steps"][k - 1]["spread"]
        assert s["mean"] > 0 and s["inside"] is not None and s["outside"] is not None
    # the box is unknown, the rest measured: the candidates disagree more inside it
    assert m["steps"][0]["spread"]["inside"] > m["steps"][0]["spread"]["outside"]
    for name in ("final.png", "final_2.png", "step_3_nfe6.png"):  # seed and choices reproduce the run
        assert np.array_equal(pixels(outs[0] / name), pixels(outs[1] / name)), name
    free = tmp_path / "free"
    assert cli(base(src, free, tiny_model_dir, "--choose", "none"), capsys)[0] == 0
    assert not np.array_equal(pixels(free / "final.png"), pixels(outs[0] / "final.png"))


def test_region_choice_then_stop_and_resume_equals_uninterrupted(tiny_model_dir, tmp_path, capsys, monkeypatch):
    src, mask = _rgb(tmp_path / "in.png", 32, 32), mask_file(tmp_path / "left.png")
    args = ["--choose", f"3@{mask}+1,2@{mask}"]  # the second without a rest: each keeps its own outside
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert cli(base(src, whole, tiny_model_dir, *args), capsys)[0] == 0

    from restore.outputs.live import LiveFolder

    write_step = LiveFolder.write_step

    def write_then_ctrl_c(self, session):
        write_step(self, session)
        if len(session.steps) == 2 and len(session.run.events) == 2:  # after the second choice
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(LiveFolder, "write_step", write_then_ctrl_c)
    code, _, err = cli(base(src, cut, tiny_model_dir, *args), capsys)
    monkeypatch.undo()
    assert code == 0 and metrics(cut)["status"] == "interrupted", err
    assert cli(["--resume", cut, "--quiet"], capsys)[0] == 0
    m, w = metrics(cut), metrics(whole)
    assert m["status"] == "complete" and m["choices"] == w["choices"] and len(m["choices"]) == 2
    assert m["choices"][1]["rest"] is None
    for name in ("final.png", "final_1.png", "final_3.png", "region_step2_1.png"):
        assert np.array_equal(pixels(cut / name), pixels(whole / name)), name


def test_the_prompt_takes_a_region_choice_and_asks_again_on_a_bad_mask(tiny_model_dir, tmp_path, capsys,
                                                                       monkeypatch):
    src, mask = _rgb(tmp_path / "in.png", 32, 32), mask_file(tmp_path / "left.png")
    small = mask_file(tmp_path / "small.png", 16, 16)
    out = tmp_path / "o"
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"2@{small}+1\n2@{mask}+1\n\n1\n"))
    code, _, err = cli(base(src, out, tiny_model_dir, "--choose", "ask"), capsys)
    assert code == 0, err
    assert "small.png is 16x16 but the result is 32x32" in err
    assert metrics(out)["choices"][0]["regions"] == [{"candidate": 2, "mask": "region_step1_1.png"}]


@pytest.mark.parametrize("entry, message", [
    ("2@{missing}+1", "region mask"),
    ("2@{mask}+7", "names candidate 7"),
    ("2@+1", "region choices such as"),
    ("0,0,2@{mask}+1", "after the last step nothing is left to steer"),
    ("2@{small}+1", "paint the region at the result's size"),
    ("2@{blank}+1", "is empty"),
    ("2@{notimage}+1", "cannot read region mask"),
    ("2@{folder}+1", "not found"),
    ("2@{long}+1", "not found"),
    ("0,2@{small}", "--choose entry 2: small.png is 16x16"),
])
def test_bad_region_choices_get_one_line_and_leave_nothing(tiny_model_dir, tmp_path, capsys, monkeypatch, entry,
                                                            message):
    src = _rgb(tmp_path / "in.png", 32, 32)
    names = {"mask": mask_file(tmp_path / "left.png"), "small": mask_file(tmp_path / "small.png", 16, 16),
             "missing": tmp_path / "nope.png"}
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "blank.png")
    names["blank"] = tmp_path / "blank.png"
    names["notimage"] = tmp_path / "notes.png"
    names["notimage"].write_text("not an image")
    names["folder"] = tmp_path
    names["long"] = tmp_path / ("m" * 300 + ".png")
    out = tmp_path / "o"
    from restore.models.wrapper import Prior

    calls, forward = [], Prior.forward
    monkeypatch.setattr(Prior, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    code, _, err = cli(base(src, out, tiny_model_dir, "--choose", entry.format(**names)), capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not calls  # every mask read and sized before the first network call


def test_a_white_region_on_the_command_line_is_the_whole_choice(tiny_model_dir, tmp_path, capsys):
    """--choose 2@white.png (with or without a rest) is --choose 2: the same images, lead and record."""
    src = _rgb(tmp_path / "in.png", 32, 32)
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path / "white.png")
    outs = {}
    for name, entry in [("whole", "2"), ("white", f"2@{tmp_path / 'white.png'}"),
                        ("white_rest", f"2@{tmp_path / 'white.png'}+1")]:
        outs[name] = tmp_path / name
        code, _, err = cli(base(src, outs[name], tiny_model_dir, "--choose", entry), capsys)
        assert code == 0, err
    whole = metrics(outs["whole"])
    assert whole["chosen"] == 2 and whole["choices"] == [{"after_step": 1, "choose": 2}]
    for name in ("white", "white_rest"):
        m = metrics(outs[name])
        assert m["chosen"] == 2 and m["choices"] == whole["choices"], name
        for f in ("final.png", "final_1.png", "final_2.png", "final_3.png", "step_2_nfe4.png", "step_3_nfe6.png"):
            assert np.array_equal(pixels(outs[name] / f), pixels(outs["whole"] / f)), (name, f)
        assert [s["candidates"] for s in m["steps"]] == [s["candidates"] for s in whole["steps"]]


def test_api_region_choice_over_everything_equals_a_whole_choice(tiny_model_dir):
    from restore import RegionChoice, restore_image

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    common = dict(model=str(tiny_model_dir), outer=3, inner=2, candidates=2, quiet=True, sigma_y=0.05)
    whole = restore_image(x, "sr2", choose=lambda step, s: 2 if step.index == 1 else None, **common)
    full = torch.ones(32, 32, dtype=torch.bool)
    regions = restore_image(x, "sr2", choose=lambda step, s: RegionChoice([(2, full)], rest=1) if step.index == 1
                            else None, **common)
    for k in (1, 2):
        torch.testing.assert_close(regions.finals[k], whole.finals[k], rtol=0, atol=1e-5)
    torch.testing.assert_close(regions.final, whole.final, rtol=0, atol=1e-5)  # the shown result too
    assert regions.metrics["chosen"] == whole.metrics["chosen"] == 2
    assert regions.metrics["choices"] == whole.metrics["choices"]
    assert regions.steps[0].spread.shape == (32, 32) and regions.steps[0].spread_summary["inside"] is None


def test_api_scripted_list_checks_masks_first_and_a_white_file_is_the_whole_choice(tiny_model_dir, tmp_path,
                                                                                   monkeypatch):
    from restore import RegionChoice, UsageError, restore_image
    from restore.models.wrapper import Prior

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    common = dict(model=str(tiny_model_dir), outer=3, inner=2, candidates=3, quiet=True, sigma_y=0.05)
    white = tmp_path / "white.png"
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(white)
    whole = restore_image(x, "inp_box", choose=[2], **common)
    for pick in (RegionChoice([(2, white)]), RegionChoice([(2, str(white))], rest=3)):
        got = restore_image(x, "inp_box", choose=[pick, 0], **common)
        torch.testing.assert_close(got.final, whole.final, rtol=0, atol=1e-6)
        assert got.metrics["choices"] == whole.metrics["choices"] == [{"after_step": 1, "choose": 2}]
    calls, forward = [], Prior.forward
    monkeypatch.setattr(Prior, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    small = mask_file(tmp_path / "small.png", 16, 16)
    for choose, message in [([0, RegionChoice([(2, small)])], "choose entry 2: small.png is 16x16"),
                            ([RegionChoice([(4, white)])], "choose entry 1 names candidate 4"),
                            ([0, 0, RegionChoice([(2, white)])], "after the last step"),
                            ([1, 1, 1, 1], "has 4 entries but the run has 3 steps"),
                            ([True], "names candidate True"),
                            ("2,1", "a list of picks")]:
        with pytest.raises(UsageError, match=message):
            restore_image(x, "inp_box", choose=choose, out=tmp_path / "o", **common)
        assert not (tmp_path / "o").exists() and not calls
