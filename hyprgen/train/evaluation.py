"""The evaluation of a network on a fixed set: mean loss, accuracy, first hidden layer's spike rate.

Every sequence runs from the zero state, without a gradient. The loss and the accuracy are computed
once over all batches' outputs together (so they do not depend on how the set is batched beyond
rounding); the spike rate is the mean of the first hidden layer's outputs over samples, steps and
neurons (spikes per neuron and step: a silent network, common at small initial weight scales, shows 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..runtime import losses


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    spike_rate: float

    def event_fields(self, split: str) -> dict:
        """{split_loss, split_accuracy, split_spike_rate}: the names of metrics.jsonl."""
        return {f"{split}_loss": self.loss, f"{split}_accuracy": self.accuracy, f"{split}_spike_rate": self.spike_rate}


@torch.no_grad()
def evaluate(net, task, batches, device: torch.device) -> Evaluation:
    """net on batches of (x [b, T, n_in], target [b, T]) with task.loss and task.accuracy."""
    outputs, targets = [], []
    spikes = steps = 0.0
    for x, y in batches:
        out, _, recorded = net(x.to(device), record=True)
        outputs.append(out)
        targets.append(y.to(device))
        spikes += recorded[0].sum().item()   # [b, T, n] of the first hidden layer
        steps += recorded[0].numel()
    out, y = torch.cat(outputs), torch.cat(targets)
    kind = task.loss
    loss = losses.mean_loss(kind, out, y, None)
    return Evaluation(loss.item(), task.accuracy(out, y), spikes / steps)
