"""The CelebA-HQ U-Net on a CUDA GPU: precision x compile x batch, against the card's peak.

    python scripts/bench.py gpu [--batches 1,8,32] [--precisions fp32,bf16,fp16] [--compile on,off]
                                [--compile-batches 1,8] [--calls 10] [--budget 330] [--json PATH]
    python scripts/bench.py gpu --device cpu --model M --size 32 ...   # this command's path on a CPU (tests)

The network is Ho et al.'s CelebA-HQ U-Net (restore.models.architectures.celebahq_architecture, random
weights: timing only) at 256x256, run through restore.models.precision.configure_network (channels_last
on, as on CUDA by default). Per configuration: ms per network call (mean of --calls after
warm-up), images per minute at 20 calls (network only), peak memory (torch.cuda.max_memory_allocated
during the timed calls), and the achieved fraction of the card's dense peak for that precision:
FLOPs of one call (torch.utils.flop_counter on one batch-1 forward, times the batch) over the time,
over the peak. fp32 is set against the TF32 tensor peak when cuDNN's TF32 is on (PyTorch's default
for convolutions, nearly all of this network's FLOPs), else the fp32 one. "plain ms": an eager
diffusers UNet2DModel call on the same weights, autocast and layout, no wrapper (eager rows only).

Order: every eager configuration, then the solver's own work, then the compiled configurations
(bf16 first, then fp16, fp32; batches of --compile-batches), each compiled one only when the time
spent so far plus the longest compile seen (first guess 90 s) stays within --budget seconds.

Solver work: DDRM (20 steps) and NestedDDRM (4 x 5) restore with the network replaced by a cheap
function of the same shapes; its wall time per call (best of 3 after a warm-up), as a fraction of
the fastest network call measured at that batch, and at batch 1 of the eager and compiled fp32
and bf16 calls (the target: under 1% in fp32 and bf16). Measured alone, so an upper bound: inside
a real run the solver's kernels queue behind the network's and its Python overlaps them.

--device cpu (with a small --model and --size) runs the same path on a CPU to check it: eager
only, no peak memory or peak FLOPS; its numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import time

import torch

from restore.io.atomic import write_json
from restore.models.architectures import celebahq_architecture

NFE = 20
# dense TFLOPS: fp32 (no tensor cores), tf32 tensor, bf16 / fp16 tensor; first matching name wins
PEAKS = [(r"H100 PCIe", 51, 378, 756), (r"H[12]00 NVL", 60, 418, 835), (r"H100|H200", 67, 495, 989),
         (r"A100", 19.5, 156, 312), (r"\bL4\b", 30.3, 60, 121), (r"RTX 4090", 82.6, 82.6, 165.2)]


def peak_tflops(name: str, precision: str) -> tuple[float | None, str]:
    tf32 = precision == "fp32" and getattr(torch.backends.cudnn, "allow_tf32", True)
    basis = "tf32" if tf32 else precision
    for pattern, fp32, tf32_peak, half in PEAKS:
        if re.search(pattern, name):
            return {"fp32": fp32, "tf32": tf32_peak}.get(basis, half), basis
    return None, basis


def log(start: float, text: str) -> None:
    print(f"[{time.perf_counter() - start:6.1f} s] {text}", file=sys.stderr, flush=True)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_calls(fn, x, t, calls: int) -> float:
    sync(x.device.type)
    begin = time.perf_counter()
    with torch.no_grad():
        for _ in range(calls):
            fn(x, t)
    sync(x.device.type)
    return (time.perf_counter() - begin) / calls


def measure(prior, precision: str, compiled: bool, batch: int, args, flops: float, card: str) -> dict:
    from restore.models.precision import AUTOCAST_DTYPES, configure_network

    device, size = args.device, args.size
    net = configure_network(prior, precision, compile=compiled, channels_last=True)
    x = torch.randn(batch, 3, size, size, device=device)
    t = torch.full((batch,), 500, device=device)
    sync(device)
    begin = time.perf_counter()
    with torch.no_grad():
        net(x, t)  # compiles when compiled
        sync(device)
        first = time.perf_counter() - begin
        for _ in range(2):  # CUDA graph recording; eager: allocator and cuDNN warm-up
            net(x, t)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = time_calls(net, x, t, args.calls)
    row = {"precision": precision, "compile": compiled, "batch": batch, "ms_per_call": 1e3 * seconds,
           "images_per_minute": 60 * batch / (NFE * seconds),
           "peak_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None, "first_call_s": first}
    peak, basis = peak_tflops(card, precision)
    row.update(peak_basis=basis, peak_tflops=peak, achieved_tflops=batch * flops / seconds / 1e12)
    row["fraction_of_peak"] = row["achieved_tflops"] / peak if peak else None
    if not compiled:  # the reference: the bare diffusers call, same weights, autocast and layout
        dtype = AUTOCAST_DTYPES[precision]
        xc = x.contiguous(memory_format=torch.channels_last)

        def plain(x_t, t_):
            with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                return prior.unet(x_t, t_).sample

        plain(xc, t)
        row["plain_ms_per_call"] = 1e3 * time_calls(plain, xc, t, args.calls)
    return row


class CheapPrior:
    """Same shapes as the network, (almost) no work."""

    def __init__(self, alphas_cumprod):
        self.alphas_cumprod = alphas_cumprod

    def __call__(self, x_t, t):
        return x_t * 0.5


def solver_work(alphas_cumprod, tasks: list[str], batch: int, device: str = "cuda", size: int = 256,
                repeats: int = 3) -> list[dict]:
    from degradations import make_operator
    from solvers import DDRM, NestedDDRM, make_generators

    prior, rows = CheapPrior(alphas_cumprod), []
    for task in tasks:
        operator = make_operator(task, size).to(device)
        x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
        y = operator.observe(x, 0.05, torch.Generator(device).manual_seed(0))
        for name, solver in (("DDRM", DDRM(prior, operator, steps=NFE)),
                             ("Nested 4x5", NestedDDRM(prior, operator, outer_steps=4, inner_steps=5))):
            best = float("inf")
            for _ in range(repeats + 1):  # the first: warm-up (cuFFT plans, allocator)
                sync(device)
                begin = time.perf_counter()
                solver.restore(y, 0.05, make_generators(range(batch), device))
                sync(device)
                best = min(best, time.perf_counter() - begin)
            rows.append({"task": task, "solver": name, "batch": batch, "ms_per_call": 1e3 * best / NFE})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--compile", default="on,off", help="on, off or on,off")
    parser.add_argument("--compile-batches", default="1,8", help="those of --batches compiled (each compiles once)")
    parser.add_argument("--calls", type=int, default=10, help="timed network calls per configuration")
    parser.add_argument("--tasks", default="sr4,deblur_gauss,inp_box", help="solver-work tasks ('' for none)")
    parser.add_argument("--budget", type=float, default=330, help="seconds: no compile started past it")
    parser.add_argument("--json", help="write every number here (rewritten after each configuration)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                        help="cpu: only to check this command's path (eager, small --model and --size)")
    parser.add_argument("--model", default="celebahq-arch", help="celebahq-arch (random weights) or a model folder")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: bench.py gpu needs a CUDA GPU (none found); run it on a machine with one "
              "(CPU numbers: bench.py overhead / throughput)", file=sys.stderr)
        return 2
    from restore.models.precision import PRECISIONS

    batches = [int(b) for b in args.batches.split(",")]
    precisions = args.precisions.split(",")
    modes = args.compile.split(",")
    if not set(precisions) <= set(PRECISIONS) or not set(modes) <= {"on", "off"}:
        parser.error(f"--precisions: some of {','.join(PRECISIONS)}; --compile: on, off or on,off")
    if args.device == "cpu" and "on" in modes:
        parser.error("--device cpu: eager only (--compile off); compiling on a CPU takes minutes")
    start = time.perf_counter()
    from torch.utils.flop_counter import FlopCounterMode

    from restore.models.prior import load_prior

    torch._dynamo.config.recompile_limit = 64
    device, size = args.device, args.size
    card = torch.cuda.get_device_name() if device == "cuda" else "CPU (path check only)"
    torch.manual_seed(0)
    prior = (celebahq_architecture() if args.model == "celebahq-arch" else load_prior(args.model)).to(device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        prior(torch.randn(1, 3, size, size, device=device), torch.full((1,), 500, device=device))
    flops = counter.get_total_flops()
    out = {"card": card, "torch": torch.__version__, "model": args.model, "size": size, "flops_per_image": flops,
           "network": [], "solver": []}
    peak = peak_tflops(card, "bf16")[0]
    log(start, f"{card}: {flops / 1e9:.0f} GFLOP per image per call; "
               f"{'unknown peak' if peak is None else f'bf16 peak {peak:g} TFLOPS'}")

    def save():
        if args.json:
            write_json(args.json, out, indent=1)

    def run(precision, compiled, batch):
        log(start, f"{precision} compile={'on' if compiled else 'off'} batch {batch}")
        try:
            row = measure(prior, precision, compiled, batch, args, flops, card)
        except Exception as error:  # noqa: BLE001 - one failed configuration does not stop the run
            row = {"precision": precision, "compile": compiled, "batch": batch,
                   "error": " ".join(str(error).split())[:200] or type(error).__name__}
            log(start, f"  failed: {row['error']}")
        out["network"].append(row)
        save()
        torch._dynamo.reset()
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
        return row

    if "off" in modes:
        for precision in precisions:
            for batch in batches:
                run(precision, False, batch)
    for batch in batches if args.tasks else []:
        log(start, f"solver work, batch {batch}")
        try:
            out["solver"] += solver_work(prior.alphas_cumprod, args.tasks.split(","), batch, device, size)
        except Exception as error:  # noqa: BLE001 - keep the network numbers
            log(start, f"  failed: {' '.join(str(error).split())[:200]}")
        save()
    if "on" in modes:
        longest = 90.0
        for precision in sorted(precisions, key=["bf16", "fp16", "fp32"].index):
            for batch in [b for b in batches if str(b) in args.compile_batches.split(",")]:
                if time.perf_counter() - start + longest > args.budget:
                    log(start, f"skipped {precision} compile batch {batch}: over --budget {args.budget:.0f} s")
                    out["network"].append({"precision": precision, "compile": True, "batch": batch,
                                           "error": "skipped: over --budget"})
                    continue
                longest = max(longest, run(precision, True, batch).get("first_call_s", 0))
    report(out)
    save()
    log(start, "done")
    return 0


def solver_shares(out: dict) -> list[dict]:
    """The solver's own share of one network call at batch 1, against the eager and the compiled
    fp32 and bf16 calls (those measured); also stored in out["solver_share"]."""
    calls = {(r["precision"], r["compile"]): r["ms_per_call"] for r in out["network"]
             if r["batch"] == 1 and "ms_per_call" in r}
    rows = []
    for r in out["solver"]:
        if r["batch"] != 1:
            continue
        for (precision, compiled), net in sorted(calls.items()):
            if precision in ("fp32", "bf16"):
                rows.append({"task": r["task"], "solver": r["solver"], "precision": precision, "compile": compiled,
                             "solver_ms": r["ms_per_call"], "network_ms": net, "share": r["ms_per_call"] / net})
    out["solver_share"] = rows
    return rows


def report(out: dict) -> None:
    name = "CelebA-HQ U-Net" if out.get("model", "celebahq-arch") == "celebahq-arch" else out["model"]
    size = out.get("size", 256)
    print(f"{out['card']}, torch {out['torch']}; {name} {size}x{size}: "
          f"{out['flops_per_image'] / 1e9:.1f} GFLOP per image per call\n")
    print("| precision | compile | batch | ms/call | plain diffusers ms/call | images/min @20 | peak memory "
          "| TFLOPS | of peak | first call s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    fastest = {}
    for r in out["network"]:
        head = f"| {r['precision']} | {'on' if r['compile'] else 'off'} | {r['batch']} "
        if "error" in r:
            print(head + f"| {r['error']} | | | | | | |")
            continue
        fastest[r["batch"]] = min(fastest.get(r["batch"], float("inf")), r["ms_per_call"])
        plain = f"{r['plain_ms_per_call']:.2f}" if "plain_ms_per_call" in r else "-"
        share = (f"{100 * r['fraction_of_peak']:.0f}% of {r['peak_tflops']:g} ({r['peak_basis']})"
                 if r["fraction_of_peak"] is not None else "unknown peak")
        memory = f"{r['peak_bytes'] / 2**30:.2f} GiB" if r.get("peak_bytes") is not None else "-"
        print(head + f"| {r['ms_per_call']:.2f} | {plain} | {r['images_per_minute']:.0f} | "
              f"{memory} | {r['achieved_tflops']:.1f} | {share} | {r['first_call_s']:.1f} |")
    if out["solver"]:
        print("\n| task | solver | batch | solver ms/call | / fastest network call at that batch |")
        print("| --- | --- | --- | --- | --- |")
        for r in out["solver"]:
            net = fastest.get(r["batch"])
            r["fraction_of_fastest_call"] = r["ms_per_call"] / net if net else None
            ratio = f"{100 * r['ms_per_call'] / net:.2f}% (of {net:.2f} ms)" if net else "-"
            print(f"| {r['task']} | {r['solver']} | {r['batch']} | {r['ms_per_call']:.3f} | {ratio} |")
        shares = solver_shares(out)
        if shares:
            print("\nsolver's own share of a batch-1 call (target: under 1% in fp32 and bf16)\n")
            print("| task | solver | against | solver ms | network ms | share |")
            print("| --- | --- | --- | --- | --- | --- |")
            for r in shares:
                against = f"{r['precision']}{' compiled' if r['compile'] else ''}"
                print(f"| {r['task']} | {r['solver']} | {against} | {r['solver_ms']:.3f} | {r['network_ms']:.2f} | "
                      f"{100 * r['share']:.2f}% |")
