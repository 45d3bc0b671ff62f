"""Sequential digits: scikit-learn's 8x8 handwritten digits (1797 images, 10 classes; the UCI
optical recognition test set) read one row or one pixel per time step.

mode "rows": x[n, t, :] = image row t (T = 8, n_in = 8); mode "pixels": x[n, t, 0] = pixel t in
row-major order (T = 64, n_in = 1). Pixel values 0..16 are divided by 16 into [0, 1]. The target is
the digit on the last `label_steps` steps (None: every step), IGNORE_INDEX elsewhere. The test split
is int(1797 * test_fraction) images drawn by a permutation seeded with `seed`.
scikit-learn is optional: `pip install scikit-learn` (or `pip install hyprgen[data]`).
"""
from __future__ import annotations

import torch

from ..errors import HyprgenError
from .offline import OfflineTask, Split, expand_labels, hold_out, offline_task, sequence_accuracy

__all__ = ["load_digits", "task", "MODES", "N_CLASSES"]

MODES = {"rows": (8, 8), "pixels": (64, 1)}                                             # mode → (T, n_in)
N_CLASSES = 10


def load_digits(mode: str = "rows", *, label_steps: int | None = 1, test_fraction: float = 0.2,
                seed: int = 0) -> tuple[Split, Split]:
    """(train, test) Splits: x float32 [N, T, n_in] in [0, 1], target long [N, T]."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise HyprgenError("the digits task needs scikit-learn: pip install scikit-learn "
                           "(or pip install hyprgen[data])") from None
    if mode not in MODES:
        raise ValueError(f"unknown digits mode {mode!r}; choose one of {sorted(MODES)}")
    T, n_in = MODES[mode]
    data = sklearn_digits()
    images = torch.from_numpy(data.images).to(torch.float32) / 16.0                       # [N, 8, 8]
    x = images.reshape(len(images), T, n_in)
    split = Split(x, expand_labels(torch.from_numpy(data.target), T, label_steps), N_CLASSES)
    return hold_out(split, test_fraction, seed)


def task(mode: str = "rows", label_steps: int | None = 1, test_fraction: float = 0.2, test_seed: int = 0,
         val_fraction: float = 0.0, split_seed: int = 0) -> OfflineTask:
    """Options: mode ("rows" or "pixels"), label_steps, test_fraction and test_seed (the train/test
    split), val_fraction, split_seed."""
    train, test = load_digits(mode, label_steps=label_steps, test_fraction=test_fraction, seed=test_seed)
    return offline_task(train, test, sequence_accuracy, val_fraction, split_seed)
