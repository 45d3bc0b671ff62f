"""Roofline note: FLOPs and bytes moved per HYPR stage (docs/results/performance.md, docs/hypr.md §6) against the
measured stage times, for this CPU (measured peaks) and an H100 or H200 (datasheet peaks; `gpu_rows`
sets them against stage times measured on that GPU, benchmarks/device_check).

Counts per chunk of λ steps and one layer (float32, 4 bytes; B batch, n neurons, m = n_in + n
presynaptic, d carried components, p neuron parameters, c_f / c_J elementwise operations per neuron and step of the
forward step / of the local Jacobians, counted from the neuron's KernelIR with SymPy's count_ops):

  S-stage  FLOPs λ·B·n·(2m + c_f)                    bytes 4·(n·m + λ·B·m + λ·B·n·(d+1))
           (the GEMM W p^τ and the step; W read once, inputs read, r^{τ-1} and I^τ kept)
  P-stage  FLOPs λ·B·n·(c_J + 2d² + 2d)              bytes 4·λ·B·n·(2d + 3)
           (Jacobians recomputed, the reverse sweep; r, I, λ^τ read, E^τ and g^τ written)
  merge    FLOPs 2·B·n·(m·(λ·d + d² + λ + d) + d² + p·d·(d+1))
           bytes 4·(2·B·n·m·d + λ·B·m + λ·B·n·(d+1))
           (Σ_τ E^τ p^τ and Σ_τ g^τ p^τ as GEMMs over τ, Φ ε and q⁰ ε, the same for ε_b and the
           p parameter traces Θ; ε read and written once)
  EProp    per step: FLOPs 2·B·n·m·d·(d+2)           bytes 4·2·B·n·m·d  (ε read and written every step)

These are the minimum traffic of each stage (every operand touched once); the torch backend moves
more (intermediate tensors), so a measured time far above the bound says where the overhead is.
"""
from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path

# datasheet rates (dense, no sparsity): fp32 on the CUDA cores, TF32 on the tensor cores (the merge's
# tl.dot), HBM bandwidth. The H200 is the H100's chip with HBM3e: the same FLOP/s, more bandwidth.
H100 = {"name": "NVIDIA H100 SXM (datasheet)", "fp32_flops": 67e12, "tf32_tensor_flops": 494.7e12,
        "bytes_per_s": 3.35e12}
H200 = {"name": "NVIDIA H200 SXM (datasheet)", "fp32_flops": 67e12, "tf32_tensor_flops": 494.7e12,
        "bytes_per_s": 4.8e12}
GPUS = {"H100": H100, "H200": H200}


# -- counts ---------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def elementwise_ops(neuron: str) -> tuple[int, int]:
    """(c_f, c_J): SymPy operation counts of the forward step and of the Jacobian entries."""
    import sympy as sp

    from hyprgen.compiler.build import generate_modules
    from hyprgen.paths import neurons_dir

    ir, _ = generate_modules(neurons_dir() / f"{neuron}.py")

    def ops(s) -> int:
        return 0 if s is None else int(sp.count_ops(sp.sympify(s)))

    def all_strings(v):
        if isinstance(v, str):
            yield v
        elif isinstance(v, (list, tuple)):
            for x in v:
                yield from all_strings(x)

    forward = [d.expr for d in ir.definitions] + list(ir.next_state) + [ir.output.expr]
    jac = ir.to_dict()["jacobians"]
    jacobian = [e for _, e in jac["cse"]] + [s for k, v in jac.items() if k != "cse" for s in all_strings(v)]
    return sum(map(ops, forward)), sum(map(ops, jacobian))


def stage_counts(B: int, n: int, m: int, d: int, p: int, lam: int, c_f: int, c_J: int) -> dict[str, dict]:
    """FLOPs and bytes of each stage per chunk (see the module docstring)."""
    f = 4
    return {
        "s_stage": {"flops": lam * B * n * (2 * m + c_f), "bytes": f * (n * m + lam * B * m + lam * B * n * (d + 1))},
        "p_stage": {"flops": lam * B * n * (c_J + 2 * d * d + 2 * d), "bytes": f * lam * B * n * (2 * d + 3)},
        "merge": {"flops": 2 * B * n * (m * (lam * d + d * d + lam + d) + d * d + p * d * (d + 1)),
                  "bytes": f * (2 * B * n * m * d + lam * B * m + lam * B * n * (d + 1))},
    }


def eprop_step_counts(B: int, n: int, m: int, d: int, p: int = 0) -> dict:
    return {"flops": 2 * B * n * m * d * (d + 2), "bytes": 4 * 2 * B * n * m * d}


def bound_seconds(flops: float, nbytes: float, peak_flops: float, bytes_per_s: float) -> float:
    """The roofline's lower bound: the slower of compute and memory traffic."""
    return max(flops / peak_flops, nbytes / bytes_per_s)


def gpu_rates(device_name: str) -> dict | None:
    """The datasheet rates of a GPU named like torch.cuda.get_device_name() ("NVIDIA H200"), or None."""
    return next((rates for key, rates in GPUS.items() if key in device_name.upper()), None)


def gpu_peak_flops(stage: str, gpu: dict) -> float:
    """The merge's τ-sums run on the tensor cores (TF32), every other stage in fp32."""
    return gpu["tf32_tensor_flops"] if stage == "merge" else gpu["fp32_flops"]


def gpu_bound_seconds(stage: str, counts: dict, gpu: dict) -> float:
    return bound_seconds(counts["flops"], counts["bytes"], gpu_peak_flops(stage, gpu), gpu["bytes_per_s"])


def gpu_rows(result: dict, shape: dict, ops: tuple[int, int], gpu: dict) -> list[dict]:
    """One row per stage of the hidden layer (layer0) of one measured HYPR result (either backend):
    seconds per chunk against the GPU's bound. shape: layer_shape's B, n, m, d, p; ops: (c_f, c_J).
    A chunk is one S-stage call. Under readout memory the P-stage is called twice per chunk (the
    second sweep carries the R route signals stacked with the batch, which the counts leave out):
    its row is the time of both, so its fraction of the bound is a lower bound."""
    c = result["config"]
    counts = stage_counts(lam=c["chunk"], c_f=ops[0], c_J=ops[1], **shape)
    calls = result.get("stage_calls_per_sequence", {})
    chunks = calls.get("layer0.s_stage")
    out = []
    for stage, k in counts.items():
        seconds = result.get("stage_seconds_per_sequence", {}).get(f"layer0.{stage}")
        if not chunks or seconds is None:
            continue
        per_chunk, bound = seconds / chunks, gpu_bound_seconds(stage, k, gpu)
        memory_bound = k["bytes"] / gpu["bytes_per_s"] >= k["flops"] / gpu_peak_flops(stage, gpu)
        out.append({"stage": stage, "flops": k["flops"], "bytes": k["bytes"], "measured_s": per_chunk,
                    "calls_per_chunk": calls[f"layer0.{stage}"] / chunks, "bound_s": bound,
                    "fraction_of_bound": bound / per_chunk, "bound_by": "memory" if memory_bound else "compute"})
    return out


# -- this machine's peaks ----------------------------------------------------------------------------

def machine_peaks(out: Path, quick: bool = False, refresh: bool = False, threads: int | None = None) -> dict:
    """Measured fp32 GEMM FLOP/s and copy bandwidth of this CPU with the benchmark's thread count
    (torch's default if None), with the machine description; cached in out/machine.json."""
    import torch

    from .sysmon import machine_info

    path = out / "machine.json"
    if path.exists() and not refresh:
        return json.loads(path.read_text())
    if threads:
        torch.set_num_threads(threads)
    size, reps = (256, 3) if quick else (2048, 10)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    gemm = 2 * size ** 3 * reps / (time.perf_counter() - t0)
    numel = (1 << 20) if quick else (1 << 26)  # 256 MiB per buffer: far beyond the caches
    src, dst = torch.ones(numel), torch.empty(numel)
    dst.copy_(src)
    t0 = time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    copy = 2 * 4 * numel * reps / (time.perf_counter() - t0)  # read + write
    info = machine_info("cpu") | {"peak_fp32_gemm_flops": gemm, "copy_bytes_per_s": copy,
                                  "peaks_measured_with": f"torch.mm {size}² ×{reps}, copy_ of {4 * numel >> 20} MiB ×{reps}, "
                                                         f"{torch.get_num_threads()} thread(s)"}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1))
    return info


# -- the note -----------------------------------------------------------------------------------------

def layer_shape(config: dict) -> dict:
    """B, n, m, d, p of the hidden layer of a benchmark configuration."""
    from hyprgen.loader import load

    meta = load(config["neuron"]).META
    return {"B": config["B"], "n": config["n"], "m": config["n_in"] + config["n"], "d": len(meta["carried"]),
            "p": len(meta["params"])}


def rows(results: list[dict], machine: dict) -> list[dict]:
    """One row per (HYPR configuration, stage) of the hidden layer, for the largest T measured per λ."""
    best: dict[tuple, dict] = {}
    for r in results:
        c = r["config"]
        if c["method"] != "hypr" or "stage_seconds_per_sequence" not in r:
            continue
        key = (c["suite"], c["chunk"], c.get("backend", "torch"))
        if key not in best or c["T"] > best[key]["config"]["T"]:
            best[key] = r
    out = []
    for (suite, lam, backend), r in sorted(best.items()):
        c = r["config"]
        shape = layer_shape(c)
        c_f, c_J = elementwise_ops(c["neuron"])
        counts = stage_counts(lam=lam, c_f=c_f, c_J=c_J, **shape)
        for stage, k in counts.items():
            calls = r["stage_calls_per_sequence"].get(f"layer0.{stage}")
            seconds = r["stage_seconds_per_sequence"].get(f"layer0.{stage}")
            if not calls or seconds is None:
                continue
            per_chunk = seconds / calls
            cpu = bound_seconds(k["flops"], k["bytes"], machine["peak_fp32_gemm_flops"], machine["copy_bytes_per_s"])
            gpu = gpu_bound_seconds(stage, k, H100)
            out.append({"suite": suite, "neuron": c["neuron"], "T": c["T"], "chunk": lam, "backend": backend, "stage": stage,
                        "flops": k["flops"], "bytes": k["bytes"], "intensity": k["flops"] / k["bytes"],
                        "measured_s": per_chunk, "cpu_bound_s": cpu, "cpu_fraction": cpu / per_chunk,
                        "achieved_flops": k["flops"] / per_chunk, "h100_bound_s": gpu})
    return out


def markdown(results: list[dict], machine: dict) -> str:
    rs = rows(results, machine)
    lines = [
        "## Roofline (hidden layer, per chunk)",
        "",
        f"CPU peaks measured here: {machine['peak_fp32_gemm_flops'] / 1e9:.1f} GFLOP/s fp32 GEMM, "
        f"{machine['copy_bytes_per_s'] / 1e9:.1f} GB/s copy ({machine['peaks_measured_with']}). "
        f"H100: {H100['fp32_flops'] / 1e12:.0f} TFLOP/s fp32, {H100['tf32_tensor_flops'] / 1e12:.0f} TFLOP/s TF32 "
        f"tensor cores (merge), {H100['bytes_per_s'] / 1e12:.2f} TB/s HBM3 (datasheet; analytic bound only).",
        "",
        "| suite | λ | backend | stage | MFLOP | MB | FLOP/B | measured ms | CPU bound ms | of bound | GFLOP/s | H100 bound µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rs:
        lines.append(f"| {r['suite']} ({r['neuron']}) | {r['chunk']} | {r['backend']} | {r['stage']} | {r['flops'] / 1e6:.1f} | "
                     f"{r['bytes'] / 1e6:.2f} | {r['intensity']:.1f} | {r['measured_s'] * 1e3:.2f} | "
                     f"{r['cpu_bound_s'] * 1e3:.3f} | {r['cpu_fraction']:.0%} | {r['achieved_flops'] / 1e9:.2f} | "
                     f"{r['h100_bound_s'] * 1e6:.1f} |")
    eprop = [r for r in results if r["config"]["method"] == "eprop"]
    if eprop:
        c = eprop[0]["config"]
        shape = layer_shape(c)
        k = eprop_step_counts(**shape)
        lines += ["", f"Per-step EProp, hidden layer, per step: {k['flops'] / 1e6:.1f} MFLOP, {k['bytes'] / 1e6:.1f} MB "
                      f"(intensity {k['flops'] / k['bytes']:.2f} FLOP/B): CPU bound "
                      f"{bound_seconds(k['flops'], k['bytes'], machine['peak_fp32_gemm_flops'], machine['copy_bytes_per_s']) * 1e3:.2f} ms, "
                      f"H100 bound {bound_seconds(k['flops'], k['bytes'], H100['fp32_flops'], H100['bytes_per_s']) * 1e6:.1f} µs; "
                      f"measured {eprop[0]['time_per_step_s'] * 1e3:.2f} ms per step for the whole network."]
    return "\n".join(lines) + "\n"
