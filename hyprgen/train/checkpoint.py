"""Training checkpoints: one file per run directory, written atomically, read with weights_only.

A checkpoint is a dict of tensors and plain Python values (so `torch.load(weights_only=True)` reads
it; nothing in it is unpickled as code):

    format, format_version, hyprgen_version
    config      the run's resolved options (options.py)
    model       RSNN.state_dict()
    optimizer   optimizer.state_dict()
    scheduler   LR scheduler state_dict, or None (constant learning rate)
    rng         {"torch": torch.get_rng_state(), "cuda": [per device] or None}: the global
                 generators (nothing in training draws from them today; saved so that nothing can)
    progress    {"epoch": epochs done, "batch": batches done in the current epoch, "step": optimizer
                 steps done, "epoch_data": the training-data generator's state when the current
                 epoch began (resume replays the epoch's batches up to "batch": any task, any
                 batching, no task support needed), "elapsed": seconds trained, "cpu": CPU
                 seconds trained, "batches": [[loss, accuracy, batch size], ...] of the current
                 epoch so far}
    stream      HYPR.stream_state() in streaming mode (states and traces), else {}
    metrics     every metrics.jsonl event so far (the file is rewritten from it on resume)

Errors name the file and the problem; nothing here ever falls back to a fresh start.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch

from .. import __version__
from ..errors import HyprgenError
from .options import differences

FILENAME = "checkpoint.pt"
FORMAT = "hyprgen-train-checkpoint"
FORMAT_VERSION = 1
KEYS = ("config", "model", "optimizer", "scheduler", "rng", "progress", "stream", "metrics")


class CheckpointError(HyprgenError):
    """A checkpoint is missing, unreadable, of another format version, or of another run."""


def save(path: Path, contents: dict) -> None:
    """Write `contents` (the KEYS) to path atomically: a temporary file beside it, fsync, os.replace.
    A crash or a kill while saving leaves the previous checkpoint intact."""
    missing = [k for k in KEYS if k not in contents]
    if missing:
        raise ValueError(f"checkpoint contents lack {', '.join(missing)}")
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "hyprgen_version": __version__, **contents}
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path) -> dict:
    """The checkpoint at path (tensors on the CPU), checked for its format and version."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from (is --out the run's directory?)")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its directory is at the end
        raise CheckpointError(f"{path}: truncated or corrupted checkpoint ({path.stat().st_size} bytes, not a "
                              "complete torch.save archive)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # damaged members, objects weights_only refuses to unpickle, ...
        raise CheckpointError(f"{path}: unreadable checkpoint (corrupted?): {_reason(e)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a hyprgen training checkpoint")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {data.get('format_version')} (written by hyprgen "
                              f"{data.get('hyprgen_version')}); this hyprgen {__version__} reads version "
                              f"{FORMAT_VERSION}")
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)} (corrupted?)")
    return data


def _reason(e: Exception) -> str:
    """The informative part of torch.load's message (its weights_only errors open with advice)."""
    text = str(e).strip()
    marker = "WeightsUnpickler error:"
    if marker in text:
        return "unpickling failed: " + text.split(marker, 1)[1].strip().split("\n\n")[0]
    return text.split("\n")[0] or type(e).__name__


def check_config(path: Path, saved: dict, current: dict) -> None:
    """Raise unless the resolved config equals the checkpoint's on every compared option."""
    diff = differences(saved, current)
    if diff:
        raise CheckpointError(f"{path}: cannot resume, the options differ from the checkpoint's "
                              f"({'; '.join(diff)}); drop them to continue the run, or start a new one in "
                              "another --out")


def rng_states() -> dict:
    """The global generators (the data generator's state is in progress["epoch_data"])."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None}


def restore_rng(path: Path, rng: dict) -> None:
    try:
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None:
            torch.cuda.set_rng_state_all(rng["cuda"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path}: random number generator states unusable ({e})") from None


def to_device(value, device: torch.device):
    """The tensors inside nested lists, tuples and dicts (a stream state) moved to device."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value
