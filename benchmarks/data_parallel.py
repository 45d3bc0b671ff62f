"""The data-parallel learners' communication share (runtime/distributed.py): 2 gloo processes on this
machine, each on half of the batch; per HYPR step (sequence mode) the wall time and the time inside
the collectives (the normalizer's count and the gradient bucket, wrapped with a timer).

    python -m benchmarks.data_parallel [--hidden 256] [--batch 32] [--steps 1024] [--chunk 128] [--reps 3]

Prints the medians of rank 0 and writes them as JSON (--out), with the machine's load. One intra-op
thread per process.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import hyprgen
from hyprgen.runtime import distributed

from .stopwatch import Stopwatch

STOPWATCH = Stopwatch()   # seconds inside the wrapped calls


def worker(rank: int, args, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    distributed.DataParallel.total = STOPWATCH.wrap(distributed.DataParallel.total)
    distributed.DataParallel.sum_gradients = STOPWATCH.wrap(distributed.DataParallel.sum_gradients)
    gen = torch.Generator().manual_seed(0)
    net = hyprgen.RSNN(16, args.hidden, 4, seed=0)
    x = torch.bernoulli(torch.full((args.batch, args.steps, 16), 0.1), generator=gen)
    y = torch.randint(0, 4, (args.batch, args.steps), generator=gen)
    half = slice(rank * args.batch // 2, (rank + 1) * args.batch // 2)
    learner = hyprgen.HYPR(net, chunk=args.chunk, process_group=dist.group.WORLD)
    learner.step(x[half], y[half])   # warm-up
    walls, inside = [], []
    for _ in range(args.reps):
        net.zero_grad(set_to_none=True)
        STOPWATCH.seconds = 0.0
        start = time.perf_counter()
        learner.step(x[half], y[half])
        walls.append(time.perf_counter() - start)
        inside.append(STOPWATCH.seconds)
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"step_s": statistics.median(walls), "collectives_s": statistics.median(inside),
                       "share": statistics.median(i / w for i, w in zip(inside, walls)),
                       "gradient_floats": sum(p.numel() for p in net.parameters())}, f)
    dist.destroy_process_group()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result_file = os.path.join(tmp, "result.json")
        mp.spawn(worker, args=(args, os.path.join(tmp, "init"), result_file), nprocs=2, join=True)
        with open(result_file) as f:
            result = json.load(f)
    print(f"2 gloo processes, BRF n={args.hidden}, B={args.batch} ({args.batch // 2} per process), T={args.steps}, "
          f"λ={args.chunk}: step {result['step_s']:.2f} s, inside the collectives {result['collectives_s'] * 1e3:.1f} ms "
          f"({100 * result['share']:.2f} % of the step; {result['gradient_floats']} gradient floats); "
          f"load before {load[0]:.2f} on {os.cpu_count()} cores")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"config": vars(args), "load_before": load, **result}, f, indent=1)


if __name__ == "__main__":
    main()
