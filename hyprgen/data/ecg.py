"""ECG-QTDB: label every time step of an ECG recording with its waveform segment (6 classes).

The files are QTDB_train.mat and QTDB_test.mat (MATLAB 5), preprocessed from the PhysioNet QT
Database (Laguna et al. 1997) by Yin, Corradi and Bohté (2021) and shipped with the BRF repository
(Higuchi, Kairat, Bohté, Otte 2024; https://github.com/AdaptiveAILab/brf-neurons, experiments/ecg/data,
MIT licence). They are not copied into hyprgen: pass their directory or set HYPRGEN_ECG_DIR.

Contents of each file: x int16 [N, 1301, 4] (input spikes in {0, 1}; the last step is a
-1 end marker), y uint8 [N, 1301, 6] (one-hot segment class per step), t uint16 [N, 1301] (step
index) and max_i (always 1301). N = 618 (train) and 141 (test).

Preprocessing, exactly as the BRF repository's experiments/ecg/tools.py (`convert_data_format`) and
`apply_seq_loss` do it: x as float, last step dropped → [N, 1300, 4]; y last step dropped and the
class per step is argmax over its 6 entries → [N, 1300]. About 8% of the steps (10% in the test
file) have an all-zero y (no annotation); argmax makes them class 0, as in BRF, so that per-step
accuracies compare with the published ones.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import HyprgenError
from .offline import OfflineTask, Split, iterate, offline_task, step_accuracy

__all__ = ["load_ecg", "task", "iterate", "N_IN", "N_CLASSES", "SEQ_LEN", "ENV_VAR", "FILES"]

N_IN, N_CLASSES, SEQ_LEN = 4, 6, 1300
ENV_VAR = "HYPRGEN_ECG_DIR"
FILES = ("QTDB_train.mat", "QTDB_test.mat")
HOW_TO_GET = ("get QTDB_train.mat and QTDB_test.mat from experiments/ecg/data of "
              "https://github.com/AdaptiveAILab/brf-neurons")


def load_ecg(directory: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """(train, test) Splits: x float32 [N, 1300, 4], target long [N, 1300] in 0..5.
    `directory` holds QTDB_train.mat and QTDB_test.mat; default: $HYPRGEN_ECG_DIR."""
    if directory is None:
        directory = os.environ.get(ENV_VAR)
        if not directory:
            raise HyprgenError(f"no ECG-QTDB directory: pass one or set {ENV_VAR} to the folder holding "
                               f"{' and '.join(FILES)} ({HOW_TO_GET})")
    directory = Path(directory)
    if not directory.is_dir():
        raise HyprgenError(f"ECG-QTDB directory {directory} does not exist; it should hold "
                           f"{' and '.join(FILES)} ({HOW_TO_GET})")
    train, test = (_load(directory / name) for name in FILES)
    return train, test


def task(directory=None, val_fraction: float = 0.0, split_seed: int = 0) -> OfflineTask:
    """Options: directory (default $HYPRGEN_ECG_DIR), val_fraction (BRF holds out 0.1), split_seed."""
    return offline_task(*load_ecg(directory), step_accuracy, val_fraction, split_seed)


def _load(path: Path) -> Split:
    import scipy.io
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise HyprgenError(f"{path}: file missing; the ECG-QTDB directory must hold {' and '.join(FILES)} "
                           f"({HOW_TO_GET})")
    try:
        mat = scipy.io.loadmat(path)
    except (OSError, ValueError, MatReadError) as e:
        raise HyprgenError(f"{path}: not a readable MATLAB file ({e})") from None
    for key, width in (("x", N_IN), ("y", N_CLASSES)):
        if key not in mat or mat[key].ndim != 3 or mat[key].shape[1:] != (SEQ_LEN + 1, width):
            found = tuple(mat[key].shape) if key in mat else "nothing"
            raise HyprgenError(f"{path}: expected a variable '{key}' of shape [N, {SEQ_LEN + 1}, {width}], "
                               f"found {found}")
    if mat["x"].shape[0] != mat["y"].shape[0]:
        raise HyprgenError(f"{path}: 'x' has {mat['x'].shape[0]} sequences but 'y' has {mat['y'].shape[0]}")
    x = torch.from_numpy(mat["x"]).to(torch.float32)[:, :-1]                           # [N, 1300, 4]
    target = torch.from_numpy(mat["y"]).to(torch.float32)[:, :-1].argmax(-1)           # [N, 1300]
    return Split(x.contiguous(), target, N_CLASSES)
