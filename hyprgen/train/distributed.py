"""`hyprgen train` under torchrun (docs/scaling.md): one process per rank, each on its shard of every
batch, with the learners' data-parallel gradient (runtime/distributed.py).

    torchrun --standalone --nproc_per_node=2 -m hyprgen train --task ecg ...

Every rank draws the same batches (same seeds) and keeps the rows of its shard; rank 0 alone
evaluates, logs, writes the run directory (config, metrics, checkpoints, plots, summary). Decisions
that end the loop (a signal, --time-limit, --stop-after) are agreed by all ranks at each step, so no
rank waits in a collective that another has left. A streaming run's carried state differs per rank
(each carries its own rows): checkpoints hold every rank's, and a resume needs the same world size.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import HyprgenError


@dataclass
class Ranks:
    """This process's place in the run: rank of world (1 and None: alone)."""

    rank: int = 0
    world: int = 1
    group: object = None   # torch.distributed's default group, for the learners

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of a batch x [b, T, n_in], y [b, ...] (contiguous, as even as b allows)."""
        if self.world == 1:
            return x, y
        if x.shape[0] < self.world:
            raise HyprgenError(f"a batch of {x.shape[0]} cannot be split over {self.world} ranks: use a "
                               f"--batch-size of at least {self.world}")
        return x.tensor_split(self.world)[self.rank], y.tensor_split(self.world)[self.rank]

    def any(self, flag: bool) -> bool:
        """Whether any rank's flag is set (every rank calls it at the same point)."""
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t)

    def mean(self, value: float, weight: float) -> float:
        """The weight-averaged value over ranks (e.g. accuracy over the shards' rows)."""
        if self.world == 1:
            return value
        t = torch.tensor([value * weight, weight], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t[0] / t[1])

    def gather(self, obj) -> list:
        """Every rank's obj, in rank order (each rank gets the list)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self, together: bool = True) -> None:
        """Leave the process group; together (a normal end): after a barrier. A rank that tore its group
        down while the other was still writing the checkpoint aborted at exit under load ("terminate
        called without an active exception": tests/train/test_torchrun.py failed 3 runs in 5 with one
        core kept busy, 0 in 5 with the barrier). On an error the other rank may never arrive, so no
        barrier then."""
        if self.world > 1 and dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()


def from_environment(device: torch.device) -> Ranks:
    """Ranks from torchrun's environment (WORLD_SIZE > 1), the process group started; else alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Ranks(dist.get_rank(), dist.get_world_size(), dist.group.WORLD)
