"""What `hyprgen train` records: metrics.jsonl events and the memory figures in them.

An event is a flat dict of JSON values, one line of metrics.jsonl:
- {"event": "step", "epoch", "batch", "step", "loss", "accuracy", "lr", "elapsed", "cpu_s",
   "peak_memory_mb", "rss_mb", and for HYPR "learner_bytes"} after every optimizer step (a step =
   one batch; in streaming mode one piece of the stream, with an optimizer step per chunk inside it);
- {"event": "epoch", "epoch", "step", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
   "test_spike_rate", "test_spike_rates", ["val_loss", "val_accuracy", "val_spike_rate",
   "val_spike_rates"], "lr", "elapsed", "cpu_s", "peak_memory_mb", "rss_mb", and for HYPR
   "learner_bytes": the largest of its steps', a full batch's} after each epoch (a spike rate: spikes
   per neuron and step, evaluation.py; "_spike_rate" the first hidden layer's, "_spike_rates" a list
   of every hidden layer's, bottom first);
- with --initial-eval, first {"event": "initial", "epoch": 0, "step": 0, the test (and val) fields,
   "lr", "elapsed": 0, "cpu_s": 0, "peak_memory_mb", "rss_mb"}: the network before any step.
"elapsed" is training seconds (resumed runs continue the count), "cpu_s" the process's CPU seconds
in that time (all threads: above "elapsed" with several busy threads, below it while other
processes hold the cores); "peak_memory_mb" is the process's peak RSS (CPU) or torch's peak
allocation (CUDA); "rss_mb" the current RSS (None where /proc is missing); "learner_bytes" the
bytes of the tensors HYPR carries from chunk to chunk.

metrics.jsonl is strict JSON (what json.dumps writes with allow_nan=False): a NaN or ±inf value, a
diverged run's loss, is written as the string "NaN", "Infinity" or "-Infinity", and `read` turns
these back into floats (no string field holds them). Strings, not null with a companion field:
null already means "not measured" (rss_mb), NaN and inf tell different failures apart (0/0 against
an overflow), and these are the spellings that Python's float() and JavaScript's Number() parse.
Events in memory (and in checkpoints) keep the floats.

With tensorboard=True the events also go to TensorBoard event files in the run directory (the
folder of metrics.jsonl; `tensorboard --logdir` over a folder of runs shows each by its name): every
number of an event but its counters as the scalar "<event>/<field>" at global step "step", e.g.
"step/loss", "step/lr", "step/peak_memory_mb", "epoch/test_accuracy"; the initial evaluation is
epoch 0's point of the "epoch/" curves. Like metrics.jsonl they are rewritten on resume to hold
exactly the checkpoint's events (those points carry the time of the resume as their wall time).
"""
from __future__ import annotations

import json
import math
import os
import resource
import sys
from pathlib import Path

import torch


TIMING = ("elapsed", "cpu_s", "peak_memory_mb", "rss_mb")  # fields that differ between identical runs
COUNTERS = ("epoch", "batch", "step")                        # an event's place, not a measurement
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # metrics.jsonl's spellings
TENSORBOARD_MISSING = "tensorboard is not installed: no TensorBoard logs (pip install tensorboard)"


class MetricsLog:
    """Events in memory and, with a path, appended to a JSON-lines file as they come (and with
    tensorboard, to TensorBoard event files beside it)."""

    def __init__(self, path: Path | None, events: list[dict] | None = None, tensorboard: bool = False):
        """events: a checkpoint's events (resume); the file is rewritten to hold exactly those."""
        self.path, self.events = path, list(events or [])
        self.board = None
        if path is not None:
            path.write_text("".join(dumps(e) + "\n" for e in self.events))
            if tensorboard:
                self.board = TensorBoard(path.parent, self.events)

    def add(self, event: dict) -> None:
        self.events.append(event)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(dumps(event) + "\n")
        if self.board is not None:
            self.board.add(event)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    @staticmethod
    def read(path: Path) -> list[dict]:
        """The events of a metrics.jsonl, non-finite values as floats again."""
        return [decode(json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]


def dumps(event: dict) -> str:
    """One line of metrics.jsonl: strict JSON, non-finite floats as the strings of NONFINITE."""
    return json.dumps(encode(event), allow_nan=False)


def encode(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value):
    if isinstance(value, str):
        return NONFINITE.get(value, value)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def tensorboard_available() -> bool:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (raises without tensorboard)
    except ImportError:
        return False
    return True


class TensorBoard:
    """The events' scalars in TensorBoard event files in `run_dir` (module docstring): the files a
    previous invocation left there are replaced by `events`, then each new event is added and
    flushed (a killed run keeps its points up to the last step, as metrics.jsonl does)."""

    def __init__(self, run_dir: Path, events: list[dict]):
        from torch.utils.tensorboard import SummaryWriter

        for old in run_dir.glob("events.out.tfevents.*"):
            old.unlink()
        self.writer = SummaryWriter(log_dir=str(run_dir))
        for event in events:
            self._scalars(event)
        self.writer.flush()

    def add(self, event: dict) -> None:
        self._scalars(event)
        self.writer.flush()

    def _scalars(self, event: dict) -> None:
        kind = "epoch" if event["event"] == "initial" else event["event"]
        for name, value in event.items():
            if name not in COUNTERS and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{kind}/{name}", value, global_step=event["step"])

    def close(self) -> None:
        self.writer.close()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def rss_mb() -> float | None:
    """The resident set size now (Linux /proc), for memory over time; None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def tensor_bytes(value) -> int:
    """Bytes of the tensors in nested lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    return 0


def carried_bytes(learner, batch: int) -> int:
    """Bytes HYPR carries from one chunk to the next (docs/hypr.md §6): the traces ε [B, n, d, m],
    ε_b [B, n, d], Θ [B, n, d, p] and the layer states r [d × (B, n)], o [B, n] of every layer.

    Streaming mode: the tensors of the stream itself (`stream_state()`); sequence mode holds them only
    inside `step`: HYPR.carried_bytes, the same tensors allocated for this batch size."""
    state = learner.stream_state()
    return tensor_bytes(state) if state else learner.carried_bytes(batch)
