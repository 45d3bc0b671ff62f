"""Compile merge_kernel ahead of time for sm_80 and sm_90 (no GPU needed) and print what ptxas reports.

One JSON object per line, one per (arch, d, λ form, trace dtype), with the tiles merge_triton picks
for a large layer (n = m = 1024):

    python benchmarks/aot_merge.py [--arch 80 90] [--d 0 1 2 3 4]

  registers, spill_stores, spill_loads   ptxas -v (bytes), shared_bytes   Triton's metadata
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from hyprgen.kernels.aot import compile_merge, resources
from hyprgen.kernels.merge import merge_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[80, 90])
    parser.add_argument("--d", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    for arch in args.arch:
        for dtype in (torch.float32, torch.bfloat16):
            for d in args.d:
                for lam in (8, 64):   # rank-1 form (λ < 16) and tl.dot form
                    t0 = time.perf_counter()
                    kernel = compile_merge(d, lam, dtype, arch)
                    config = merge_config(1024, 1024, d, lam, dtype)
                    print(json.dumps(dict(arch=f"sm_{arch}", d=d, lam=lam, traces=str(dtype).split(".")[-1],
                                          form="tl.dot" if config["USE_DOT"] else "rank-1",
                                          tile=[config["BLOCK_N"], config["D_PAD"], config["BLOCK_M"]],
                                          num_warps=config["num_warps"], **resources(kernel),
                                          compile_s=round(time.perf_counter() - t0, 2))), flush=True)


if __name__ == "__main__":
    main()
