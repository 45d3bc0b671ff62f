"""BPTT: autograd through the generated forward (surrogate injected), with the same losses."""
from __future__ import annotations

import torch

from . import losses
from .finite import check_sequence
from .learner import Learner, StepResult
from .network import RSNN


class BPTT(Learner):
    """detach_recurrent=True stops the gradient through W_rec's input o^{t-1}: with one hidden layer
    and a linear readout this is exactly the graph whose gradient HYPR computes (docs/hypr.md §8)."""

    def __init__(self, net: RSNN, loss: str = "ce", detach_recurrent: bool = False, check_finite: bool = True,
                 process_group=None):
        super().__init__(net, loss, check_finite, process_group)
        self.detach_recurrent = detach_recurrent

    def step(self, x: torch.Tensor, target: torch.Tensor, optimizer=None, mask: torch.Tensor | None = None) -> StepResult:
        self._prepare(x, target, mask, optimizer)
        # data-parallel: the whole batch's count (a host number); alone: mean_loss keeps it a tensor
        normalizer = self._normalizer(target, mask, x) if self.parallel.active else None
        kept = self._set_aside_grads() if self.parallel.active else None
        with torch.enable_grad():
            y, final = self.net(x, differentiable=True, detach_recurrent=self.detach_recurrent)
            loss = (losses.mean_loss(self.loss, y, target, mask) if normalizer is None
                    else losses.loss_sum(self.loss, y, target, mask) / normalizer)
            loss.backward()
        if self.check_finite:
            check_sequence(self.net, x, y.detach(), loss.detach(), [s.detach() for s in final],
                           [(i, name, p.grad) for i, layer in enumerate(self.net.layers)
                            for name, p in layer.named_parameters()])
        loss = self._sum_over_processes(loss.detach(), kept)
        self._finish(optimizer)
        return StepResult(loss, y.detach())
