"""Spiking Heidelberg Digits (SHD; Cramer, Stradmann, Schemmel, Zenke 2020): spoken digits 0–9 in
English and German (20 classes) as spikes of 700 cochlea-model channels.

Getting the files (hyprgen downloads nothing): from https://zenkelab.org/datasets/ take
shd_train.h5.gz and shd_test.h5.gz, `gunzip` them, and pass their directory (or set HYPRGEN_SHD_DIR
for the "shd" task). A tonic download does as well: `tonic.datasets.SHD(save_to=DIR)` leaves
DIR/SHD/shd_train.h5 and DIR/SHD/shd_test.h5 (beside the .zip archives it unpacked them from), and
the "shd" task reads DIR as it reads DIR/SHD (`find_files`). Each file holds `spikes/times` (one
float array per sample, seconds), `spikes/units` (one int array per sample, channel 0..699) and
`labels` (class 0..19); the `extra` group (keys, speakers) is not read.
h5py is optional: `pip install h5py` (or the `data` extra, `pip install hyprgen[data]`).

Preprocessing: a spike at time t falls in step floor(t / dt), T = duration / dt steps; later spikes
(t ≥ T·dt) are dropped (the longest recordings last about 1.17 s). Channel c goes to input c // pool, so groups of `pool`
adjacent channels are summed (700 / 5 = 140 inputs). x holds spike counts per (step, input), capped
at `max_count` (1 gives binary spikes; counts saturate at 255 because x is stored as uint8 to keep
the 8156-sample training set at 0.3 GB; `iterate` yields float32 batches).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import HyprgenError
from .offline import OfflineTask, Split, expand_labels, offline_task, sequence_accuracy

__all__ = ["load_shd", "find_files", "task", "N_CHANNELS", "N_CLASSES", "ENV_VAR", "FILES", "TONIC_FOLDER"]

N_CHANNELS, N_CLASSES = 700, 20
ENV_VAR = "HYPRGEN_SHD_DIR"
FILES = ("shd_train.h5", "shd_test.h5")
TONIC_FOLDER = "SHD"  # tonic's datasets keep their files in save_to/<class name>
HOW_TO_GET = "get shd_train.h5.gz and shd_test.h5.gz from https://zenkelab.org/datasets/ and gunzip them"


def n_steps(dt: float, duration: float) -> int:
    """T = duration / dt, rounded up when dt does not divide the duration (1e-9 relative slack, so
    that 1 / 0.004 = 250.00000000000003 gives 250)."""
    if dt <= 0 or duration <= 0:
        raise ValueError(f"dt and duration must be positive, got dt={dt}, duration={duration}")
    return math.ceil(duration / dt * (1 - 1e-9))


def load_shd(path: str | os.PathLike, *, dt: float = 0.004, duration: float = 1.0, pool: int = 5,
             max_count: int | None = None, label_steps: int | None = None) -> Split:
    """One SHD file → Split with x uint8 [N, T, ceil(700 / pool)] spike counts (T = duration / dt)
    and target [N, T]: the digit on every step (label_steps=None) or on the last `label_steps`."""
    try:
        import h5py
    except ImportError:
        raise HyprgenError("reading SHD needs h5py: pip install h5py (or pip install hyprgen[data])") from None
    if pool < 1 or (max_count is not None and max_count < 1):
        raise ValueError(f"pool and max_count must be at least 1, got pool={pool}, max_count={max_count}")
    path = Path(path)
    if not path.is_file():
        raise HyprgenError(f"{path}: SHD file missing ({HOW_TO_GET})")
    try:
        with h5py.File(path, "r") as f:
            times, units, labels = (_read(f, path, name) for name in ("spikes/times", "spikes/units", "labels"))
    except OSError as e:
        raise HyprgenError(f"{path}: not a readable HDF5 file ({e})") from None
    if not len(times) == len(units) == len(labels):
        raise HyprgenError(f"{path}: {len(times)} spike-time arrays, {len(units)} unit arrays and "
                           f"{len(labels)} labels; they must match")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise HyprgenError(f"{path}: labels must lie in 0..{N_CLASSES - 1}, found {labels.min()}..{labels.max()}")
    T, C = n_steps(dt, duration), math.ceil(N_CHANNELS / pool)
    cap = min(max_count or 255, 255)
    x = np.zeros((len(labels), T, C), dtype=np.uint8)
    for i, (t, u) in enumerate(zip(times, units)):
        t, u = np.asarray(t, dtype=np.float64), np.asarray(u, dtype=np.int64)
        if t.shape != u.shape:
            raise HyprgenError(f"{path}: sample {i} has {t.size} spike times but {u.size} units")
        if u.size and (u.min() < 0 or u.max() >= N_CHANNELS):
            raise HyprgenError(f"{path}: sample {i} has units outside 0..{N_CHANNELS - 1}")
        step = np.floor(t / dt).astype(np.int64)
        keep = (step >= 0) & (step < T)
        counts = np.bincount(step[keep] * C + u[keep] // pool, minlength=T * C)    # [T * C]
        x[i] = np.minimum(counts, cap).reshape(T, C)
    return Split(torch.from_numpy(x), expand_labels(torch.from_numpy(labels), T, label_steps), N_CLASSES)


def task(directory=None, dt: float = 0.004, duration: float = 1.0, pool: int = 5, max_count: int | None = None,
         label_steps: int | None = None, val_fraction: float = 0.0, split_seed: int = 0) -> OfflineTask:
    """Options: directory (default $HYPRGEN_SHD_DIR) with shd_train.h5 and shd_test.h5, in it or in its
    SHD folder (find_files), and load_shd's."""
    directory = directory or os.environ.get(ENV_VAR)
    if not directory:
        raise HyprgenError(f"no SHD directory: pass one or set {ENV_VAR} to the folder holding "
                           f"{' and '.join(FILES)} ({HOW_TO_GET})")
    train, test = (load_shd(path, dt=dt, duration=duration, pool=pool, max_count=max_count,
                            label_steps=label_steps) for path in find_files(directory))
    return offline_task(train, test, sequence_accuracy, val_fraction, split_seed)


def find_files(directory: str | os.PathLike) -> tuple[Path, Path]:
    """(train, test) file paths in `directory`: the two files in it, or else in its SHD folder (a
    tonic save_to folder). A folder with the archives only is told to unpack them."""
    directory = Path(directory)
    places = (directory, directory / TONIC_FOLDER)
    for place in places:
        if all((place / name).is_file() for name in FILES):
            return place / FILES[0], place / FILES[1]
    for place in places:
        packed = sorted(p.name for name in FILES for p in (place / (name + ".gz"), place / (name + ".zip")) if p.is_file())
        if packed:
            raise HyprgenError(f"{place} holds {', '.join(packed)} but not {' and '.join(FILES)}: unpack them "
                               "(gunzip for .gz, unzip for .zip)")
    partial = [place / name for place in places for name in FILES if (place / name).is_file()]
    found = f" (found only {', '.join(map(str, partial))})" if partial else ""
    raise HyprgenError(f"{directory}: neither it nor its {TONIC_FOLDER} folder (a tonic download) holds "
                       f"{' and '.join(FILES)}{found}; {HOW_TO_GET}")


def _read(f, path: Path, name: str) -> np.ndarray:
    if name not in f:
        raise HyprgenError(f"{path}: no dataset '{name}'; expected the SHD layout spikes/times, "
                           f"spikes/units, labels")
    return f[name][:]
