"""The delayed cue task: remember which channel group was active across a silent delay.

Input channels: `n_classes` cue groups and one recall group, `group` channels each. A sample shows
its class's cue group for `cue` steps (Poisson spikes at `rate`), then `delay` silent steps (only
background noise at `noise` rate), then the recall group for `recall` steps. The target is the
class on the recall steps and ignored (-100) elsewhere, so the loss is on the recall steps only.
Every batch is drawn from a seeded generator: the same seed gives the same data.

`task(...)` is the task of `make_task("cue")`: a CueStream, the endless generator cut into epochs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import torch

from ..contract import IGNORE_INDEX
from ..errors import HyprgenError
from .offline import Batches, sequence_accuracy


@dataclass
class CueTask:
    n_classes: int = 2
    group: int = 4
    cue: int = 10
    delay: int = 100
    recall: int = 10
    rate: float = 0.5
    noise: float = 0.01

    @property
    def n_in(self) -> int:
        return (self.n_classes + 1) * self.group

    @property
    def seq_len(self) -> int:
        return self.cue + self.delay + self.recall

    def batch(self, size: int, generator: torch.Generator, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """(x [size, T, n_in] spikes in {0, 1}, target [size, T] class on recall steps, else -100)."""
        T, g = self.seq_len, self.group
        labels = torch.randint(0, self.n_classes, (size,), generator=generator)
        prob = torch.full((size, T, self.n_in), self.noise)
        cue_channels = labels[:, None] * g + torch.arange(g)                          # [size, g]
        prob[torch.arange(size)[:, None, None], torch.arange(self.cue)[None, :, None], cue_channels[:, None, :]] = self.rate
        prob[:, T - self.recall:, self.n_classes * g:] = self.rate
        x = torch.bernoulli(prob, generator=generator).to(dtype)
        target = torch.full((size, T), IGNORE_INDEX, dtype=torch.long)
        target[:, T - self.recall:] = labels[:, None]
        return x, target

    @staticmethod
    def accuracy(outputs: torch.Tensor, target: torch.Tensor) -> float:
        """Per sequence: argmax of the readout summed over the labelled steps (outputs [B, T, C])."""
        labelled = (target != IGNORE_INDEX)
        scores = (outputs * labelled[..., None]).sum(1)                                # [B, C]
        labels = target.masked_fill(~labelled, -1).max(1).values                         # [B]
        return (scores.argmax(-1) == labels).float().mean().item()


@dataclass
class CueStream:
    """The delayed cue task as an endless generator cut into epochs of `epoch_batches` batches."""
    cue: CueTask
    epoch_batches: int = 40
    test_samples: int = 256
    test_seed: int = 1_000_003
    loss: str = "ce"
    accuracy = staticmethod(sequence_accuracy)

    @property
    def n_in(self) -> int:
        return self.cue.n_in

    @property
    def n_out(self) -> int:
        return self.cue.n_classes

    @property
    def seq_len(self) -> int:
        return self.cue.seq_len

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Batches:
        for _ in range(self.epoch_batches):
            yield self.cue.batch(batch_size, generator)

    def test_batches(self, batch_size: int) -> Batches:
        generator = torch.Generator().manual_seed(self.test_seed)
        for start in range(0, self.test_samples, batch_size):
            yield self.cue.batch(min(batch_size, self.test_samples - start), generator)


def task(epoch_batches: int = 40, test_samples: int = 256, test_seed: int = 1_000_003, **cue_options) -> CueStream:
    """Options: epoch_batches, test_samples, test_seed, and CueTask's fields (delay, cue, recall, ...)."""
    unknown = set(cue_options) - {f.name for f in dataclasses.fields(CueTask)}
    if unknown:
        raise HyprgenError(f"task 'cue': unknown option(s) {', '.join(sorted(unknown))}")
    return CueStream(CueTask(**cue_options), epoch_batches, test_samples, test_seed)
