"""Multi-process training through torchrun + DistributedDataParallel, with no code change:
`torchrun --nproc_per_node=N -m nnlab train ...` sets RANK / WORLD_SIZE / MASTER_ADDR; we join
the process group (NCCL on CUDA, gloo on CPU), each rank sees its shard of every epoch
(DistributedSampler), gradients are averaged by DDP, metrics are summed over ranks, and only
rank 0 writes the run directory."""

from __future__ import annotations

import atexit
import os
from typing import Any

import torch
import torch.distributed as dist


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun; return (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        atexit.register(
            _leave
        )  # each rank leaves the group itself instead of in interpreter teardown
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def finish_distributed() -> None:
    """Every rank waits for the others, then leaves the group: a rank that exits while another
    still works can abort in the process group's teardown ('terminate called without an active
    exception', seen with gloo on a loaded machine)."""
    if is_distributed():
        dist.barrier()
    _leave()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not is_distributed():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def local_device() -> torch.device | None:
    """The GPU of this rank under torchrun, or None (let the config decide)."""
    if is_distributed() and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_max(value: float, device: torch.device) -> float:
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1
