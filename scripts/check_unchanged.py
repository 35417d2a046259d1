#!/usr/bin/env python
"""A fixed set of restorations, recorded once and checked later: proof that a change of the code's
shape changed nothing a user gets.

    python scripts/check_unchanged.py record /tmp/before.json    # on the old code
    python scripts/check_unchanged.py check /tmp/before.json     # on the new code: exit 1 on a difference

The set (the bundled prior, 64 x 64 and 48 x 40 crops of the example face): every task family on
the command line at its defaults (measured configs included), each plain solver and a nested DDNM,
observed mode with a reference, three candidates with a scripted choice, a run stopped after its
second step through the API and resumed on the command line (next to the same run uninterrupted),
the API with keyword settings, and evaluate.py over a folder with two solvers (and a second one
with two candidates and the oracle choice).

What is compared: every PNG a run writes, byte for byte (the same CPU and libraries, so the same
bytes), and every number and setting of metrics.json, per_image.csv and summary.json to every
printed digit, except wall-clock timings (seconds, wall_seconds, restoration_seconds) and the
paths of this run's working folder. The notes (one-line messages) are listed where their wording
changed, without failing: a note may cite a new docs page.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _paths  # noqa: E402  (must come first: see scripts/_paths.py)

REPO = Path(_paths.ROOT)
FACE = REPO / "data" / "examples" / "face.png"
TIMING = {"seconds", "wall_seconds", "restoration_seconds"}

CLI_RUNS = {  # name -> restore.py arguments ({work}: the working folder)
    "sr4": ["--task", "sr4", "--input", "{work}/face64.png"],
    "sr4_odd": ["--task", "sr4", "--input", "{work}/face48x40.png", "--sigma-y", "0.02"],
    "sr_bicubic4": ["--task", "sr_bicubic4", "--input", "{work}/face64.png"],
    "deno": ["--task", "deno", "--sigma-y", "0.1", "--input", "{work}/face64.png"],
    "color": ["--task", "color", "--input", "{work}/face64.png"],
    "inp_box": ["--task", "inp_box", "--input", "{work}/face64.png"],
    "inp_random": ["--task", "inp_random", "--input", "{work}/face64.png", "--sigma-y", "0.05"],
    "inp_mask": ["--task", "inp_mask", "--mask", "{work}/mask64.png", "--input", "{work}/face64.png"],
    "deblur_gauss": ["--task", "deblur_gauss", "--input", "{work}/face64.png", "--sigma-y", "0.02"],
    "deblur_uniform": ["--task", "deblur_uniform", "--input", "{work}/face48x40.png"],
    "ddrm": ["--task", "sr4", "--solver", "ddrm", "--steps", "6", "--input", "{work}/face64.png"],
    "ddnm": ["--task", "inp_box", "--solver", "ddnm", "--steps", "6", "--input", "{work}/face64.png"],
    "diffpir": ["--task", "deno", "--sigma-y", "0.05", "--solver", "diffpir", "--steps", "6",
                "--input", "{work}/face64.png"],
    "dps": ["--task", "sr4", "--solver", "dps", "--steps", "4", "--input", "{work}/face64.png"],
    "nested_ddnm": ["--task", "color", "--solver", "nested-ddnm", "--outer", "3", "--inner", "2,3,4",
                    "--input", "{work}/face64.png"],
    "observed": ["--task", "sr4", "--observed", "--input", "{work}/low16.png", "--reference", "{work}/face64.png",
                 "--outer", "2", "--inner", "3"],
    "candidates": ["--task", "inp_box", "--candidates", "3", "--choose", "2,1", "--outer", "3", "--inner", "2",
                   "--input", "{work}/face64.png"],
    "uninterrupted": ["--task", "sr4", "--sigma-y", "0.05", "--seed", "7", "--input", "{work}/face64.png"],
}
API_RUNS = {  # name -> Python source run in a fresh process ({out}: the run's folder)
    "api_keywords": "from restore import restore_image\n"
                    "restore_image('{work}/face64.png', task='deblur_gauss', sigma_y=0.05, seed=3, outer=3, inner=4, "
                    "eta=0.9, out='{out}', quiet=True)",
    "api_candidates": "from restore import restore_image\n"
                      "restore_image('{work}/face64.png', task='sr4', candidates=2, outer=2, inner=3, seed=5, "
                      "choose=lambda step, run: 2 if step.index == 1 else None, out='{out}', quiet=True)",
    "stopped": "from restore import restore_image\n"
               "restore_image('{work}/face64.png', task='sr4', sigma_y=0.05, seed=7, out='{out}', quiet=True, "
               "callback=lambda step: step.index == 2)",
}
RESUMED = ("stopped", "resumed")  # the stopped run, resumed on the command line into a copy
EVAL_RUNS = {
    "evaluate": ["--solvers", "nested,ddrm", "--task", "sr4", "--sigma-y", "0.05", "--outer", "2", "--inner", "3"],
    "evaluate_oracle": ["--solvers", "nested-ddnm,diffpir", "--task", "inp_box", "--outer", "2", "--inner", "2",
                        "--candidates", "2", "--choose", "oracle-lpips", "--batch-size", "2"],
}


def inputs(work: Path) -> None:
    """The input images, made from the example face (the same bytes every time)."""
    from PIL import Image

    face = Image.open(FACE).convert("RGB")
    face.resize((64, 64), Image.Resampling.LANCZOS).save(work / "face64.png")
    face.crop((20, 40, 236, 220)).resize((48, 40), Image.Resampling.LANCZOS).save(work / "face48x40.png")
    face.resize((16, 16), Image.Resampling.BOX).save(work / "low16.png")
    mask = Image.new("L", (64, 64), 255)
    mask.paste(0, (10, 30, 40, 50))
    mask.save(work / "mask64.png")
    folder = work / "folder"
    folder.mkdir()
    for i, box in enumerate([(0, 0, 256, 256), (30, 30, 200, 200), (60, 10, 250, 220)]):
        face.crop(box).resize((48, 48), Image.Resampling.LANCZOS).save(folder / f"img{i}.png")


def run(argv: list[str], cwd: Path) -> None:
    """Python on argv in `cwd`, importing this checkout's packages (not another install's)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def runs(work: Path) -> dict[str, Path]:
    """Make every run of the set under work/; returns {name: its output folder}."""
    inputs(work)
    folders = {}
    fill = lambda a: [s.format(work=work) for s in a]  # noqa: E731
    for name, args in CLI_RUNS.items():
        folders[name] = work / "runs" / name
        run([str(REPO / "scripts" / "restore.py"), *fill(args), "--out", str(folders[name]), "--quiet"], work)
    for name, code in API_RUNS.items():
        folders[name] = work / "runs" / name
        run(["-c", code.format(work=work, out=folders[name])], work)
    stopped, resumed = (work / "runs" / n for n in RESUMED)
    shutil.copytree(stopped, resumed)
    run([str(REPO / "scripts" / "restore.py"), "--resume", str(resumed), "--quiet"], work)
    folders["resumed"] = resumed
    for name, args in EVAL_RUNS.items():
        folders[name] = work / "runs" / name
        run([str(REPO / "scripts" / "evaluate.py"), "--data", str(work / "folder"), "--out", str(folders[name]),
             *args, "--quiet"], work)
    return folders


def _clean(value, work: str):
    """metrics.json without timings, with the working folder's path written as <work>."""
    if isinstance(value, dict):
        return {k: _clean(v, work) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_clean(v, work) for v in value]
    if isinstance(value, str):
        return value.replace(work, "<work>")
    return value


def describe(folder: Path, work: Path) -> dict:
    """What a run's folder holds: PNG hashes, metrics without timings, CSV rows without seconds."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".png":
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif rel in ("metrics.json", "summary.json"):
            data = _clean(json.loads(path.read_text()), str(work))
            notes = data.pop("notes", None) if isinstance(data, dict) else None
            if rel == "summary.json":
                data.get("settings", {}).pop("command", None)
            out[rel] = data
            if notes is not None:
                out[rel + ":notes"] = notes
        elif rel == "per_image.csv":
            rows = list(csv.DictReader(path.open()))
            out[rel] = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    return out


def record_set() -> dict:
    with tempfile.TemporaryDirectory(prefix="unchanged-") as tmp:
        work = Path(tmp)
        return {name: describe(folder, work) for name, folder in runs(work).items()}


def compare(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(differences, changed notes): every differing value of every file, by its path in the file."""
    diffs, notes = [], []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, {}), new.get(name, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) == b.get(key):
                continue
            (notes if key.endswith(":notes") else diffs).extend(
                f"{name}/{key}: {line}" for line in _differences(a.get(key), b.get(key)))
    return diffs, notes


MISSING = "<missing>"


def _differences(a, b, where: str = "") -> list[str]:
    """One line per differing leaf: "path: old -> new" (a key on one side only: <missing>)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [line for k in sorted(set(a) | set(b), key=str) if a.get(k, MISSING) != b.get(k, MISSING)
                for line in _differences(a.get(k, MISSING), b.get(k, MISSING), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (p, q) in enumerate(zip(a, b)) if p != q for line in _differences(p, q, f"{where}[{i}]")]
    return [f"{where or 'value'}: {str(a)[:200]!s} -> {str(b)[:200]!s}"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("record", "check"):
        print("usage: check_unchanged.py record|check FILE.json", file=sys.stderr)
        return 2
    mode, path = argv[0], Path(argv[1])
    if mode == "check" and not path.is_file():
        print(f"error: {path} not found; record it first on the old code", file=sys.stderr)
        return 2
    result = record_set()
    if mode == "record":
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(result)} runs, {sum(map(len, result.values()))} files, in {path}")
        return 0
    diffs, notes = compare(json.loads(path.read_text()), result)
    for line in notes:
        print(f"note wording changed: {line}")
    for line in diffs:
        print(f"DIFFERENT: {line}")
    files = sum(map(len, result.values()))
    print(f"{len(result)} runs, {files} files: " + (f"{len(diffs)} differences" if diffs else "identical"))
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
