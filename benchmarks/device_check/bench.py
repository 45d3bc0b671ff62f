"""The benchmark worker: measures configurations in this process, one JSON line per event.

    python -m benchmarks.device_check.bench PLAN_JSON LINES_JSONL

PLAN_JSON: {"configs": [Config dicts, in order], "deadline": time.time() by which to stop, "priors":
{kind: s}, "done": {name: result} measured by an earlier worker}. Each configuration writes
{"name", "started": true} before it runs, then one of {"name", "result"} (benchmarks.perf.measure's
dict), {"name", "skipped": why}, {"name", "out_of_memory": what} or {"name", "error": what}; each line is flushed, so whatever stops
this process (the budget's limit, a crash) the lines before it stand.

Before a configuration runs, benchmarks.perf.run.estimate extrapolates its seconds and peak memory
from the same group at a shorter T; it is skipped if it would not fit in 85 % of the device's memory,
run with one repetition if only that fits in the time left, and skipped if not even that does. One
process for all configurations: a process each (as benchmarks.perf.run) would spend seconds of the
GPU lend per start. An out-of-memory error frees the cache and goes on; after any other error the
worker goes on only if the device still answers (run.py starts a new worker for the rest).
"""
from __future__ import annotations

import dataclasses
import gc
import json
import sys
import time
import traceback
from pathlib import Path

import torch

from ..perf.configs import Config
from ..perf.measure import measure
from ..perf.run import MEMORY_HEADROOM, estimate
from ..perf.sysmon import mem_available_bytes
from .plan import kind


def device_memory_bytes(device: str) -> int | None:
    if device.startswith("cuda"):
        return torch.cuda.get_device_properties(0).total_memory
    return mem_available_bytes()


def fitted(config: Config, done: dict, seconds_left: float, memory: int | None,
           prior_s: float) -> tuple[Config | None, str | None]:
    """(the configuration to run, possibly with fewer repetitions, or None; why it changed or is skipped)."""
    est = estimate(config, done)
    if est is None:
        if prior_s > seconds_left:
            return None, f"time budget: about {prior_s:.0f} s expected, {seconds_left:.0f} s left"
        return config, None
    if memory is not None and est["peak_bytes"] > MEMORY_HEADROOM * memory:
        return None, (f"would not fit: estimated peak {est['peak_bytes'] / 2**30:.1f} GiB (from T={est['from_T']}) "
                      f"> {MEMORY_HEADROOM:.0%} of {memory / 2**30:.1f} GiB")
    if est["seconds"] <= seconds_left:
        return config, None
    one = dataclasses.replace(config, reps=1)
    est_one = estimate(one, done)
    if one.reps < config.reps and est_one["seconds"] <= seconds_left:
        return one, f"1 repetition instead of {config.reps} (time budget: {est['seconds']:.0f} s > {seconds_left:.0f} s left)"
    return None, (f"time budget: estimated {est_one['seconds']:.0f} s (from T={est['from_T']}, "
                  f"{est['time_per_step_s'] * 1e3:.3f} ms/step) > {seconds_left:.0f} s left")


def device_answers(device: str) -> bool:
    try:
        return torch.ones(1, device=device).sum().item() == 1.0
    except Exception:   # noqa: BLE001  (a CUDA error poisons the context: any error means no)
        return False


def run(plan: dict, lines) -> int:
    def emit(**record):
        lines.write(json.dumps(record) + "\n")
        lines.flush()

    configs = [Config.from_dict(c) for c in plan["configs"]]
    done = dict(plan.get("done", {}))
    memory = device_memory_bytes(configs[0].device) if configs else None
    for config in configs:
        left = plan["deadline"] - time.time()
        chosen, note = fitted(config, done, left, memory, plan["priors"][kind(config)])
        if chosen is None:
            emit(name=config.name, skipped=note)
            continue
        emit(name=config.name, started=True, note=note)
        try:
            result = measure(chosen)
        except torch.cuda.OutOfMemoryError as exc:   # a finding (BPTT at long T), not a failure
            emit(name=config.name, out_of_memory=str(exc).splitlines()[0])
        except Exception as exc:   # noqa: BLE001  (reported, and the rest goes on if it can)
            emit(name=config.name, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-3000:])
            if not device_answers(config.device):
                return 3
        else:
            if note:
                result["note"] = note
            done[config.name] = result
            emit(name=config.name, result=result)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return 0


def main(argv=None) -> int:
    plan_path, lines_path = (argv or sys.argv[1:])[:2]
    plan = json.loads(Path(plan_path).read_text())
    with open(lines_path, "a") as lines:
        return run(plan, lines)


if __name__ == "__main__":
    sys.exit(main())
