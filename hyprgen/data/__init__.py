"""Built-in tasks, and one interface over them for the training CLI.

`make_task(name, **options)` returns an object with
- `n_in`, `n_out`, `seq_len`, `loss` ("ce": targets are class indices [B, T], -100 = unlabelled);
- `train_batches(batch_size, generator)`: one epoch of (x [b, T, n_in] float32, target [b, T]);
  offline tasks shuffle their training split with the generator, the cue task draws `epoch_batches`
  fresh batches from it;
- `test_batches(batch_size)`: the fixed test set in order (cue: `test_samples` sequences drawn from
  a generator seeded with `test_seed`, in batches of `batch_size`, so the set depends on it);
- `accuracy(outputs [B, T, C], target [B, T]) -> float`:
  "ecg": per labelled step (every step is labelled: the per-step accuracy the BRF paper reports);
  "cue", "shd", "digits": per sequence (argmax of the readout summed over the labelled steps).
Offline tasks also take `val_fraction` and `split_seed`: that part of the training split is held
out as `task.val` (None when val_fraction is 0) and `train_batches` never shows it.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..errors import HyprgenError
from . import shd
from .cue import CueTask
from .digits import load_digits
from .ecg import load_ecg
from .offline import Split, hold_out, iterate, sequence_accuracy, step_accuracy

__all__ = ["CueTask", "Split", "iterate", "TASKS", "make_task", "OfflineTask", "CueStream"]

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


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


def _offline(train: Split, test: Split, accuracy, val_fraction: float, split_seed: int) -> OfflineTask:
    if val_fraction == 0:
        return OfflineTask(train, test, accuracy)
    train, val = hold_out(train, val_fraction, split_seed)
    return OfflineTask(train, test, accuracy, val)


def _cue(epoch_batches: int = 40, test_samples: int = 256, test_seed: int = 1_000_003, **cue_options) -> CueStream:
    """Options: epoch_batches, test_samples, test_seed, and CueTask's fields (delay, cue, recall, ...)."""
    unknown = set(cue_options) - {f.name for f in dataclasses.fields(CueTask)}
    if unknown:
        raise HyprgenError(f"task 'cue': unknown option(s) {', '.join(sorted(unknown))}")
    return CueStream(CueTask(**cue_options), epoch_batches, test_samples, test_seed)


def _ecg(directory=None, val_fraction: float = 0.0, split_seed: int = 0) -> OfflineTask:
    """Options: directory (default $HYPRGEN_ECG_DIR), val_fraction (BRF holds out 0.1), split_seed."""
    return _offline(*load_ecg(directory), step_accuracy, val_fraction, split_seed)


def _shd(directory=None, dt: float = 0.004, duration: float = 1.0, pool: int = 5, max_count: int | None = None,
         label_steps: int | None = None, val_fraction: float = 0.0, split_seed: int = 0) -> OfflineTask:
    """Options: directory (default $HYPRGEN_SHD_DIR) with shd_train.h5 and shd_test.h5, and load_shd's."""
    directory = directory or os.environ.get(shd.ENV_VAR)
    if not directory:
        raise HyprgenError(f"no SHD directory: pass one or set {shd.ENV_VAR} to the folder holding "
                           f"{' and '.join(shd.FILES)} ({shd.HOW_TO_GET})")
    train, test = (shd.load_shd(Path(directory) / name, dt=dt, duration=duration, pool=pool, max_count=max_count,
                                label_steps=label_steps) for name in shd.FILES)
    return _offline(train, test, sequence_accuracy, val_fraction, split_seed)


def _digits(mode: str = "rows", label_steps: int | None = 1, test_fraction: float = 0.2, test_seed: int = 0,
            val_fraction: float = 0.0, split_seed: int = 0) -> OfflineTask:
    """Options: mode ("rows" or "pixels"), label_steps, test_fraction and test_seed (the train/test
    split), val_fraction, split_seed."""
    train, test = load_digits(mode, label_steps=label_steps, test_fraction=test_fraction, seed=test_seed)
    return _offline(train, test, sequence_accuracy, val_fraction, split_seed)


TASKS: dict[str, Callable[..., OfflineTask | CueStream]] = {"cue": _cue, "ecg": _ecg, "shd": _shd, "digits": _digits}


def make_task(name: str, **options) -> OfflineTask | CueStream:
    """The task `name` (one of TASKS) built with its keyword options (see each factory's docstring)."""
    if name not in TASKS:
        raise HyprgenError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    factory = TASKS[name]
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as e:
        raise HyprgenError(f"task {name!r}: {e}; options: {', '.join(inspect.signature(factory).parameters)}") from None
    return factory(**options)
