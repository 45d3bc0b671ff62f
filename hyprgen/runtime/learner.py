"""Shared plumbing of the learners (HYPR, BPTT, EProp): checks, gradients into .grad, optimizer steps."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import losses
from .distributed import DataParallel, unwrap
from .finite import check_parameters
from .network import Layer, RSNN


@dataclass
class StepResult:
    loss: torch.Tensor      # scalar: the normalized loss of this call (see losses.py)
    outputs: torch.Tensor | None  # [B, T, n_out] readout values, detached (None: HYPR.step_pieces without keep_outputs)


class Learner:
    """Base: subclasses compute gradients into .grad; `finish` steps an optimizer and clamps.

    check_finite (default True): the finiteness guard (finite.py) checks states, outputs, the loss and
    the gradients once per chunk (HYPR) or sequence (BPTT, EProp), and the parameters after each
    optimizer step, and raises NonFiniteError naming where a NaN or inf first appeared. False turns it
    off (benchmarks; docs/reliability.md gives its cost).

    process_group (torch.distributed; or pass a DistributedDataParallel-wrapped net, whose group is
    taken): data-parallel learning, each process on its shard of the batch, with the gradient and the
    loss of the whole batch on every process (distributed.py, docs/scaling.md)."""

    def __init__(self, net: RSNN, loss: str = "ce", check_finite: bool = True, process_group=None):
        net, process_group = unwrap(net, process_group)
        if not isinstance(net, RSNN):
            raise TypeError(f"expected a hyprgen.RSNN, got {type(net).__name__}")
        if loss not in losses.LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {losses.LOSSES}")
        if not isinstance(check_finite, bool):
            raise ValueError(f"check_finite must be True or False, got {check_finite!r}")
        self.net, self.loss, self.check_finite = net, loss, check_finite
        self.parallel = DataParallel(process_group)

    def _prepare(self, x, target, mask, optimizer):
        self.net.check_input(x)
        losses.check_target(self.loss, (x.shape[0], x.shape[1], self.net.n_out), target, mask)
        if target.shape[0] != x.shape[0]:
            raise ValueError(f"batch sizes differ: input {x.shape[0]}, target {target.shape[0]}")
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)

    def _normalizer(self, target, mask, like: torch.Tensor) -> float:
        """The loss normalizer: the labelled terms of the whole batch (over every process), at least 1."""
        return max(self.parallel.total(losses.counted_terms(self.loss, target, mask, self.net.n_out), like), 1.0)

    def _set_aside_grads(self) -> dict:
        kept = {p: p.grad for p in self.net.parameters()}
        for p in kept:
            p.grad = None
        return kept

    def _scale_and_restore_grads(self, factor: float, kept: dict) -> None:
        """.grad = kept + factor · (the gradient accumulated since _set_aside_grads)."""
        for p, old in kept.items():
            new = None if p.grad is None else p.grad * factor
            p.grad = old if new is None else (new if old is None else old + new)

    def _sum_over_processes(self, loss: torch.Tensor, kept: dict | None) -> torch.Tensor:
        """Data-parallel: this call's gradient (what .grad gained since `kept` was set aside) and its loss
        summed over the processes, the set-aside gradients restored; the loss returned. Alone: loss."""
        if not self.parallel.active:
            return loss
        loss = self.parallel.sum_gradients(self.net.parameters(), loss.detach().reshape(1))[0]
        if kept is not None:
            self._scale_and_restore_grads(1.0, kept)
        return loss

    def _finish(self, optimizer) -> None:
        if optimizer is not None:
            optimizer.step()
            self.net.clamp_()
            if self.check_finite:
                check_parameters(self.net)


def add_grad(param: torch.Tensor | None, value: torch.Tensor) -> None:
    """param.grad += value (creating it), as autograd's backward would."""
    if param is None:
        return
    value = value.to(param.dtype).sum_to_size(param.shape)   # a shared parameter [1]: the sum over neurons
    param.grad = value.clone() if param.grad is None else param.grad + value


def add_layer_grads(layer: Layer, W: torch.Tensor, b: torch.Tensor, theta: torch.Tensor) -> None:
    """Split ΔW [n, m] into W_in | W_rec and add ΔW, Δb [n], Δθ [n, p] to the layer's .grad."""
    add_grad(layer.W_in, W[:, : layer.n_in])
    if layer.recurrent:
        add_grad(layer.W_rec, W[:, layer.n_in:])
    add_grad(layer.bias, b)
    for k, p in enumerate(layer.neuron.META["params"]):
        add_grad(layer.theta[p["name"]], theta[:, k])
