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


def test_the_documented_task_runs_from_its_own_file_on_the_command_line_and_in_evaluate(tiny_model_dir, tmp_path):
    """The third block, saved as a file named by ANYTIME_RESTORE_PLUGINS: --task row_binning restores
    (simulation and observed), evaluate scores a folder with it, --help lists it; nothing of the
    package is touched."""
    import json
    import os
    import subprocess
    import sys
    import textwrap

    from PIL import Image

    code = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)[2]
    (tmp_path / "row_binning.py").write_text(code)
    folder = tmp_path / "folder"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for name in ("face.png", "folder/a.png", "folder/b.png"):
        Image.fromarray((torch.rand(32, 32, 3, generator=g) * 255).byte().numpy()).save(tmp_path / name)
    Image.fromarray((torch.rand(16, 32, 3, generator=g) * 255).byte().numpy()).save(tmp_path / "binned.png")
    model = str(tiny_model_dir)
    script = textwrap.dedent(f"""
        import json
        from restore.cli.evaluate import main as evaluate
        from restore.cli.restore import build_parser, main as restore
        common = ["--model", {model!r}, "--task", "row_binning", "--outer", "2", "--inner", "2", "--quiet"]
        print(json.dumps({{
            "simulation": restore([*common, "--input", "face.png", "--sigma-y", "0.01", "--out", "sim"]),
            "observed": restore([*common, "--input", "binned.png", "--observed", "--out", "obs"]),
            "evaluate": evaluate([*common, "--data", "folder", "--solvers", "nested,ddrm", "--out", "eval"]),
            "help": "row_binning" in build_parser().format_help(),
        }}))
    """)
    env = {**os.environ, "ANYTIME_RESTORE_PLUGINS": str(tmp_path / "row_binning.py"),
           "PYTHONPATH": str(PAGE.parents[2])}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"simulation": 0, "observed": 0, "evaluate": 0,
                                                                 "help": True}
    sim = json.loads((tmp_path / "sim" / "metrics.json").read_text())
    assert sim["settings"]["task"] == "row_binning" and sim["final"]["psnr"] is not None
    obs = json.loads((tmp_path / "obs" / "metrics.json").read_text())
    assert obs["image_size"] == [32, 32]  # a 16-row binned photo restored at twice its height
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["settings"]["task"] == "row_binning"
