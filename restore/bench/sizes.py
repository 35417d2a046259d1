"""Large images: seconds per network call and peak memory of the bundled prior at 256, 512, 1024 and
2048 pixels, untiled and on 512-pixel tiles, each in a fresh subprocess so that its peak memory
is its own (CPU: max RSS above the loaded model; CUDA: max allocated), next to restore.models.network's
estimate of the call's memory, and the kernel's share of the timed calls (system / user seconds,
minor page faults).

    python scripts/bench.py sizes                       # the table (docs/usage/sizes.md)
    python scripts/bench.py sizes --sides 256,512 --calls 2 --json sizes.json

The whole restoration docs/usage/sizes.md quotes (a 512x512 input to 2048x2048, sr4, 20 calls) is timed
with the command line itself:

    python scripts/restore.py --task sr4 --observed --input photo512.png --out big/
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from restore.bench.common import in_subprocess
from restore.io.atomic import write_json
from restore.models.network import GIB, SizedNetwork, network_bytes
from restore.models.prior import load_prior
from restore.settings.build import resolve_device
from restore.settings.model_spec import BUNDLED

TILE = 512


def _rss() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def one(side: int, tile: int, calls: int, device_name: str, warmup: int = 0) -> dict:
    """One configuration in this process: a warm-up call at a small size and `warmup` at full size
    (the steady state of a long restoration: the allocator has what it needs), then `calls` timed."""
    device = resolve_device(device_name)
    torch.set_grad_enabled(False)
    prior = load_prior(BUNDLED, device=device)
    net = SizedNetwork(prior, tile=tile)
    net(torch.zeros(1, 3, 64, 64, device=device), torch.full((1,), 500, device=device))
    x = torch.randn(1, 3, side, side, device=device)
    t = torch.full((1,), 500, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _rss()  # before the full-size calls: the peak is theirs, warm-up included
    for _ in range(warmup):
        net(x, t)
    seconds = []
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(calls):
        start = time.perf_counter()
        net(x, t)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0)
    window = min(tile, side) if tile else side
    return {"side": side, "tile": tile, "seconds_per_call": statistics.median(seconds), "calls": calls,
            "peak_gib": max(0.0, peak - base) / GIB, "estimate_gib": network_bytes(prior, 1, window, window) / GIB,
            "device": str(device), "threads": torch.get_num_threads(), "user_seconds": user, "system_seconds": system,
            "page_faults": after.ru_minflt - usage.ru_minflt}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py sizes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", default="256,512,1024,2048")
    parser.add_argument("--calls", type=int, default=2, help="timed calls per configuration (median)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--warmup", type=int, default=0, help="untimed calls at full size first (default 0: the "
                        "timed calls include the first call's page faults)")
    parser.add_argument("--_one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._one:
        print(json.dumps(one(args._one[0], args._one[1], args.calls, args.device, args.warmup)))
        return 0
    rows = []
    print(f"{'side':>6} {'tile':>5} {'s/call':>8} {'peak GiB':>9} {'estimate':>9} {'sys/user':>9} {'faults':>10}")
    for side in (int(s) for s in args.sides.split(",")):
        for tile in (0, TILE) if side > TILE else (0,):
            done = in_subprocess("restore.bench", "sizes", "--_one", str(side), str(tile), "--calls", str(args.calls),
                                 "--warmup", str(args.warmup),
                                 "--device", args.device)
            if done.returncode:
                print(f"{side:>6} {tile:>5} failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{side:>6} {tile or '-':>5} {row['seconds_per_call']:8.2f} {row['peak_gib']:9.2f} "
                  f"{row['estimate_gib']:9.2f} {row['system_seconds'] / max(row['user_seconds'], 1e-9):9.1%} "
                  f"{row['page_faults']:>10,}", flush=True)
    if args.json:
        write_json(args.json, rows)
    return 0
