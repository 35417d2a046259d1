"""The wheel: built from a copy of the checkout, it holds the packages, the shipped data (the
bundled prior, the LPIPS backbone, the example image, the manifests, the measured configs) and
the console commands; unpacked alone on the path, from a folder outside the repository and with
no network, it restores an image with the bundled prior, scores it with LPIPS and applies the
measured config. (.ci/run also installs it into a fresh virtual environment and runs the
`anytime-restore` command.)"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("restore", "solvers", "degradations", "configs", "setup.py", "setup.cfg", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (setuptools builds in the source tree)."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "_shipped", "*.egg-info")
    for name in SOURCES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, src / name, **(
            {"ignore": ignore} if (REPO / name).is_dir() else {}))
    (src / "data").mkdir()
    for name in ("models", "weights", "examples", "train_sources.csv", "fresh_sources.csv"):
        (shutil.copytree if (REPO / "data" / name).is_dir() else shutil.copy2)(REPO / "data" / name, src / "data" / name)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           str(src), "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("anytime_restore-*.whl")
    return path


def test_the_wheel_holds_the_packages_data_and_commands(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("restore/api.py", "restore/cli/restore.py", "restore/settings/compose.py", "solvers/nested.py",
                   "degradations/base.py"):
        assert module in names
    shipped = "restore/_shipped/"
    for data in ("data/models/natural-ddpm/config.json", "data/models/natural-ddpm/diffusion_pytorch_model.safetensors",
                 "data/models/natural-ddpm/scheduler_config.json", "data/weights/lpips_alexnet_backbone.safetensors",
                 "data/examples/face.png", "data/train_sources.csv", "data/fresh_sources.csv", "configs/notes/suited.yaml"):
        assert shipped + data in names, data
    configs = {p.name for p in (REPO / "configs").glob("*.yaml")}
    assert configs and {n.rsplit("/", 1)[-1] for n in names if n.startswith(shipped + "configs/")} >= configs
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "data/", shipped + "data/results"))]
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    points = configparser.ConfigParser()
    points.read_string(zipfile.ZipFile(wheel).read(entry).decode())
    assert dict(points["console_scripts"]) == {"anytime-restore": "restore.cli.restore:console",
                                               "anytime-evaluate": "restore.cli.evaluate:console",
                                               "anytime-app": "restore.cli.app:console"}


def test_the_unpacked_wheel_restores_offline_from_another_folder(wheel, tmp_path):
    site, work = tmp_path / "site", tmp_path / "elsewhere"
    zipfile.ZipFile(wheel).extractall(site)
    work.mkdir()
    code = """
import json, sys
import restore.paths as paths
from restore import restore_image
from restore.cli.restore import console
from restore.quality.metrics import lpips_available
from solvers import NestedDDRM
result = restore_image(str(paths.EXAMPLE_IMAGE), task="sr4", size=64, outer=1, inner=2, quiet=True, out="run")
sys.argv = ["anytime-restore", "--task", "sr4", "--input", "example", "--size", "32", "--outer", "1", "--inner", "1",
            "--quiet"]  # the README's first command, from an empty folder: the example ships
assert console() == 0
print(json.dumps({"root": str(paths.SHIPPED_ROOT), "lpips": lpips_available(), "config": result.settings.config,
                  "model": result.settings.model, "final": result.metrics["final"], "status": result.status}))
"""
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["root"]) == site / "restore" / "_shipped"
    assert report["lpips"] and report["final"]["lpips"] is not None
    assert report["config"] == "configs/sr4_natural-ddpm.yaml" and report["model"] == "natural-ddpm"
    assert report["status"] == "complete" and report["final"]["psnr"] > 15
    assert (work / "run" / "final.png").is_file() and (work / "outputs" / "face_sr4" / "final.png").is_file()
