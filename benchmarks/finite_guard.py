"""The finiteness guard's cost (runtime/finite.py): one learner step with check_finite on and off.

    python -m benchmarks.finite_guard [--hidden 256] [--batch 32] [--steps 1024] [--chunk 128] [--reps 7]

The same network, input and learner options; the two settings alternate repetition by repetition (so
a load change hits both alike) after one warm-up each; the median of each and their ratio are
printed, and written as JSON with the machine's load (--out). One intra-op thread. On a busy machine
the on/off ratio is noisy; the time spent inside the guard's checks, measured in the same steps
(`in_guard`, the checks wrapped with a timer), is not.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

import hyprgen
from hyprgen.runtime import BPTT, HYPR, bptt, hypr

from .stopwatch import Stopwatch

STOPWATCH = Stopwatch()   # seconds inside the wrapped calls


def time_the_guard() -> None:
    """Wrap the checks that the learners call (HYPR per chunk, BPTT per sequence) with the timer."""
    hypr.HYPR._check_chunk = STOPWATCH.wrap(hypr.HYPR._check_chunk)
    bptt.check_sequence = STOPWATCH.wrap(bptt.check_sequence)


def learner(method: str, net, chunk: int, check: bool):
    return HYPR(net, chunk=chunk, check_finite=check) if method == "hypr" else BPTT(net, check_finite=check)


def measure(args) -> dict:
    torch.set_num_threads(1)
    time_the_guard()
    gen = torch.Generator().manual_seed(0)
    net = hyprgen.RSNN(16, args.hidden, 4, neuron=args.neuron, seed=0)
    x = torch.bernoulli(torch.full((args.batch, args.steps, 16), 0.1), generator=gen)
    y = torch.randint(0, 4, (args.batch, args.steps), generator=gen)
    results = {}
    for method in args.methods:
        times, inside = {True: [], False: []}, []
        learners = {check: learner(method, net, args.chunk, check) for check in (True, False)}
        for check in (True, False):
            learners[check].step(x, y)                      # warm-up
        for _ in range(args.reps):
            for check in (True, False):
                net.zero_grad(set_to_none=True)
                STOPWATCH.seconds = 0.0
                start = time.perf_counter()
                learners[check].step(x, y)
                times[check].append(time.perf_counter() - start)
                if check:
                    inside.append(STOPWATCH.seconds / times[check][-1])
        on, off = statistics.median(times[True]), statistics.median(times[False])
        results[method] = {"on_s": on, "off_s": off, "overhead": on / off - 1, "in_guard": statistics.median(inside),
                           "times_on": times[True], "times_off": times[False], "in_guard_each": inside}
        print(f"{method}: guard on {on * 1e3:.1f} ms, off {off * 1e3:.1f} ms per step of {args.steps} steps "
              f"(on/off {100 * (on / off - 1):+.2f} %); inside the checks: {100 * statistics.median(inside):.2f} % "
              "of the step")
    return results


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neuron", default="brf")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--methods", nargs="+", default=["hypr", "bptt"], choices=["hypr", "bptt"])
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} (1 min) on {os.cpu_count()} cores")
    results = {"config": vars(args), "load_before": load, "results": measure(args), "load_after": os.getloadavg()}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
