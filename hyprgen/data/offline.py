"""Offline datasets held in memory: one split, seeded batching, hold-out splits, labels, accuracy.

A `Split` is x [N, T, n_in] and target [N, T] (class per step, IGNORE_INDEX = -100 where a step
carries no label). The ECG, SHD and digits loaders all return Splits, so batching, splitting and
accuracy are written once here, and `offline_task` makes the task of `make_task` from two of them.

A Split is also a map-style torch Dataset: item i is (x [T, n_in] float32, target [T]), so that
torch's default collate stacks items into the batches `iterate` yields, and DataLoader, its samplers
and DistributedSampler work on it as on any Dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from torch.utils.data import Dataset, Subset

from ..contract import IGNORE_INDEX

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]  # (x [b, T, n_in] float32, target [b, T]) per batch


@dataclass(frozen=True, eq=False)
class Split(Dataset):
    """x [N, T, n_in] (float32, or uint8 counts for SHD to save memory), target [N, T] long."""
    x: torch.Tensor
    target: torch.Tensor
    n_classes: int

    def __post_init__(self):
        if self.x.ndim != 3 or self.target.shape != self.x.shape[:2] or self.target.dtype != torch.long:
            raise ValueError(f"a split needs x [N, T, n_in] and a long target [N, T], got x "
                             f"{tuple(self.x.shape)} and target {self.target.dtype} {tuple(self.target.shape)}")

    @property
    def n_in(self) -> int:
        return self.x.shape[2]

    @property
    def seq_len(self) -> int:
        return self.x.shape[1]

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample i as a batch row: (x [T, n_in] float32, target [T] long)."""
        return self.x[i].to(torch.float32), self.target[i]

    def subset(self, index: torch.Tensor) -> Split:
        return Split(self.x[index], self.target[index], self.n_classes)


def iterate(split: Split, batch_size: int, generator: torch.Generator | None,
            shuffle: bool = True) -> Batches:
    """One pass over `split` in batches (x [b, T, n_in] float32, target [b, T]); the last batch may
    be smaller. Shuffled with `generator` (required then), so a seeded generator gives the same order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if shuffle and generator is None:
        raise ValueError("shuffling needs a torch.Generator (seed it for a reproducible order)")
    order = torch.randperm(len(split), generator=generator) if shuffle else torch.arange(len(split))
    for idx in order.split(batch_size):
        yield split.x[idx].to(torch.float32), split.target[idx]


@dataclass
class OfflineTask:
    """A dataset held in memory: train (minus the validation part), val, test."""
    train: Split
    test: Split
    accuracy: Callable[[torch.Tensor, torch.Tensor], float]
    val: Split | None = None
    loss: str = "ce"

    @property
    def n_in(self) -> int:
        return self.train.n_in

    @property
    def n_out(self) -> int:
        return self.train.n_classes

    @property
    def seq_len(self) -> int:
        return self.train.seq_len

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Batches:
        return iterate(self.train, batch_size, generator)

    def test_batches(self, batch_size: int) -> Batches:
        return iterate(self.test, batch_size, None, shuffle=False)

    def dataset(self, split: str = "train", batch_size: int | None = None,
                generator: torch.Generator | None = None) -> Dataset:
        """`split` ("train", "val" or "test") as a map-style Dataset: the Split in its stored order, or
        with `generator` (train only) the epoch of `train_batches(·, generator)`: the Split in the order
        that epoch draws, drawn here from `generator` as train_batches would draw it. A DataLoader over
        it without shuffling then yields that epoch's batches. batch_size is not needed (the order does
        not depend on it); the cue task's `dataset` takes the same arguments and needs it."""
        data = {"train": self.train, "val": self.val, "test": self.test}.get(split, False)
        if data is False:
            raise ValueError(f"an offline task has the splits train, val and test, not {split!r}")
        if data is None:
            raise ValueError("this task holds out no validation split (val_fraction is 0)")
        if generator is None:
            return data
        if split != "train":
            raise ValueError(f"the {split} split is served in its stored order; only train is shuffled by a generator")
        return Subset(data, torch.randperm(len(data), generator=generator).tolist())  # iterate's draw


def offline_task(train: Split, test: Split, accuracy, val_fraction: float, split_seed: int) -> OfflineTask:
    """The task over a dataset's (train, test); val_fraction of train held out as val (hold_out)."""
    if val_fraction == 0:
        return OfflineTask(train, test, accuracy)
    train, val = hold_out(train, val_fraction, split_seed)
    return OfflineTask(train, test, accuracy, val)


def hold_out(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(rest, held): int(N * fraction) samples drawn by a permutation seeded with `seed`; both parts
    keep the original order of their samples."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"a hold-out fraction must be in [0, 1), got {fraction}")
    perm = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    n_held = int(len(split) * fraction)
    return split.subset(perm[n_held:].sort().values), split.subset(perm[:n_held].sort().values)


def expand_labels(labels: torch.Tensor, T: int, label_steps: int | None) -> torch.Tensor:
    """Per-sequence labels [N] → target [N, T]: the label on every step (label_steps=None) or on the
    last `label_steps` steps, IGNORE_INDEX elsewhere."""
    if label_steps is not None and not 1 <= label_steps <= T:
        raise ValueError(f"label_steps must be None (all steps) or in 1..{T}, got {label_steps}")
    target = torch.full((len(labels), T), IGNORE_INDEX, dtype=torch.long)
    target[:, T - (label_steps or T):] = labels.long()[:, None]
    return target


def step_accuracy(outputs: torch.Tensor, target: torch.Tensor) -> float:
    """Per labelled step: the fraction of labelled (b, t) whose output argmax is the target
    (outputs [B, T, C], target [B, T])."""
    labelled = target != IGNORE_INDEX
    return (outputs.argmax(-1) == target)[labelled].float().mean().item()


def sequence_accuracy(outputs: torch.Tensor, target: torch.Tensor) -> float:
    """Per sequence: the argmax of the readout summed over the labelled steps against the sequence's
    label (outputs [B, T, C], target [B, T] with one class per sequence)."""
    labelled = target != IGNORE_INDEX
    scores = (outputs * labelled[..., None]).sum(1)                                   # [B, C]
    labels = target.masked_fill(~labelled, -1).max(1).values                          # [B]
    return (scores.argmax(-1) == labels).float().mean().item()
