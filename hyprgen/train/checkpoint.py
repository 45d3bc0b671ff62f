"""Training checkpoints: one file per run directory, written atomically, read with weights_only and
checked end to end.

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
    payload_sha256  `payload_digest` of everything above (format version 2)

Loading checks, in order: the zip archive's directory, every entry's CRC-32 (torch.load checks none:
bit-rot in a tensor's bytes loads as NaNs; the CRC names the damaged entry), the format and its
version, the keys, and the sha256 of what was loaded against payload_sha256 (catches what the CRCs
cannot: an archive rewritten whole, e.g. by torch.save of an edited dict). Version 1 (no digest) is
read with a CheckpointWarning, its CRCs still checked; the next save writes version 2. Errors name the
file and the problem; nothing here ever falls back to a fresh start.
"""
from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from .. import __version__
from ..errors import HyprgenError
from .options import differences

FILENAME = "checkpoint.pt"
FORMAT = "hyprgen-train-checkpoint"
FORMAT_VERSION = 2   # 2: payload_sha256
READ_VERSIONS = (1, 2)
DIGEST = "payload_sha256"
KEYS = ("config", "model", "optimizer", "scheduler", "rng", "progress", "stream", "metrics")
FIX = "resume from a copy of the run directory, or start a new run in another --out"


class CheckpointError(HyprgenError):
    """A checkpoint is missing, unreadable, corrupted, of another format version, or of another run."""


class CheckpointWarning(UserWarning):
    """A checkpoint was read with fewer checks than this hyprgen writes (format version 1: no digest)."""


def save(path: Path, contents: dict) -> None:
    """Write `contents` (the KEYS) to path atomically: a temporary file beside it, fsync, os.replace.
    A crash or a kill while saving leaves the previous checkpoint intact."""
    missing = [k for k in KEYS if k not in contents]
    if missing:
        raise ValueError(f"checkpoint contents lack {', '.join(missing)}")
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "hyprgen_version": __version__, **contents}
    payload[DIGEST] = payload_digest(payload)
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
    """The checkpoint at path (tensors on the CPU), checked as the module docstring lists."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from (is --out the run's directory?)")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its directory is at the end
        raise CheckpointError(f"{path}: truncated or corrupted checkpoint ({path.stat().st_size} bytes, not a "
                              "complete torch.save archive)")
    damaged = _entry_failing_its_crc(path)
    if damaged is not None:
        raise CheckpointError(f"{path}: corrupted checkpoint: entry {damaged} ({_entry_role(damaged)}) fails its "
                              f"CRC-32 check (damaged since it was written); {FIX}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # objects weights_only refuses to unpickle, ...
        raise CheckpointError(f"{path}: unreadable checkpoint (corrupted?): {_reason(e)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a hyprgen training checkpoint")
    if data.get("format_version") not in READ_VERSIONS:
        raise CheckpointError(f"{path}: checkpoint format version {data.get('format_version')} (written by hyprgen "
                              f"{data.get('hyprgen_version')}); this hyprgen {__version__} reads versions "
                              f"{', '.join(map(str, READ_VERSIONS))}")
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)} (corrupted?)")
    if data["format_version"] == 1:
        warnings.warn(f"{path}: format version 1 has no payload digest: only its archive's CRCs were checked (the "
                      f"next checkpoint of the run is written as version {FORMAT_VERSION})", CheckpointWarning,
                      stacklevel=2)
    elif data.get(DIGEST) != payload_digest(data):
        raise CheckpointError(f"{path}: corrupted checkpoint: what it holds does not match the sha256 of the payload "
                              f"it was saved with (changed since it was written); {FIX}")
    return data


# ----------------------------------------------------------------------------------------------
# Integrity: the archive's CRCs, the payload's digest


def _entry_failing_its_crc(path: Path) -> str | None:
    """The first archive entry whose bytes fail their CRC-32 (reads the whole file once more)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except Exception as e:  # a damaged local header, an entry cut short, ...
        raise CheckpointError(f"{path}: unreadable checkpoint (corrupted?): {_reason(e)}") from None


def _entry_role(name: str) -> str:
    """What an entry of a torch.save archive holds: <archive>/data.pkl, <archive>/data/<storage>, ..."""
    parts = name.split("/")
    if parts[-1] == "data.pkl":
        return "the pickled structure"
    if len(parts) >= 2 and parts[-2] == "data":
        return "a tensor's bytes"
    return "archive metadata"


def payload_digest(payload: dict) -> str:
    """The sha256 of a checkpoint's contents (every key but DIGEST): the structure, every plain value and
    every tensor's dtype, shape and bytes, in order, independent of device, strides and of how the
    archive lays them out. One pass over the tensors (about a GB/s): ms for the networks trained here."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != DIGEST})
    return h.hexdigest()


def _feed(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"tensor {t.dtype} {tuple(value.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().data)
    elif isinstance(value, Mapping):
        h.update(f"dict {len(value)}:".encode())
        for key, item in value.items():
            _feed(h, key)
            _feed(h, item)
    elif isinstance(value, (list, tuple)):
        h.update(f"list {len(value)}:".encode())   # pickling keeps which it is; the digest need not
        for item in value:
            _feed(h, item)
    elif value is None or isinstance(value, (bool, int, float, str, torch.dtype, torch.device)):
        text = repr(value)
        h.update(f"{type(value).__name__} {len(text)}:{text}".encode())
    else:
        raise TypeError(f"a checkpoint holds tensors and plain values, not a {type(value).__name__}")


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
