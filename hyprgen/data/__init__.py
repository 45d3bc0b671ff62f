"""Built-in tasks, and one interface over them for the training CLI.

`make_task(name, **options)` returns an object with
- `n_in`, `n_out`, `seq_len`, `loss` ("ce": targets are class indices [B, T], -100 = unlabelled);
- `train_batches(batch_size, generator)`: one epoch of (x [b, T, n_in] float32, target [b, T]);
  offline tasks shuffle their training split with the generator, the cue task draws `epoch_batches`
  fresh batches from it;
- `test_batches(batch_size)`: the fixed test set in order (cue: `test_samples` sequences drawn from
  a generator seeded with `test_seed`, in batches of `batch_size`, so the set depends on it);
- `dataset(split, batch_size=None, generator=None)`: split "train", "test" (or "val") as a
  map-style torch Dataset whose items (x [T, n_in] float32, target [T]) torch's default collate
  stacks into the batches above: a DataLoader over `dataset("train", B, generator)` without
  shuffling yields `train_batches(B, generator)` and advances the generator as it does, one over
  `dataset("test", B)` yields `test_batches(B)`; DistributedSampler(shuffle=False) deals item i to
  rank i mod world, so the ranks' k-th batches of B / world items are together the trainer's k-th
  batch (where world divides B and the set's size; else it pads with repeated items). Offline
  tasks: the Split itself (any sampler applies; without generator, stored order); cue: one epoch
  (or the test set) drawn at once (cue.py says why);
- `accuracy(outputs [B, T, C], target [B, T]) -> float`:
  "ecg": per labelled step (every step is labelled: the per-step accuracy the BRF paper reports);
  "cue", "shd", "digits": per sequence (argmax of the readout summed over the labelled steps).
Offline tasks also take `val_fraction` and `split_seed`: that part of the training split is held
out as `task.val` (None when val_fraction is 0) and `train_batches` never shows it.

Each task is a module of this package with a factory `task(**options)` (its docstring lists the
options). TASKS names them, and this module imports no torch until a task or a name below is used,
so that the CLI can offer the task names while `hyprgen build` and `hyprgen list` stay torch-free.
"""
from __future__ import annotations

import importlib
import inspect

from ..errors import HyprgenError

TASKS = ("cue", "ecg", "shd", "digits")  # modules of this package, each with task(**options)

# names importable from here, and the module that defines each (loaded on first use: torch)
_LAZY = {"CueTask": "cue", "CueStream": "cue", "Split": "offline", "OfflineTask": "offline", "iterate": "offline"}

__all__ = ["TASKS", "make_task", *_LAZY]


def make_task(name: str, **options):
    """The task `name` (one of TASKS) built with its keyword options: hyprgen.data.<name>.task."""
    if name not in TASKS:
        raise HyprgenError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    factory = importlib.import_module(f"{__name__}.{name}").task
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as e:
        raise HyprgenError(f"task {name!r}: {e}; options: {', '.join(inspect.signature(factory).parameters)}") from None
    return factory(**options)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
