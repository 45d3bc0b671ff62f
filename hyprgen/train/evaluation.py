"""The evaluation of a network on a fixed set: mean loss, accuracy, the hidden layers' spike rates.

Every sequence runs from the zero state, without a gradient. The loss and the accuracy are computed
once over all batches' outputs together (so they do not depend on how the set is batched beyond
rounding); a layer's spike rate is the mean of its outputs over samples, steps and neurons (spikes
per neuron and step: a silent layer, common at small initial weight scales, shows 0). `spike_rate`
is the first hidden layer's, `layer_rates` every hidden layer's, bottom first.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..runtime import losses


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    layer_rates: tuple[float, ...]

    @property
    def spike_rate(self) -> float:
        return self.layer_rates[0]

    def event_fields(self, split: str) -> dict:
        """{split_loss, split_accuracy, split_spike_rate, split_spike_rates}: the names of metrics.jsonl."""
        return {f"{split}_loss": self.loss, f"{split}_accuracy": self.accuracy, f"{split}_spike_rate": self.spike_rate,
                f"{split}_spike_rates": list(self.layer_rates)}


@torch.no_grad()
def evaluate(net, task, batches, device: torch.device) -> Evaluation:
    """net on batches of (x [b, T, n_in], target [b, T]) with task.loss and task.accuracy."""
    outputs, targets = [], []
    spikes, steps = [0.0] * (len(net.layers) - 1), [0] * (len(net.layers) - 1)
    for x, y in batches:
        out, _, recorded = net(x.to(device), record=True)   # every layer's [b, T, n], the readout's last
        outputs.append(out)
        targets.append(y.to(device))
        for i, h in enumerate(recorded[:-1]):
            spikes[i] += h.sum().item()
            steps[i] += h.numel()
    out, y = torch.cat(outputs), torch.cat(targets)
    kind = task.loss
    loss = losses.mean_loss(kind, out, y, None)
    return Evaluation(loss.item(), task.accuracy(out, y), tuple(s / n for s, n in zip(spikes, steps)))
