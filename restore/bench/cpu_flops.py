"""How close a network call comes to what this CPU can do: `python scripts/bench.py cpu`.

    python scripts/bench.py cpu [--models natural-ddpm,celebahq-arch] [--sizes 256,1024] [--threads 1,2]
                                [--calls 2] [--profile natural-ddpm@256] [--json PATH]

For each model, size, memory format (contiguous and channels_last) and number of threads: the
FLOPs of one batch-1 call (torch.utils.flop_counter, as bench.py gpu counts them: 2 per
multiply-add), the median seconds of --calls calls after one warm-up, the achieved GFLOP/s and its
share of the processor's fp32 peak for that many cores. The peak is derived, not measured: cores x
FMA units per core x fp32 lanes per unit x 2 FLOPs per fused multiply-add x clock. The lanes are
the width of the FMA units' datapath, which is the widest vector in the CPU's flags (AVX-512: 16,
AVX2 with FMA: 8) except on AMD before Zen 5 (CPU family 25 and below), whose AVX-512 runs on
256-bit units (8 lanes; Zen 4's AVX-512 is split into two halves). 2 FMA units per core: every
AVX-512 Xeon since Skylake-SP Gold 6xxx, and Zen 2 to Zen 5 (a 1-unit part halves the peak). The
clock is lscpu's maximum, else the nominal frequency in the model name, else the TSC's (BogoMIPS /
2: the base clock, so a core that turbos above it can exceed 100%). --profile MODEL@SIZE prints torch.profiler's table of operators
by CPU time for that call (contiguous, all threads): where the time goes when the share is low.

Beside the derived peak, a measured roof for the same threads: the better of a 4096 x 4096 fp32
matrix product (torch's BLAS) and one large 3 x 3 convolution, 256 -> 256 channels at 64 x 64 in
channels_last (oneDNN, the library that runs the U-Net's convolutions): the best-tuned kernel the
machine has for a U-Net's work. Where the clock had to be taken from the TSC, a roof above the
derived peak means the cores run faster than that clock (turbo): the implied clock, roof / (FLOPs
per cycle), is printed as a lower bound.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time

import torch

from restore.bench.common import get_prior
from restore.io.atomic import write_json

FMA_UNITS = 2  # per core; see the module docstring


def cpu_peak(cpuinfo: str | None = None, lscpu: str | None = None) -> dict:
    """The fp32 peak per core in GFLOP/s and how it was derived (from /proc/cpuinfo and lscpu's
    output, or the texts given)."""
    flags = open("/proc/cpuinfo").read() if cpuinfo is None else cpuinfo
    lanes = 16 if re.search(r"\bavx512f\b", flags) else 8 if re.search(r"\bfma\b", flags) else 4
    vector = {16: "AVX-512", 8: "AVX2 + FMA", 4: "SSE"}[lanes]
    family = re.search(r"cpu family\s*:\s*(\d+)", flags)
    if "AuthenticAMD" in flags and family and int(family.group(1)) <= 25 and lanes == 16:
        lanes, vector = 8, "AVX-512 on 256-bit units (AMD Zen 4)"
    ghz, clock = None, None
    if lscpu is None:
        try:
            lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            lscpu = ""
    if found := re.search(r"CPU max MHz:\s*([\d.]+)", lscpu):
        ghz, clock = float(found.group(1)) / 1000, "lscpu's CPU max MHz"
    if ghz is None and (found := re.search(r"model name\s*:.*@\s*([\d.]+)GHz", flags)):
        ghz, clock = float(found.group(1)), "the model name's nominal clock"
    if ghz is None and (found := re.search(r"bogomips\s*:\s*([\d.]+)", flags)):
        ghz, clock = float(found.group(1)) / 2000, "the TSC clock (BogoMIPS / 2; the base clock, turbo not counted)"
    model = re.search(r"model name\s*:\s*(.*)", flags)
    per_core = FMA_UNITS * lanes * 2 * ghz
    return {"cpu": model.group(1).strip() if model else "unknown", "vector": vector, "lanes": lanes,
            "fma_units": FMA_UNITS, "ghz": ghz, "clock_from": clock, "gflops_per_core": per_core}


def _calls(net, x, t, calls: int) -> float:
    with torch.no_grad():
        net(x, t)  # warm-up: weights' layout, allocator, oneDNN kernels
        seconds = []
        for _ in range(calls):
            start = time.perf_counter()
            net(x, t)
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def roofs(threads: int, calls: int = 3) -> dict:
    """GFLOP/s of a 4096 x 4096 fp32 matrix product and of a 3 x 3 convolution 256 -> 256 at 64 x 64
    (channels_last) on `threads` threads, median of `calls` each."""
    torch.set_num_threads(threads)
    n = 4096
    sgemm = 2 * n**3 / _calls(lambda a, b: a @ b, torch.randn(n, n), torch.randn(n, n), calls) / 1e9
    x = torch.randn(1, 256, 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    conv = 2 * 256 * 256 * 9 * 64 * 64 / _calls(lambda a, b: torch.nn.functional.conv2d(a, b, padding=1), x, w,
                                                 calls) / 1e9
    return {"sgemm": sgemm, "conv3x3": conv, "roof": max(sgemm, conv)}


def flops(prior, size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        prior(torch.randn(1, 3, size, size), torch.full((1,), 500))
    return float(counter.get_total_flops())


def measure(model: str, size: int, channels_last: bool, threads: int, calls: int, peak: dict,
            roof: float) -> dict:
    torch.set_num_threads(threads)
    prior = get_prior(model, torch.device("cpu"))
    unet = prior.unet.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x = torch.randn(1, 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    t = torch.full((1,), 500)
    count = flops(prior, size)
    seconds = _calls(lambda a, b: unet(a, b).sample, x, t, calls)
    achieved = count / seconds / 1e9
    return {"model": model, "size": size, "channels_last": channels_last, "threads": threads,
            "gflop_per_call": count / 1e9, "seconds": seconds, "gflops": achieved,
            "share_of_peak": achieved / (peak["gflops_per_core"] * threads), "share_of_roof": achieved / roof}


def profile(model: str, size: int, threads: int) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(threads)
    prior = get_prior(model, torch.device("cpu"))
    x, t = torch.randn(1, 3, size, size), torch.full((1,), 500)
    with torch.no_grad():
        prior(x, t)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            prior(x, t)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="natural-ddpm,celebahq-arch")
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--calls", type=int, default=2, help="timed calls per configuration (median), after one")
    parser.add_argument("--profile", metavar="MODEL@SIZE", help="also the operator profile of one call")
    parser.add_argument("--json", help="also write every row here")
    parser.add_argument("--ghz", type=float, help="the clock for the derived peak, where the machine does not report "
                        "its maximum (a virtual machine reports only the TSC)")
    args = parser.parse_args(argv)
    peak = cpu_peak()
    if args.ghz:
        peak.update(gflops_per_core=peak["gflops_per_core"] / peak["ghz"] * args.ghz, ghz=args.ghz, clock_from="--ghz")
    print(f"{peak['cpu']}: {peak['vector']} ({peak['lanes']} fp32 lanes), {peak['fma_units']} FMA units per core, "
          f"{peak['ghz']:.2f} GHz from {peak['clock_from']}: peak {peak['gflops_per_core']:.1f} GFLOP/s per core")
    thread_counts = [int(n) for n in args.threads.split(",")]
    measured = {n: roofs(n) for n in thread_counts}
    per_cycle = peak["gflops_per_core"] / peak["ghz"]
    for n, r in measured.items():
        print(f"{n} thread(s): sgemm 4096 {r['sgemm']:.1f} GFLOP/s, conv 3x3 256ch {r['conv3x3']:.1f} GFLOP/s; the "
              f"roof is {100 * r['roof'] / (n * peak['gflops_per_core']):.0f}% of the derived peak, "
              f"implied clock >= {r['roof'] / n / per_cycle:.2f} GHz")
    print("\n| model | size | layout | threads | GFLOP / call | s / call | GFLOP/s | share of peak | share of roof |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for model in args.models.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for threads in thread_counts:
                for channels_last in (False, True):
                    r = measure(model, size, channels_last, threads, args.calls, peak, measured[threads]['roof'])
                    rows.append(r)
                    print(f"| {model} | {size} | {'channels_last' if channels_last else 'contiguous'} | {threads} | "
                          f"{r['gflop_per_call']:.1f} | {r['seconds']:.3f} | {r['gflops']:.1f} | "
                          f"{100 * r['share_of_peak']:.0f}% | {100 * r['share_of_roof']:.0f}% |", flush=True)
                    if args.json:
                        write_json(args.json, {"peak": peak, "roofs": measured, "rows": rows})
    if args.profile:
        model, _, size = args.profile.partition("@")
        print(f"\n{model} at {size}, {max(int(n) for n in args.threads.split(','))} threads, by self CPU time:")
        print(profile(model, int(size), max(int(n) for n in args.threads.split(","))))
    return 0
