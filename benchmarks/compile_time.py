"""How long torch.compile takes on an RSNN's inference forward, and what it buys (docs/module.md).

    python -m benchmarks.compile_time [--limit 300] [--sizes tiny demo] [--hows unrolled scan grad] [--out FILE]

Each measurement runs in a fresh Python with inductor's caches off (a cold compile, as a new user's
first run) and one intra-op thread, and is killed after --limit seconds. Per size and sequence length
T:

  eager_ms        the forward without compiling (median of 5)
  compile_s       torch.compile(net) (or net.compile()) and the first call: compiling, then one forward
  compiled_ms     the compiled forward afterwards (median of 5)
  max_abs_diff    |compiled − eager| over the readout outputs

for `unrolled` (torch.compile(net) under torch.no_grad: dynamo unrolls the loop over T, so the
graph, and the compile time, grow with T), `scan` (net.compile() under torch.no_grad: each layer's
steps one scan, traced once) and `grad` (torch.compile(net) then net(x) with gradients on, as
without torch.no_grad: unrolled, and AOT autograd traces the backward graph too). Sizes: tiny
(4 inputs, 8 BRF neurons, 2 outputs, batch 4) and demo (what `hyprgen train` runs by default: the
cue task, 12 inputs, 32 BRF neurons, LI readout, weight scale 10, batch 32; T = 120 is delay 100).
Printed as a table and as JSON (--out writes it).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = {   # n_in, hidden, n_out, batch, weight scale; the sequence lengths measured
    "tiny": dict(n_in=4, hidden=8, n_out=2, batch=4, weight_scale=10.0, lengths=(20, 120)),
    "demo": dict(n_in=12, hidden=32, n_out=2, batch=32, weight_scale=10.0, lengths=(120, 1020)),
}
HOWS = ("unrolled", "scan", "grad")


def measure_one(size: str, T: int, how: str) -> dict:
    """One measurement (in the child process)."""
    import torch
    import torch._inductor.config

    import hyprgen

    torch._inductor.config.force_disable_caches = True
    torch.set_num_threads(1)
    c = SIZES[size]
    net = hyprgen.RSNN(c["n_in"], [c["hidden"]], c["n_out"], neuron="brf", seed=0, weight_scale=c["weight_scale"])
    x = torch.bernoulli(torch.full((c["batch"], T, c["n_in"]), 0.2), generator=torch.Generator().manual_seed(0))

    def median_ms(fn) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    with contextlib.nullcontext() if how == "grad" else torch.no_grad():
        eager = net(x)[0]
        eager_ms = median_ms(lambda: net(x))
        if how in ("unrolled", "grad"):
            compiled = torch.compile(net)
        else:
            net.compile()
            compiled = net
        start = time.perf_counter()
        y = compiled(x)[0]
        compile_s = time.perf_counter() - start
        return {"size": size, "T": T, "how": how, "eager_ms": eager_ms, "compile_s": compile_s,
                "compiled_ms": median_ms(lambda: compiled(x)), "max_abs_diff": (y - eager).abs().max().item()}


def run_child(size: str, T: int, how: str, limit: float) -> dict:
    command = [sys.executable, "-m", "benchmarks.compile_time", "--one", json.dumps([size, T, how])]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"size": size, "T": T, "how": how, "killed_after_s": limit}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"size": size, "T": T, "how": how, "error": done.stderr.strip().splitlines()[-1:],
                "wall_s": time.perf_counter() - start}
    return json.loads(lines[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=300.0, help="seconds before a measurement is killed")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--hows", nargs="+", default=list(HOWS), choices=HOWS)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)   # a child: [size, T, how]
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(*json.loads(args.one))))
        return
    import torch

    rows = []
    print(f"{'size':5} {'T':>5} {'how':9} {'eager ms':>9} {'compile s':>10} {'compiled ms':>12} {'max |diff|':>10}")
    for size in args.sizes:
        for T in SIZES[size]["lengths"]:
            for how in args.hows:
                row = run_child(size, T, how, args.limit)
                rows.append(row)
                if "killed_after_s" in row:
                    print(f"{size:5} {T:5} {how:9} {'':>9} {'> ' + format(args.limit, '.0f'):>10}   (killed)", flush=True)
                elif "error" in row:
                    print(f"{size:5} {T:5} {how:9} error: {row['error']}", flush=True)
                else:
                    print(f"{size:5} {T:5} {how:9} {row['eager_ms']:9.1f} {row['compile_s']:10.1f} "
                          f"{row['compiled_ms']:12.2f} {row['max_abs_diff']:10.1e}", flush=True)
    result = {"limit_s": args.limit, "torch": torch.__version__, "load": os.getloadavg()[0],
              "cpus": os.cpu_count(), "rows": rows}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
