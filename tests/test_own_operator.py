"""docs/usage/own-operator.md's example, run as written: an operator built from its SVD pieces
restores with NestedDDRM; and the operator is orthogonal and adjoint as the docs promise."""

from __future__ import annotations

import re
from pathlib import Path

import torch

PAGE = Path(__file__).resolve().parents[1] / "docs" / "usage" / "own-operator.md"


def test_the_documented_example_runs_and_restores(capsys):
    code = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(code, str(PAGE), "exec"), scope)  # noqa: S102 - the project's own documentation
    printed = capsys.readouterr().out
    restored, pinv = (float(v) for v in re.findall(r"([\d.]+) dB", printed))
    assert restored > pinv  # the prior adds what the binning removed
    op = scope["operator"]
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(2, *op.image_shape, generator=g), torch.randn(2, op.m, generator=g)
    v = torch.randn(2, op.n, generator=g)
    torch.testing.assert_close(op.Vt(op.V(v)), v, atol=1e-5, rtol=0)
    torch.testing.assert_close((op.H(x) * y).sum(), (x * op.Ht(y)).sum(), atol=1e-3, rtol=1e-5)
    binned = (x[:, :, 0::2] + x[:, :, 1::2]) / 2
    torch.testing.assert_close(op.H(x), binned.flatten(1), atol=1e-5, rtol=0)


def test_the_documented_forward_adjoint_example_runs_and_deblurs(capsys):
    code = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)[1]
    scope: dict = {}
    exec(compile(code, str(PAGE), "exec"), scope)  # noqa: S102 - the project's own documentation
    restored, blurred = (float(v) for v in re.findall(r"([\d.]+) dB", capsys.readouterr().out))
    assert restored > blurred + 1.0  # DiffPIR's CG data step through H and H^T alone deblurs
    op = scope["blur"]
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(2, *op.image_shape, generator=g), torch.randn(2, op.m, generator=g)
    torch.testing.assert_close((op.H(x) * y).sum(), (x * op.Ht(y)).sum(), atol=1e-3, rtol=1e-5)
    inside = op.H(torch.ones(1, *op.image_shape)).view(op.image_shape)
    assert float(inside[:, 32, 32].min()) > 0.999 and float(inside[:, 0, 0].max()) < 0.7  # zeros beyond the edges
