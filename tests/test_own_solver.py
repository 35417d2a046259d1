"""docs/usage/own-solver.md's solver, as written, in a file of its own named by
ANYTIME_RESTORE_PLUGINS: it runs plain and nested on the command line (its options are flags,
checked against their ranges and recorded), in evaluate, in a resumed run (equal to the
uninterrupted one) and is in the page's solver menu, with no file of the package touched; and its
Nested(1 outer step, K calls) is the plain solver with K calls."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "usage" / "own-solver.md"


def _solver_file(tmp_path: Path) -> Path:
    code = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    path = tmp_path / "my_solver.py"
    path.write_text(code)
    return path


def test_the_documented_solver_works_everywhere_from_its_own_file(tiny_model_dir, tmp_path):
    plugin = _solver_file(tmp_path)
    face = tmp_path / "face.png"
    folder = tmp_path / "folder"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for path in (face, folder / "a.png", folder / "b.png"):
        Image.fromarray((torch.rand(32, 32, 3, generator=g) * 255).byte().numpy()).save(path)
    model = str(tiny_model_dir)
    script = textwrap.dedent(f"""
        import json, sys
        from restore import restore_image
        from restore.cli.evaluate import main as evaluate
        from restore.cli.restore import main as restore
        from restore.settings.schema import SOLVER_NAMES
        import restore.page.layout as page
        common = ["--input", {str(face)!r}, "--model", {model!r}, "--task", "sr4", "--quiet"]
        codes = {{
            "plain": restore([*common, "--solver", "proxddim", "--steps", "3", "--rho", "0.1", "--out", "plain"]),
            "nested": restore([*common, "--solver", "nested-proxddim", "--outer", "2", "--inner", "2", "--out", "nested"]),
            "evaluate": evaluate(["--data", {str(folder)!r}, "--model", {model!r}, "--task", "sr4", "--quiet",
                                  "--solvers", "nested-proxddim,proxddim", "--outer", "2", "--inner", "2",
                                  "--out", "eval"]),
        }}
        restore_image({str(face)!r}, task="sr4", model={model!r}, solver="nested-proxddim", outer=3, inner=2,
                      seed=4, out="stopped", quiet=True, callback=lambda step: step.index == 1)
        codes["resume"] = restore(["--resume", "stopped", "--quiet"])
        codes["whole"] = restore([*common, "--solver", "nested-proxddim", "--outer", "3", "--inner", "2",
                                  "--seed", "4", "--out", "whole"])
        codes["menu"] = "nested-proxddim" in page.SOLVER_NAMES and "proxddim" in SOLVER_NAMES
        print(json.dumps(codes))
    """)
    env = {**os.environ, "ANYTIME_RESTORE_PLUGINS": str(plugin), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    assert codes == {"plain": 0, "nested": 0, "evaluate": 0, "resume": 0, "whole": 0, "menu": True}, codes
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert plain["settings"]["rho"] == 0.1 and plain["settings"]["prox_eta"] == 0.0 and plain["nfe_total"] == 3
    nested = json.loads((tmp_path / "nested" / "metrics.json").read_text())
    assert nested["settings"]["solver"] == "nested-proxddim" and len(nested["steps"]) == 2
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert {"nested-proxddim", "proxddim"} <= set(summary["solvers"]) == set(summary["settings"]["groups"])
    resumed = json.loads((tmp_path / "stopped" / "metrics.json").read_text())
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert resumed["status"] == whole["status"] == "complete"
    assert abs(resumed["final"]["psnr"] - whole["final"]["psnr"]) < 1e-3


def test_a_range_outside_the_declaration_is_one_line_and_nested_1_by_k_is_the_plain_solver(tmp_path):
    plugin = _solver_file(tmp_path)
    env = {**os.environ, "ANYTIME_RESTORE_PLUGINS": str(plugin), "PYTHONPATH": str(REPO)}
    code = textwrap.dedent("""
        import torch
        from degradations import make_operator
        from restore.cli.restore import console
        from solvers import Nested, make_generators
        from solvers.registry import solvers
        sys_path = __import__("sys").path.insert(0, "tests")
        from gaussian_prior import GaussianPrior
        prior = GaussianPrior(torch.zeros(3, 8, 8, dtype=torch.float64), torch.ones(3, 8, 8, dtype=torch.float64))
        op = make_operator("sr2", 8).to("cpu", torch.float64)
        y = op.observe(torch.randn(1, 3, 8, 8, dtype=torch.float64), 0.05, make_generators([1]))
        spec = solvers()["proxddim"]
        plain = spec.build(prior, op, steps=4, rho=0.2).restore(y, 0.05, make_generators([2]))
        nested = Nested(spec.build(prior, op, steps=1, rho=0.2), 1, 4).restore(y, 0.05, make_generators([2]))
        print(float((plain - nested).abs().max()))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-10
    bad = subprocess.run([sys.executable, str(REPO / "scripts" / "restore.py"), "--input", "x.png", "--solver",
                          "proxddim", "--rho", "-1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "--rho must be a finite number > 0, got -1.0" in lines[0], bad.stderr
