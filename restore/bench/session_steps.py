"""The GPU session's own steps (restore.bench.session), each a command:

    python -m restore.bench.session_steps inputs --out DIR [--dry]
    python -m restore.bench.session_steps interrupt-resume --model M --input IMG --device cuda --out DIR
    python -m restore.bench.session_steps cuda-check

inputs: the model folder the command-line steps restore with (Ho et al.'s CelebA-HQ U-Net with
random weights, seed 0, stored in fp16 as a diffusers folder named celebahq-arch, so that the
toolkit treats it as the CelebA-HQ model it stands in for: trained size 256; --dry: a 2-level
U-Net of 32 x 32), the example face at that size and at 4x (1024; --dry 2x), a mask of the upper
middle for the region choice, a folder of two images for evaluate.py, and with --dry a tiny
held-out set and a tiny training-photo file. Writes DIR/inputs.json.

interrupt-resume: three runs of scripts/restore.py with the same settings and seed (Nested
4 x --inner, sr4, sigma_y 0.05): one uninterrupted; one sent SIGINT once its first step's image
exists (a person's Ctrl-C: the run keeps its latest result and stops, resumable), then
`--resume`d to its planned end; their final.png compared (8-bit). Writes DIR/result.json
(max and mean absolute difference in 8-bit levels, PSNR between them) and exits 1 when they
differ by more than the session's tolerance (restore.bench.session.RESUME_TOLERANCE_DB).

cuda-check: one CUDA operation, to learn whether a forked child can use the GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restore.bench.session import RESUME_TOLERANCE_DB, ROOT, run_command
from restore.io.atomic import write_json

FACE = ROOT / "data" / "examples" / "face.png"


def _save(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path)


def inputs(out: Path, dry: bool) -> dict:
    from diffusers import DDPMScheduler, UNet2DModel

    from restore.models.architectures import SCHEDULE, celebahq_architecture

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if dry:
        folder = out / "tiny-ddpm"
        unet = UNet2DModel(sample_size=32, block_out_channels=(16, 32), down_block_types=("DownBlock2D",) * 2,
                           up_block_types=("UpBlock2D",) * 2, layers_per_block=1, norm_num_groups=8,
                           add_attention=False)
    else:
        folder = out / "celebahq-arch"  # the name makes the toolkit keep its trained size, as with CelebA-HQ
        unet = celebahq_architecture().unet
    unet.half().save_pretrained(folder)
    DDPMScheduler(**SCHEDULE).save_pretrained(folder)
    size = 32 if dry else 256
    face = Image.open(FACE).convert("RGB")
    small = np.asarray(face.resize((size, size), Image.LANCZOS))
    _save(small, out / "face.png")
    big = 2 * size if dry else 4 * size
    _save(np.asarray(face.resize((big, big), Image.LANCZOS)), out / "face_big.png")
    mask = np.zeros((size, size), np.uint8)
    mask[size // 8 : size // 2, size // 4 : 3 * size // 4] = 255  # the eyes' band of the face
    _save(mask, out / "mask.png")
    (out / "set").mkdir(exist_ok=True)
    _save(small, out / "set" / "face.png")
    _save(small[:, ::-1].copy(), out / "set" / "face_mirrored.png")
    made = {"model": str(folder), "parameters": sum(p.numel() for p in unet.parameters()), "size": size,
            "big": big}
    if dry:  # what the real session carries from .train/ (scripts/gpu_session_prepare.sh)
        (out / "heldout").mkdir(exist_ok=True)
        _save(small, out / "heldout" / "face.png")
        grey = np.asarray(face.convert("L").resize((size, size), Image.LANCZOS))
        _save(np.repeat(grey[..., None], 3, axis=2), out / "heldout" / "face_grey.png")
        photo = np.asarray(face.resize((64, 64), Image.LANCZOS))
        np.savez(out / "photos.npz", **{"000_face": photo, "001_mirrored": photo[:, ::-1].copy()})
        made["heldout"], made["photos"] = 2, 2
    write_json(out / "inputs.json", made)
    return made


def _final(folder: Path) -> np.ndarray:
    return np.asarray(Image.open(folder / "final.png").convert("RGB"), dtype=np.float64)


def interrupt_resume(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["scripts/restore.py", "--model", args.model, "--input", args.input, "--task", "sr4", "--sigma-y", "0.05",
              "--solver", "nested", "--outer", "4", "--inner", str(args.inner), "--seed", "3", "--device", args.device,
              "--quiet"]
    result: dict = {"inner": args.inner, "tolerance_db": RESUME_TOLERANCE_DB, "passed": False}

    def done(error: str | None = None) -> int:
        if error:
            result["error"] = error
            print(f"error: {error}", file=sys.stderr)
        write_json(out / "result.json", result, indent=1)
        return 0 if result["passed"] else 1

    whole, cut = out / "uninterrupted", out / "interrupted"
    code = run_command([*common, "--out", str(whole), "--overwrite"], out / "uninterrupted.log", timeout=args.timeout)
    if code != 0:
        return done(f"the uninterrupted run failed (exit {code}; uninterrupted.log)")

    def interrupt(pid: int) -> None:  # SIGINT once the first step's image exists
        deadline = time.time() + args.timeout
        while time.time() < deadline and not list(cut.glob("step_1_*.png")):
            time.sleep(0.02)
        result["signal_after_s"] = round(time.time() - began, 2)
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    began = time.time()
    code = run_command([*common, "--out", str(cut), "--overwrite"], out / "interrupted.log", timeout=args.timeout,
                       on_start=interrupt)
    stopped = json.loads((cut / "metrics.json").read_text()) if (cut / "metrics.json").exists() else {}
    result.update(interrupted_exit=code, interrupted_status=stopped.get("status"),
                  interrupted_at_nfe=stopped.get("nfe_total"), planned_nfe=stopped.get("nfe_planned"))
    if code != 0 or stopped.get("status") != "interrupted":
        return done(f"the interrupted run ended with exit {code} and status {stopped.get('status')!r}, not a kept "
                    "interruption (interrupted.log)")
    code = run_command(["scripts/restore.py", "--resume", str(cut), "--quiet"], out / "resumed.log",
                       timeout=args.timeout)
    final = json.loads((cut / "metrics.json").read_text())
    result.update(resumed_exit=code, resumed_status=final.get("status"), resumed_nfe=final.get("nfe_total"))
    if code != 0 or final.get("status") != "complete":
        return done(f"the resumed run ended with exit {code} and status {final.get('status')!r} (resumed.log)")
    a, b = _final(whole), _final(cut)
    diff = np.abs(a - b)
    mse = float((diff**2).mean())
    result.update(identical=bool(mse == 0), max_abs_levels=float(diff.max()), mean_abs_levels=float(diff.mean()),
                  psnr_between_db=math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse),
                  psnr_uninterrupted=json.loads((whole / "metrics.json").read_text())["final"].get("psnr"),
                  psnr_resumed=final["final"].get("psnr"))
    result["passed"] = result["identical"] or result["psnr_between_db"] >= RESUME_TOLERANCE_DB
    return done(None if result["passed"] else f"resumed final.png differs from the uninterrupted one: "
                f"{result['psnr_between_db']:.1f} dB < {RESUME_TOLERANCE_DB:g} dB")


def cuda_check() -> int:
    x = torch.ones(4, device="cuda")
    torch.cuda.synchronize()
    print(f"{torch.cuda.get_device_name()}: {x.sum().item():g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m restore.bench.session_steps", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    i = sub.add_parser("inputs")
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--dry", action="store_true")
    r = sub.add_parser("interrupt-resume")
    for name in ("--model", "--input", "--out"):
        r.add_argument(name, required=True)
    r.add_argument("--device", default="cuda")
    r.add_argument("--inner", type=int, default=60, help="calls per outer step: enough that the stop lands mid-run")
    r.add_argument("--timeout", type=float, default=150)
    sub.add_parser("cuda-check")
    args = parser.parse_args(argv)
    if args.command == "inputs":
        print(json.dumps(inputs(args.out, args.dry)))
        return 0
    if args.command == "interrupt-resume":
        return interrupt_resume(args)
    return cuda_check()


if __name__ == "__main__":
    raise SystemExit(main())
