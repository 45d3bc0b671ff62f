"""Measure one configuration in this process (the runner starts one process per configuration).

    python -m benchmarks.perf.measure CONFIG_JSON RESULT_JSON [--quiet-wait S]

1. Build the network, learner and data (workloads.py; fixed seeds).
2. Warm-up: one untimed sequence. BPTT and snnTorch run the full T (their allocator pattern depends
   on T; this run also counts the bytes autograd saves); HYPR and EProp run min(T, warmup_steps)
   steps, since their work repeats per chunk (per step) and does not depend on T.
3. `reps` timed sequences (time.perf_counter; on CUDA, CUDA events). Before each: gradients cleared,
   gc, optionally a wait for a quiet machine, and the RSS high-water mark reset; after each: the
   peak RSS (VmHWM, exact) and how many cores other processes kept busy (sysmon.py).
   "Increase" is the peak above the baseline: the RSS after imports and building the model, before
   any call (so heap that the warm-up grew and glibc kept counts: the method did need it).
   On CUDA the peak is torch.cuda.max_memory_allocated (live tensor bytes).
4. HYPR also times its stages (S-stage, P-stage, merge per layer) for the roofline comparison
   (roofline.py): on the CPU with a synchronized wall clock, on CUDA with a pair of CUDA events per
   call, read after the sequence (no synchronization inside it, so the total time is not disturbed).
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from .configs import Config
from .sysmon import cpu_counters, hwm_bytes, other_cores, reset_hwm, rss_bytes, wait_quiet
from .workloads import Workload, piece_length


class StageTimer:
    """Seconds spent in each layer's s_stage / p_stage / merge (HYPR), summed over calls: wall time
    between synchronizations (sync given), or GPU time between two CUDA events per call (cuda=True;
    `settle` adds them up once the stream is synchronized)."""

    STAGES = ("s_stage", "p_stage", "merge")

    def __init__(self, learner, sync, cuda: bool = False):
        self.seconds, self.calls, self._sync = defaultdict(float), defaultdict(int), sync
        self._events = [] if cuda else None   # (key, start, end) not yet added to seconds
        for i, stages in enumerate(learner.stages):
            for name in self.STAGES:
                setattr(stages, name, self._timed(f"layer{i}.{name}", getattr(stages, name)))

    def _timed(self, key, fn):
        def wrapper(*args, **kwargs):
            self.calls[key] += 1
            if self._events is not None:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = fn(*args, **kwargs)
                end.record()
                self._events.append((key, start, end))
                return out
            self._sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            self._sync()
            self.seconds[key] += time.perf_counter() - t0
            return out
        return wrapper

    def settle(self) -> None:
        """Add the recorded CUDA event pairs to seconds (call after a synchronize)."""
        for key, start, end in self._events or ():
            self.seconds[key] += start.elapsed_time(end) / 1e3
        if self._events:
            self._events.clear()

    def reset(self) -> None:
        self.settle()
        self.seconds.clear()
        self.calls.clear()


class SequenceTimer:
    """Seconds of one sequence: time.perf_counter, or two CUDA events on the current stream."""

    def __init__(self, cuda: bool):
        self.cuda = cuda

    def __enter__(self):
        if self.cuda:
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self._start.record()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1e3
        else:
            self.seconds = time.perf_counter() - self._t0
        return False


def summary(values: list[float]) -> dict:
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "q1": q[0], "q3": q[2]}


def measure(config: Config, quiet_wait: float = 0.0) -> dict:
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    cuda = config.device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize()) if cuda else (lambda: None)
    work = Workload(config)
    timer = StageTimer(work.learner, sync, cuda=cuda) if config.method == "hypr" else None
    gc.collect()
    baseline = torch.cuda.memory_allocated() if cuda else rss_bytes()  # after imports and build, before any call

    full_warmup = config.method in ("bptt", "snntorch")
    T_warm = config.T if full_warmup else min(config.T, config.warmup_steps)
    t0 = time.perf_counter()
    work.run(T_warm, count_saved=full_warmup)
    sync()
    warmup_s = time.perf_counter() - t0
    if timer:
        timer.reset()
    rate = work.hidden_spike_rate(min(config.T, 512))

    times, peaks, increases, before_rss, others, waits, losses = [], [], [], [], [], [], []
    hwm_ok = True
    for _ in range(config.reps):
        work.zero_grad()
        gc.collect()
        waits.append(wait_quiet(quiet_wait) if quiet_wait > 0 else 0.0)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            hwm_ok = reset_hwm() and hwm_ok
            before = rss_bytes()
        sync()
        c0 = cpu_counters()
        with SequenceTimer(cuda) as clock:
            loss = work.run(config.T)
        sync()
        dt = clock.seconds
        if timer:
            timer.settle()
        others.append(other_cores(c0, cpu_counters(), dt))
        peak = torch.cuda.max_memory_allocated() if cuda else hwm_bytes()
        if not math.isfinite(loss):
            raise FloatingPointError(f"{config.name}: the loss is {loss} (not finite)")
        times.append(dt)
        losses.append(loss)
        before_rss.append(before)
        peaks.append(peak)
        increases.append(None if peak is None else peak - baseline)

    med = statistics.median(times)
    result = {
        "name": config.name, "label": config.label, "config": config.to_dict(),
        "times_s": times, "time_s": summary(times),
        "time_per_step_s": med / config.T, "sample_steps_per_s": config.B * config.T / med,
        "timer": "CUDA events" if cuda else "time.perf_counter",
        "memory_kind": ("cuda max_memory_allocated" if cuda else
                        "process RSS high-water mark (VmHWM reset before each repetition)"),
        "hwm_reset": hwm_ok, "baseline_bytes": baseline, "peak_bytes": peaks, "rss_before_bytes": before_rss, "peak_increase_bytes": increases,
        "peak_bytes_max": max((p for p in peaks if p is not None), default=None),
        "peak_increase_bytes_median": (statistics.median([i for i in increases if i is not None])
                                       if all(i is not None for i in increases) else None),
        "learner_bytes": work.learner_bytes(),
        "warmup_steps": T_warm, "warmup_s": warmup_s, "other_cores_busy": others, "quiet_wait_s": waits,
        "loss": losses[-1], "hidden_spike_rate": rate, "torch_threads": torch.get_num_threads(),
    }
    if config.method == "hypr":
        result["piece_steps"] = piece_length(config)
    if timer:
        n = config.reps
        result["stage_seconds_per_sequence"] = {k: v / n for k, v in timer.seconds.items()}
        result["stage_calls_per_sequence"] = {k: v / n for k, v in timer.calls.items()}
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="measure one benchmark configuration (used by benchmarks.perf)")
    ap.add_argument("config", help="JSON file with the Config fields")
    ap.add_argument("result", help="where to write the result JSON")
    ap.add_argument("--quiet-wait", type=float, default=0.0)
    a = ap.parse_args(argv)
    config = Config.from_dict(json.loads(Path(a.config).read_text()))
    result = measure(config, a.quiet_wait)
    Path(a.result).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
