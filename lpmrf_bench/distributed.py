"""Several processes (torchrun / accelerate): who this process is, barriers, and sharding without padding.

Launched with `torchrun --nproc-per-node N -m lpmrf_bench run ...`, every rank plans the same work, takes
every N-th image of it (no padding duplicates, unlike DistributedSampler), writes its own Parquet parts,
and rank 0 merges and computes the set-level values once all ranks are done.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank::self.world_size])

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def from_environment(device_type: str) -> Ranks:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(name: str | None, ranks: Ranks) -> torch.device:
    """The device of this rank: cuda:LOCAL_RANK when several ranks share a machine's GPUs."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and ranks.world_size > 1:
        name = f"cuda:{ranks.local_rank}"
    return torch.device(name)
