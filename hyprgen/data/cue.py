"""The delayed cue task: remember which channel group was active across a silent delay.

Input channels: `n_classes` cue groups and one recall group, `group` channels each. A sample shows
its class's cue group for `cue` steps (Poisson spikes at `rate`), then `delay` silent steps (only
background noise at `noise` rate), then the recall group for `recall` steps. The target is the
class on the recall steps and ignored (-100) elsewhere, so the loss is on the recall steps only.
Every batch is drawn from a seeded generator: the same seed gives the same data.

`task(...)` is the task of `make_task("cue")`: a CueStream, the endless generator cut into epochs.

As a torch Dataset (`CueStream.dataset`) the cue task is map-style: one epoch (or the test set)
drawn at once, in the trainer's draws, and held as uint8 spikes. Not a per-index seeded dataset: a
batch draws the labels of all its samples, then the spikes of all of them, from one generator, so a
sample is no function of its index alone, and sequences drawn one by one would be other data than
the trainer's (changing the trainer's draws instead would change every cue result recorded so far).
Not an IterableDataset: samplers and DistributedSampler need an indexable set. The price is memory:
epoch_batches × B × T × n_in bytes (1.8 MB by default, 0.25 GB at delay 16,000).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import torch

from ..contract import IGNORE_INDEX
from ..errors import HyprgenError
from .offline import Batches, Split, sequence_accuracy


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

    def dataset(self, split: str = "train", batch_size: int | None = None,
                generator: torch.Generator | None = None) -> Split:
        """A map-style Dataset of `split`'s sequences in the order the trainer sees them: "train" is
        the epoch `train_batches(batch_size, generator)` yields, drawn now (generator advances as that
        epoch advances it, so the next call gives the next epoch); "test" is `test_batches(batch_size)`.
        A DataLoader over it with that batch size and no shuffling yields exactly those batches."""
        if batch_size is None or batch_size < 1:
            raise ValueError("the cue task draws whole batches, so its samples depend on the batch size: "
                             f"give batch_size (the trainer's --batch-size, or the evaluation's), got {batch_size}")
        if split == "train":
            if generator is None:
                raise ValueError("the cue task's training epoch is drawn from a generator: give one (the "
                                 "trainer's is seeded with --data-seed, by default --seed + 1)")
            return _held(self.train_batches(batch_size, generator), self.epoch_batches * batch_size, self)
        if split == "test":
            if generator is not None:
                raise ValueError("the cue task's test set is drawn from test_seed; it takes no generator")
            return _held(self.test_batches(batch_size), self.test_samples, self)
        raise ValueError(f"the cue task has the splits train and test, not {split!r}")


def _held(batches: Batches, n: int, stream: CueStream) -> Split:
    """The n sequences of `batches` in one Split, spikes as uint8 (they are 0 or 1: exact as float32)."""
    x = torch.empty(n, stream.seq_len, stream.n_in, dtype=torch.uint8)             # [n, T, n_in]
    target = torch.empty(n, stream.seq_len, dtype=torch.long)                       # [n, T]
    start = 0
    for xb, yb in batches:
        x[start:start + len(yb)], target[start:start + len(yb)] = xb, yb
        start += len(yb)
    return Split(x, target, stream.n_out)


def task(epoch_batches: int = 40, test_samples: int = 256, test_seed: int = 1_000_003, **cue_options) -> CueStream:
    """Options: epoch_batches, test_samples, test_seed, and CueTask's fields (delay, cue, recall, ...)."""
    unknown = set(cue_options) - {f.name for f in dataclasses.fields(CueTask)}
    if unknown:
        raise HyprgenError(f"task 'cue': unknown option(s) {', '.join(sorted(unknown))}")
    return CueStream(CueTask(**cue_options), epoch_batches, test_samples, test_seed)
