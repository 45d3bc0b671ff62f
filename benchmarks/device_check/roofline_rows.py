"""Each measured HYPR stage of the hidden layer against its roofline bound (benchmarks/perf/roofline.py).

The bound uses the datasheet rates of the GPU the check ran on (H100 or H200: roofline.GPUS); a dry
run, or another GPU, is set against the H200's, and the rows say so. The stage times are CUDA-event
times of each stage call (launcher and kernels; benchmarks.perf.measure.StageTimer) per chunk.
The FLOP counts include the neuron's elementwise operations, counted with SymPy from its spec: the
one part of the check that imports the compiler (here, after the benchmark, never in the runtime).
"""
from __future__ import annotations

from ..perf import roofline


def operation_counts(neuron: str) -> tuple[tuple[int, int], str | None]:
    """(c_f, c_J) and a note if they could not be counted (then 0: the FLOPs are the GEMMs' alone)."""
    try:
        return roofline.elementwise_ops(neuron), None
    except Exception as exc:   # noqa: BLE001  (a missing or other SymPy must not lose the report)
        return (0, 0), f"elementwise operations not counted ({type(exc).__name__}: {exc}): FLOPs are the GEMMs' only"


def rows(results: list[dict], device_name: str | None) -> tuple[list[dict], str]:
    """(one row per stage of every HYPR result, the rates used)."""
    gpu = roofline.gpu_rates(device_name or "")
    rates = gpu["name"] if gpu else f"{roofline.H200['name']} (not the device measured)"
    gpu = gpu or roofline.H200
    hypr = [r for r in results if r["config"]["method"] == "hypr" and r.get("stage_seconds_per_sequence")]
    if not hypr:
        return [], rates
    counts, note = operation_counts(hypr[0]["config"]["neuron"])
    out = []
    for r in hypr:
        c = r["config"]
        shape = roofline.layer_shape(c)
        for row in roofline.gpu_rows(r, shape, counts, gpu):
            out.append({"name": r["name"], "backend": c["backend"], "B": c["B"], "n": c["n"], "T": c["T"],
                        "chunk": c["chunk"], **row, **({"note": note} if note else {})})
    return out, rates
