"""The CPU benchmarks of restore.bench: overhead (the solver's time beyond the network, per task),
throughput (images per minute and peak memory, each configuration in its own process) and engine
(what a person's run costs beyond the network: the Run, the scoring, the files). See
restore.bench.cli for the commands."""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from degradations import TASKS, make_operator
from degradations.kernels import disk_kernel
from restore.api import restore_image
from restore.bench.common import SIZE, TimedPrior, get_prior, in_subprocess, network_seconds, sync
from restore.paths import EXAMPLE_IMAGE as EXAMPLE
from restore.restoration.job import prepare_job
from restore.restoration.seeds import candidate_seed
from restore.restoration.session import Restoration
from restore.settings.build import build_solver, resolve_device
from restore.settings.schema import Settings
from solvers import DDRM, NestedDDRM, Run, make_generators


def overhead(args: argparse.Namespace) -> None:
    device = resolve_device(args.device)
    prior = get_prior(args.model, device)
    big = network_seconds(get_prior("celebahq-arch", device), device, calls=args.celebahq_calls)
    print(f"device {device}; {args.model}: see table; CelebA-HQ UNet: {big:.3f} s per network call\n")
    print("| task | solver | network s/call | overhead s/call | overhead / network | overhead / CelebA-HQ call |")
    print("| --- | --- | --- | --- | --- | --- |")
    tasks = list(TASKS) if args.tasks == "all" else args.tasks.split(",")
    for task in tasks:
        options = {"inp_mask": {"mask": torch.ones(SIZE, SIZE, dtype=torch.bool)},
                   "deblur": {"kernel": disk_kernel(3.0)}}.get(task, {})
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
            done = in_subprocess("restore.bench", "_throughput_one", "--model", model, "--batch", str(batch),
                                 "--nfe", str(args.nfe), "--device", args.device)
            if done.returncode:
                raise SystemExit(f"error: the {model} batch {batch} run failed: {done.stderr.strip()[-500:]}")
            out = done.stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"| {model} | {batch} | {r['nfe']} | {r['seconds']:.1f} | {r['images_per_minute']:.2f} | "
                  f"{r['peak_bytes'] / 2**20:.0f} MiB ({r['memory']}, {r['device']}) |", flush=True)


def engine(args: argparse.Namespace) -> None:
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
