"""Data-parallel learners on torch.distributed (docs/scaling.md): each process learns on its shard of
the batch, and the gradient is that of one process on the whole batch.

Averaging per-process gradients (what DDP does) equals the whole batch's gradient only when every
shard counts the same number of loss terms; with masks or unlabelled steps they differ. So a learner
with a process group works with loss sums: its normalizer is the labelled-term count of the whole
batch (one all-reduce of a scalar, before the chunks), and its gradients, the loss sum and the count
are summed over processes in one flat bucket (one all-reduce per sequence; per chunk in streaming
mode, before the optimizer step that needs them). Every process then holds the same gradient and
takes the same optimizer step, so the replicas stay identical without a broadcast.

The bucket is not overlapped with computation: in sequence mode it is one all-reduce of the
parameters' size per sequence of T steps, which is small next to the sequence's work (docs/scaling.md
gives the measured share); in streaming mode the optimizer step after each chunk needs it at once.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def unwrap(net, process_group):
    """(the RSNN, its process group): a DistributedDataParallel-wrapped net gives its module and group.
    HYPR and EProp write .grad without autograd, so DDP's own hooks never fire for them; this class's
    all-reduce takes their place."""
    if isinstance(net, DistributedDataParallel):
        return net.module, net.process_group if process_group is None else process_group
    return net, process_group


class DataParallel:
    """The collective operations of one process group (None: this process alone; then every method is
    the identity, so single-process learners pay nothing)."""

    def __init__(self, group=None):
        if group is not None and not dist.is_initialized():
            raise RuntimeError("process_group given but torch.distributed is not initialized "
                               "(call torch.distributed.init_process_group first, e.g. under torchrun)")
        self.group = group

    @property
    def active(self) -> bool:
        return self.group is not None

    def total(self, value: float, like: torch.Tensor) -> float:
        """Σ over processes of a Python number (a labelled-term count)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=like.device)
        dist.all_reduce(t, group=self.group)
        return float(t)

    def sum_gradients(self, params, extra: torch.Tensor | None = None) -> torch.Tensor | None:
        """Σ over processes of every parameter's .grad (a missing .grad counts as zeros and is set), in
        one flat all-reduce; `extra` (e.g. [loss sum]) rides in the same bucket and is returned summed."""
        if not self.active:
            return extra
        params = list(params)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        parts = [p.grad.reshape(-1) for p in params] + ([] if extra is None else [extra.reshape(-1).to(params[0].dtype)])
        flat = torch.cat(parts)
        dist.all_reduce(flat, group=self.group)
        offset = 0
        for p in params:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return None if extra is None else flat[offset:].reshape(extra.shape).to(extra.dtype)
