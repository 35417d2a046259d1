"""torch.distributed for sharded evaluation: initialised from torchrun's environment (nccl on
CUDA with one GPU per LOCAL_RANK, gloo on CPU), also for one process under torchrun (so that
`torchrun --nproc_per_node=1` runs the collectives a larger run does); a no-op stand-in for a
plain single process."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    active: bool = False

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def broadcast(self, obj: Any) -> Any:
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:  # not launched by torchrun
        return Dist(), device
    rank = int(os.environ.get("RANK", "0"))
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    # long timeout: ranks meet only at the start and at the end, after all their work
    timeout = datetime.timedelta(hours=float(os.environ.get("RESTORE_DIST_TIMEOUT_HOURS", "24")))
    torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timeout)
    return Dist(rank, world, True), device


