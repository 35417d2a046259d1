"""The comparison baselines and the task scale factors."""

from __future__ import annotations

import pytest
import torch

from degradations import TASKS, make_operator, scale_factor
from restore.quality.baselines import baseline, baseline_names, baselines


def test_scale_factor_matches_the_operators():
    for task in TASKS:
        options = {"inp_mask": {"mask": torch.ones(16, 16, dtype=torch.bool)},
                   "deblur": {"kernel": torch.ones(3, 3)}, "deblur_motion": {"kernel_size": 9}}.get(task, {})
        assert scale_factor(task) == make_operator(task, 16, **options).scale_factor
    assert (scale_factor("sr4"), scale_factor("sr_bicubic8"), scale_factor("deno")) == (4, 8, 1)
    with pytest.raises(ValueError, match="valid tasks"):
        scale_factor("sr3")


def test_baselines():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    sr = make_operator("sr4", 16)
    assert baseline_names(sr) == ["pinv", "bicubic"] and baseline_names(make_operator("deno", 16)) == ["pinv"]
    out = baselines(sr, sr.H(x))
    assert torch.equal(out["pinv"], sr.H_pinv(sr.H(x)).clamp(-1, 1))
    flat = torch.full((1, 3, 16, 16), 0.25)
    assert torch.allclose(baseline("bicubic", sr, sr.H(flat)), flat, atol=1e-6)  # constants stay constant
    assert out["bicubic"].shape == x.shape and out["bicubic"].abs().max() <= 1
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline("lanczos", sr, sr.H(x))
