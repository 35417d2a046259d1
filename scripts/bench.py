"""Benchmarks: the network is the cost of sampling; everything else must be close to free.

    python scripts/bench.py overhead     # per task: network s/call, solver overhead s/call, ratio
    python scripts/bench.py throughput   # images per minute at batch 1 and 4, peak memory
    python scripts/bench.py engine       # what a person's run costs beyond the network
    python scripts/bench.py peers --data heldout/   # DDRM, DiffPIR, DPS against deepinv's (pip install -e ".[bench]")
    python scripts/bench.py gpu          # CUDA: CelebA-HQ U-Net, fp32/bf16/fp16 x compile x batch (scripts/bench_gpu.py)

overhead: every task at 256x256, DDRM (20 steps) and NestedDDRM (4 x 5), run with the bundled
prior wrapped in a timer; overhead = wall time outside the network calls, per call. The CelebA-HQ
UNet (random weights: timing only) is timed on its own and the same overhead is set against it.
throughput: a whole restoration (sr4, 20 network calls by default) per batch; each configuration
runs in a fresh subprocess so that its peak memory (CUDA: max allocated; CPU: max RSS) is its own.
engine: sr4 at 256x256 with the bundled prior, Nested 4 x 5, K = 1 and 4 candidates, three ways:
the bare solvers.Run (the solver and the stepping: per network call, against the network and a
CelebA-HQ call), the Restoration a person drives (adds the scoring of every call and step:
LPIPS, SSIM, PSNR), and restore_image filling its output folder (adds the files of every step:
PNGs, metrics.json, state.pt; and the figures at the end).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
import torch

from degradations import TASKS, make_operator
from restore.prior import BUNDLED, DiffusersPrior, celebahq_schedule, load_prior
from restore.settings import resolve_device
from solvers import DDRM, NestedDDRM, make_generators

SIZE = 256


def celebahq_architecture() -> DiffusersPrior:
    """Ho et al.'s CelebA-HQ UNet (113.7M parameters) with random weights: for timing only."""
    from diffusers import UNet2DModel

    unet = UNet2DModel(
        sample_size=256, block_out_channels=(128, 128, 256, 256, 512, 512),
        down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
        layers_per_block=2, norm_eps=1e-6, freq_shift=1, flip_sin_to_cos=False, downsample_padding=0,
        attention_head_dim=None,
    )
    return DiffusersPrior(unet, celebahq_schedule(), "celebahq-architecture (random weights)")


def get_prior(name: str, device: torch.device) -> DiffusersPrior:
    prior = celebahq_architecture() if name == "celebahq-arch" else load_prior(name)
    return prior.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedPrior:
    """Wraps a prior and adds up the wall time spent inside its calls."""

    def __init__(self, prior, device: torch.device):
        self.prior, self.device = prior, device
        self.alphas_cumprod = prior.alphas_cumprod
        self.seconds, self.calls = 0.0, 0

    def __call__(self, x_t, t):
        sync(self.device)
        start = time.perf_counter()
        eps = self.prior(x_t, t)
        sync(self.device)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return eps


def network_seconds(prior, device: torch.device, batch: int = 1, calls: int = 3) -> float:
    x = torch.randn(batch, 3, SIZE, SIZE, device=device)
    t = torch.full((batch,), 500, device=device)
    with torch.no_grad():
        prior(x, t)  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            prior(x, t)
        sync(device)
    return (time.perf_counter() - start) / calls


def overhead(args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    prior = get_prior(args.model, device)
    big = network_seconds(get_prior("celebahq-arch", device), device, calls=args.celebahq_calls)
    print(f"device {device}; {args.model}: see table; CelebA-HQ UNet: {big:.3f} s per network call\n")
    print("| task | solver | network s/call | overhead s/call | overhead / network | overhead / CelebA-HQ call |")
    print("| --- | --- | --- | --- | --- | --- |")
    tasks = list(TASKS) if args.tasks == "all" else args.tasks.split(",")
    for task in tasks:
        options = {"mask": torch.ones(SIZE, SIZE, dtype=torch.bool)} if task == "inp_mask" else {}
        operator = make_operator(task, SIZE, **options)
        x = torch.rand(1, 3, SIZE, SIZE, device=device) * 2 - 1
        y = operator.to(device).observe(x, 0.05, torch.Generator(device).manual_seed(0))
        for name, make in (("DDRM", lambda p: DDRM(p, operator, steps=20)),
                           ("Nested 4x5", lambda p: NestedDDRM(p, operator, outer_steps=4, inner_steps=5))):
            best = None
            for _ in range(args.repeats):
                timed = TimedPrior(prior, device)
                solver = make(timed)
                sync(device)
                start = time.perf_counter()
                solver.restore(y, 0.05, make_generators([0], device))
                sync(device)
                wall = time.perf_counter() - start
                result = (timed.seconds / timed.calls, (wall - timed.seconds) / timed.calls)
                best = result if best is None or result[1] < best[1] else best
            net, over = best
            print(f"| {task} | {name} | {net:.3f} | {over * 1e3:.1f} ms | {100 * over / net:.2f}% | {100 * over / big:.2f}% |", flush=True)


def throughput_one(args: argparse.Namespace) -> None:
    """One configuration, in its own process: prints a JSON line."""
    device = resolve_device(args.device)
    prior = get_prior(args.model, device)
    operator = make_operator("sr4", SIZE).to(device)
    x = torch.rand(args.batch, 3, SIZE, SIZE, device=device) * 2 - 1
    y = operator.observe(x)
    solver = NestedDDRM(prior, operator, outer_steps=args.nfe // 5 if args.nfe % 5 == 0 else 1,
                        inner_steps=5 if args.nfe % 5 == 0 else args.nfe)
    network_seconds(prior, device, batch=args.batch, calls=1)  # warm-up (allocator, kernels)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    solver.restore(y, 0.0, make_generators(range(args.batch), device))
    sync(device)
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(json.dumps({"model": args.model, "batch": args.batch, "nfe": args.nfe, "seconds": seconds,
                      "images_per_minute": 60 * args.batch / seconds, "peak_bytes": peak,
                      "memory": "cuda max allocated" if device.type == "cuda" else "process max RSS",
                      "device": str(device)}))


def throughput(args: argparse.Namespace) -> None:
    print("| model | batch | NFE | seconds per batch | images / minute | peak memory |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            cmd = [sys.executable, __file__, "_throughput_one", "--model", model, "--batch", str(batch),
                   "--nfe", str(args.nfe), "--device", args.device]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"| {model} | {batch} | {r['nfe']} | {r['seconds']:.1f} | {r['images_per_minute']:.2f} | "
                  f"{r['peak_bytes'] / 2**20:.0f} MiB ({r['memory']}, {r['device']}) |", flush=True)


def engine(args: argparse.Namespace) -> None:
    import tempfile
    from pathlib import Path

    from restore.api import restore_image
    from restore.job import candidate_seed, prepare_job
    from restore.page import EXAMPLE
    from restore.session import Restoration
    from restore.settings import Settings, build_solver
    from solvers import Run

    device = resolve_device(args.device)
    big = network_seconds(get_prior("celebahq-arch", device), device, calls=args.celebahq_calls)
    print(f"device {device}; CelebA-HQ UNet: {big:.3f} s per network call (batch 1)\n")
    print("| K | what | network s/call | beyond the network, per call | per outer step | / network | "
          "/ CelebA-HQ call |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in (int(v) for v in args.candidates.split(",")):
        timed = TimedPrior(get_prior(args.model, device), device)
        timed.image_size = 256
        settings = Settings(task="sr4", candidates=k, model=args.model)
        job = prepare_job(str(EXAMPLE), settings, model=timed, device=device)
        rows = []
        for what in ("solvers.Run", "+ scoring (Restoration)", "+ files (restore_image, out=)"):
            timed.seconds, timed.calls = 0.0, 0
            sync(device)
            start = time.perf_counter()
            if what == "solvers.Run":
                gens = make_generators([candidate_seed(job.sampler_seed, i) for i in range(k)])
                run = Run(build_solver(settings, timed, job.operator), job.y, 0.0, gens, k)
                while not run.done:
                    run.step()
            elif what.startswith("+ scoring"):
                session = Restoration(job)
                while session.step() is not None:
                    pass
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    restore_image(str(EXAMPLE), settings=settings, model=timed, out=Path(tmp) / "o", quiet=True)
            sync(device)
            wall = time.perf_counter() - start
            over = (wall - timed.seconds) / timed.calls
            net = timed.seconds / timed.calls
            rows.append(f"| {k} | {what} | {net:.3f} | {over * 1e3:.1f} ms | {over * timed.calls / 4 * 1e3:.0f} ms | "
                        f"{100 * over / net:.1f}% | {100 * over / big:.1f}% |")
        print("\n".join(rows), flush=True)


def main() -> None:
    if sys.argv[1:2] in (["peers"], ["gpu"]):  # their own options: see scripts/bench_peers.py, bench_gpu.py
        import importlib.util  # scripts/ is off sys.path (see _paths.py): load it by its file

        name = f"bench_{sys.argv[1]}"
        spec = importlib.util.spec_from_file_location(name, __file__.replace("bench.py", f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        raise SystemExit(module.main(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--model", default=BUNDLED, help="prior run inside the solver (default: the bundled one)")
    o.add_argument("--tasks", default="all")
    o.add_argument("--repeats", type=int, default=2)
    o.add_argument("--celebahq-calls", type=int, default=3)
    o.add_argument("--device", default="auto")
    t = sub.add_parser("throughput")
    t.add_argument("--models", default=f"{BUNDLED},celebahq-arch")
    t.add_argument("--batches", default="1,4")
    t.add_argument("--nfe", type=int, default=20)
    t.add_argument("--device", default="auto")
    e = sub.add_parser("engine")
    e.add_argument("--model", default=BUNDLED)
    e.add_argument("--candidates", default="1,4")
    e.add_argument("--celebahq-calls", type=int, default=3)
    e.add_argument("--device", default="auto")
    one = sub.add_parser("_throughput_one")
    one.add_argument("--model", required=True)
    one.add_argument("--batch", type=int, required=True)
    one.add_argument("--nfe", type=int, required=True)
    one.add_argument("--device", default="auto")
    args = parser.parse_args()
    {"overhead": overhead, "throughput": throughput, "engine": engine,
     "_throughput_one": throughput_one}[args.command](args)


if __name__ == "__main__":
    main()
