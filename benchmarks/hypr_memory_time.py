"""Wall time and peak memory of HYPR (several λ), BPTT and per-step e-prop on one BRF network, and
the gradient gap between HYPR and full BPTT (shared/HYPR.md §6, §8).

Setting (defaults): a BRF network with one recurrent hidden layer (n = 128) and a leaky-integrator
readout, batch B = 32, sequence length T = 1000, float32, the delayed cue task (hyprgen.data.CueTask
with delay = T − 20, n_in = 12, 2 classes) and the cross-entropy loss on the recall steps. Methods:
`hyprgen.HYPR(net, chunk=λ).step` for λ in --chunks, `hyprgen.BPTT(net).step` and
`hyprgen.EProp(net).step` (the per-step form with generated Jacobians). No optimizer step is taken:
every call computes the gradient of one sequence into .grad, from the same initial network.

    .venv/bin/python -m benchmarks.hypr_memory_time            # the full benchmark (a few minutes)
    .venv/bin/python -m benchmarks.hypr_memory_time --quick    # tiny sizes, seconds: checks the script

Outputs: a table on stdout, benchmarks/results/hypr_memory_time.json (…_quick.json with --quick) and,
if matplotlib is installed, a plot next to it (.png).

How each method is measured
---------------------------
Every method runs in its own fresh Python subprocess (`--one METHOD`), so that no method inherits
another one's heap, and the parent only collects the results. Inside the subprocess:

1. Build the network and the batch (same seeds in every subprocess: identical weights and data).
2. Warm-up 0: one call of the method on a *tiny* input (2 samples, a few steps: λ + 3 for HYPR so that
   a full and a partial chunk run). This loads every lazily initialised code path (oneDNN/MKL
   kernels, the autograd engine, the generated neuron module) without raising the heap noticeably.
3. Memory call: one full-size call (B × T). On CPU its peak memory is the peak *resident set size*
   increase over the RSS right before the call:
     - right before the call the kernel's RSS high-water mark is reset to the current RSS by writing
       "5" to /proc/self/clear_refs (Linux ≥ 4.0), the current RSS is read from /proc/self/statm,
     - after the call the high-water mark VmHWM is read from /proc/self/status;
       peak increase = VmHWM − RSS_before. This is the kernel's exact high-water mark (not sampled),
       so short-lived spikes are counted.
   Cross-check: a background thread samples /proc/self/statm every 2 ms during the call; its maximum
   (a lower bound of the true peak) is reported too. If clear_refs cannot be written, the script
   falls back to max(sampled peak, getrusage ru_maxrss − RSS_before when ru_maxrss rose during the
   call) and says so in the output (ru_maxrss alone is a process-lifetime maximum and would include
   whatever happened before the call).
   RSS is what the process really holds: live tensors plus glibc malloc's retention/fragmentation
   (PyTorch's CPU allocator has no cache of its own). It is not the sum of live tensor bytes; it is
   what a user sees in `top`. glibc raises its mmap threshold after a large buffer is freed, so
   later buffers of that size come from the heap and may stay resident; --malloc-fixed-threshold
   runs the subprocesses with GLIBC_TUNABLES fixing the mmap and trim thresholds at 128 KiB, which
   brings RSS closer to the live tensor bytes (a second view, not the default). Why not torch.profiler's memory profile: it attributes allocations to
   ops but costs far more than the call itself on 10⁵ small ops and still misses allocator overhead.
   On CUDA (--device cuda): torch.cuda.reset_peak_memory_stats() before the call and
   max_memory_allocated() − memory_allocated() before the call (bytes of live tensors, not the
   caching allocator's reserve).
   The memory call also serves as the timing warm-up at full size (the "one warm-up").
4. Timing: `reps` further full-size calls, each timed with time.perf_counter (CUDA: synchronized);
   the table shows the median and the minimum. EProp and HYPR with λ < 8 are slow (tens of seconds
   per sequence at T = 1000), so they run `--slow-reps` repetitions (default 2) instead of `--reps`
   (default 5). For every timed call the script also records how many cores *other* processes kept
   busy meanwhile (busy time of the machine from /proc/stat minus this process's CPU time, per wall
   second; column "others"): on a shared machine other processes inflate wall times — with torch's
   default of one intra-op thread per core, a parallel op waits for a descheduled worker thread, and
   single calls then take several times longer. Where "others" is well above 0, prefer the minimum
   or the "quiet median" (median of the calls during which others < 0.25 cores). --quiet-wait S makes
   each timed call wait up to S seconds for the machine to go quiet first (the waits are recorded).
   --malloc-fixed-threshold fixes glibc's mmap threshold (see the memory notes above).

The gradient of the memory call is saved; the parent compares every method's gradient with BPTT's
(cosine similarity and relative norm difference ‖g − g_BPTT‖ / ‖g_BPTT‖ per parameter tensor) and
HYPR's λ's and EProp with each other (they compute the same gradient, HYPR.md §4). The parent also
computes the gap at extra weight scales (--gap-weight-scales: at the default initial weight scale the
BRF network does not spike on this input, so the gap is also shown for an active network), splits it
into its two sources with BPTT(detach_recurrent=True) (paths through recurrent spikes) and checks the
measuring code on the one configuration where HYPR must equal BPTT exactly (detached recurrence,
linear readout; HYPR.md §8).

Analytic memory model (HYPR.md §6), float32, summed over the hidden and readout layers:
  HYPR/EProp carried: traces B·n·m·d + B·n·d·(1+p), state B·n·d   (independent of T)
  HYPR per-chunk transient (HYPR.md's order of magnitude, constant 1): B·λ·(m + n·d)
  BPTT: B·T·n·(d+1) (what autograd must keep per step at least).
HYPR's carried memory beats BPTT only for T beyond about m·d/(d+1) steps; the exact crossover of
the two formulas for this network is printed.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .sysmon import (MiB, QUIET_CORES, RssSampler, cpu_counters, hwm_bytes, machine_info, maxrss_bytes,
                     other_cores, reset_hwm, rss_bytes, wait_quiet)

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results"
SLOW_CHUNK = 8  # HYPR with λ below this counts as slow (runs --slow-reps repetitions)


# ---------------------------------------------------------------------------------------------
# configuration shared by parent and subprocesses
# ---------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ap.add_argument("--T", type=int, default=None, help="sequence length (default 1000; --quick 60)")
    ap.add_argument("--n", type=int, default=None, help="hidden neurons (default 128; --quick 16)")
    ap.add_argument("--B", type=int, default=None, help="batch size (default 32; --quick 4)")
    ap.add_argument("--chunks", type=int, nargs="+", default=None,
                    help="HYPR chunk lengths λ (default 1 16 64 250; --quick 1 4 16)")
    ap.add_argument("--methods", nargs="+", default=["hypr", "bptt", "eprop"],
                    help="methods: hypr (every λ of --chunks), hypr:λ, bptt, eprop (default: hypr bptt eprop)")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions per fast method (default 5; --quick 1)")
    ap.add_argument("--slow-reps", type=int, default=None,
                    help=f"timed repetitions for EProp and HYPR with λ < {SLOW_CHUNK} (default 2; --quick 1)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads in the measuring subprocesses (default: torch's default)")
    ap.add_argument("--quiet-wait", type=float, default=0.0,
                    help="before each timed call wait up to this many seconds for other processes to go "
                         "quiet (default 0: do not wait)")
    ap.add_argument("--malloc-fixed-threshold", action="store_true",
                    help="run the subprocesses with glibc's mmap/trim thresholds fixed at 128 KiB, so that "
                         "freed large buffers go back to the OS at once: RSS then tracks live tensor bytes "
                         "more closely (default: glibc's adaptive thresholds, what users get)")
    ap.add_argument("--neuron", default="brf", help="hidden neuron (default: brf)")
    ap.add_argument("--readout", default="li", help="readout: li or linear (default: li)")
    ap.add_argument("--input", default="cue", choices=["cue", "bernoulli"],
                    help="cue: CueTask(delay=T−20); bernoulli: random spikes (p=0.1, n_in=12), random "
                         "class on the last 10 steps (default: cue)")
    ap.add_argument("--weight-scale", type=float, default=10.0,
                    help="initial weight scale of the hidden layer (default 10, as `hyprgen train`)")
    ap.add_argument("--gap-weight-scales", type=float, nargs="*", default=None,
                    help="extra weight scales at which to measure the HYPR/BPTT gradient gap "
                         "(default 200: a BRF network that spikes; --quick none)")
    ap.add_argument("--gap-chunk", type=int, default=64, help="λ used for the extra gap measurements (default 64)")
    ap.add_argument("--no-gap", action="store_true", help="skip the gradient-gap measurements")
    ap.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: finishes in seconds (checks the script)")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/hypr_memory_time[_quick].json)")
    ap.add_argument("--no-plot", action="store_true", help="do not write the plot")
    # internal: one method in this process
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result-out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--grad-out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    q = a.quick
    a.T = a.T if a.T is not None else (60 if q else 1000)
    a.n = a.n if a.n is not None else (16 if q else 128)
    a.B = a.B if a.B is not None else (4 if q else 32)
    a.chunks = a.chunks if a.chunks is not None else ([1, 4, 16] if q else [1, 16, 64, 250])
    a.reps = a.reps if a.reps is not None else (1 if q else 5)
    a.slow_reps = a.slow_reps if a.slow_reps is not None else (1 if q else 2)
    if a.gap_weight_scales is None:
        a.gap_weight_scales = [] if q else [200.0]
    if a.T <= 20 and a.input == "cue":
        ap.error("--T must exceed 20 for the cue task (cue 10 + recall 10 steps)")
    if min(a.chunks) < 1 or a.reps < 1 or a.slow_reps < 1 or a.B < 1 or a.n < 1:
        ap.error("--chunks, --reps, --slow-reps, --B and --n must be positive")
    return a


def expand_methods(args) -> list[str]:
    out = []
    for m in args.methods:
        m = m.lower()
        if m == "hypr":
            out += [f"hypr:{c}" for c in args.chunks]
        elif m.startswith("hypr:") and m[5:].isdigit() and int(m[5:]) > 0:
            out.append(m)
        elif m in ("bptt", "eprop"):
            out.append(m)
        else:
            raise SystemExit(f"unknown method {m!r}: use hypr, hypr:λ, bptt or eprop")
    return list(dict.fromkeys(out))


def label(method: str) -> str:
    if method.startswith("hypr:"):
        return f"HYPR λ={method[5:]}"
    return {"bptt": "BPTT", "eprop": "EProp (per step)"}[method]


def is_slow(method: str) -> bool:
    return method == "eprop" or (method.startswith("hypr:") and int(method[5:]) < SLOW_CHUNK)


def make_data(args, batch: int, T: int, device):
    """(x [batch, T, n_in], target [batch, T], n_in, n_classes), seeded."""
    import torch

    gen = torch.Generator().manual_seed(args.seed + 1)
    if args.input == "cue":
        from hyprgen.data import CueTask

        task = CueTask(delay=T - 20)
        x, y = task.batch(batch, gen)
        return x.to(device), y.to(device), task.n_in, task.n_classes
    n_in, n_classes = 12, 2
    x = torch.bernoulli(torch.full((batch, T, n_in), 0.1), generator=gen)
    y = torch.full((batch, T), -100, dtype=torch.long)
    y[:, -min(10, T):] = torch.randint(0, n_classes, (batch, 1), generator=gen)
    return x.to(device), y.to(device), n_in, n_classes


def make_net(args, n_in, n_classes, device, weight_scale=None, readout=None):
    import hyprgen

    ws = args.weight_scale if weight_scale is None else weight_scale
    return hyprgen.RSNN(n_in, args.n, n_classes, neuron=args.neuron, readout=readout or args.readout,
                        seed=args.seed, weight_scale=ws).to(device)


def make_learner(method: str, net, **kw):
    import hyprgen

    if method.startswith("hypr:"):
        return hyprgen.HYPR(net, chunk=int(method[5:]))
    if method == "bptt":
        return hyprgen.BPTT(net, **kw)
    if method == "eprop":
        return hyprgen.EProp(net)
    raise ValueError(method)


def grads_of(net) -> dict:
    return {name: (p.grad.detach().cpu().clone() if p.grad is not None else None)
            for name, p in net.named_parameters()}


# ---------------------------------------------------------------------------------------------
# one method, in its own process
# ---------------------------------------------------------------------------------------------

def run_one(args) -> dict:
    import torch

    method = args.one
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y, n_in, n_classes = make_data(args, args.B, args.T, device)
    net = make_net(args, n_in, n_classes, device)
    learner = make_learner(method, net)

    # warm-up 0: tiny input (loads lazy code paths, keeps the heap small)
    chunk = int(method[5:]) if method.startswith("hypr:") else 1
    T_w = min(args.T, chunk + 3 if method.startswith("hypr:") else 8)
    xw, yw, _, _ = make_data(args, 2, args.T, device)
    if args.input == "cue":  # keep some labelled steps in the tiny prefix
        yw = yw.clone()
        yw[:, :T_w] = torch.where(yw[:, :T_w] < 0, torch.zeros_like(yw[:, :T_w]), yw[:, :T_w])
    learner.step(xw[:, :T_w].contiguous(), yw[:, :T_w].contiguous())
    net.zero_grad(set_to_none=True)
    del xw, yw
    gc.collect()
    sync()

    # memory call (also the full-size warm-up for timing)
    mem: dict = {}
    if cuda:
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        res = learner.step(x, y)
        sync()
        t_mem = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated(device)
        mem.update(kind="cuda max_memory_allocated − memory_allocated before the call",
                   before_mib=before / MiB, peak_mib=peak / MiB, peak_increase_mib=(peak - before) / MiB,
                   reserved_peak_mib=torch.cuda.max_memory_reserved(device) / MiB)
    else:
        hwm_ok = reset_hwm()
        maxrss_before = maxrss_bytes()
        before = rss_bytes()
        sampler = RssSampler()
        sampler.start()
        t0 = time.perf_counter()
        res = learner.step(x, y)
        t_mem = time.perf_counter() - t0
        sampled = sampler.stop()
        hwm = hwm_bytes()
        maxrss_after = maxrss_bytes()
        after = rss_bytes()
        if hwm_ok and hwm is not None:
            peak, kind = hwm, "VmHWM after resetting it (clear_refs 5) − RSS before the call (exact kernel high-water mark)"
        else:
            peak = max(sampled, maxrss_after if maxrss_after > maxrss_before else 0)
            kind = ("fallback: max(2 ms RSS samples, ru_maxrss if it rose during the call) − RSS before "
                    "(clear_refs not writable: may underestimate)")
        mem.update(kind=kind, before_mib=before / MiB, peak_mib=peak / MiB,
                   peak_increase_mib=(peak - before) / MiB, sampled_peak_increase_mib=(sampled - before) / MiB,
                   after_mib=after / MiB, hwm_reset=hwm_ok)
    loss = float(res.loss)
    grads = grads_of(net)
    if args.grad_out:
        torch.save(grads, args.grad_out)
    del res

    # timing
    reps = args.slow_reps if is_slow(method) else args.reps
    times, others = [], []
    load_before = os.getloadavg()[0]
    waited = []
    for _ in range(reps):
        net.zero_grad(set_to_none=True)
        sync()
        waited.append(wait_quiet(args.quiet_wait))
        c0 = cpu_counters()
        t0 = time.perf_counter()
        learner.step(x, y)
        sync()
        times.append(time.perf_counter() - t0)
        others.append(other_cores(c0, cpu_counters(), times[-1]))
    load_after = os.getloadavg()[0]
    quiet = [t for t, o in zip(times, others) if o is not None and o < QUIET_CORES]
    return {"method": method, "label": label(method), "chunk": chunk if method.startswith("hypr:") else None,
            "reps": reps, "slow": is_slow(method), "times_s": times, "median_s": statistics.median(times),
            "min_s": min(times), "memory_call_s": t_mem, "warmup0_steps": T_w, "memory": mem, "loss": loss,
            "loadavg_1min_before": load_before, "loadavg_1min_after": load_after, "other_cores_busy": others,
            "other_cores_busy_mean": (sum(o for o in others if o is not None) / len(others)
                                      if others and all(o is not None for o in others) else None),
            "quiet_times_s": quiet, "quiet_median_s": statistics.median(quiet) if quiet else None,
            "quiet_wait_s": waited,
            "torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------------------------
# analytic model (HYPR.md §6)
# ---------------------------------------------------------------------------------------------

def layer_dims(args, n_in, n_classes) -> list[dict]:
    """Per layer: n, m, d, p of the benchmark network (read from the built network)."""
    net = make_net(args, n_in, n_classes, "cpu")
    return [{"name": "hidden" if i < len(net.layers) - 1 else "readout", "n": L.n, "m": L.m, "d": L.d,
             "p": len(L.neuron.META["params"])} for i, L in enumerate(net.layers)]


def analytic(dims, B, T, chunks) -> dict:
    f = 4  # float32
    traces = sum(B * L["n"] * L["m"] * L["d"] + B * L["n"] * L["d"] * (1 + L["p"]) for L in dims)
    state = sum(B * L["n"] * L["d"] for L in dims)
    bptt = sum(B * T * L["n"] * (L["d"] + 1) for L in dims)
    per_step_bptt = sum(B * L["n"] * (L["d"] + 1) for L in dims)
    hidden = dims[0]
    return {
        "floats": "float32 (4 bytes)",
        "hypr_carried_mib": (traces + state) * f / MiB,
        "hypr_traces_mib": traces * f / MiB,
        "state_mib": state * f / MiB,
        "hypr_chunk_transient_mib": {str(c): sum(B * c * (L["m"] + L["n"] * L["d"]) for L in dims) * f / MiB
                                     for c in chunks},
        "bptt_mib": bptt * f / MiB,
        "crossover_T_hidden_layer": hidden["m"] * hidden["d"] / (hidden["d"] + 1),
        "crossover_T_network": (traces + state) / per_step_bptt,
        "layers": dims,
    }


def model_mib(method: str, model: dict) -> float:
    if method == "bptt":
        return model["bptt_mib"]
    if method == "eprop":
        return model["hypr_carried_mib"]
    return model["hypr_carried_mib"] + model["hypr_chunk_transient_mib"].get(method[5:], 0.0)


# ---------------------------------------------------------------------------------------------
# gradient gap
# ---------------------------------------------------------------------------------------------

PRETTY = {"layers.0.W_in": "hidden.W_in", "layers.0.W_rec": "hidden.W_rec", "layers.0.bias": "hidden.bias",
          "layers.1.W_in": "readout.W_out", "layers.1.bias": "readout.b_out"}


def pretty(name: str) -> str:
    if name in PRETTY:
        return PRETTY[name]
    parts = name.split(".")
    if len(parts) == 4 and parts[2] == "theta":
        return ("hidden." if parts[1] == "0" else "readout.") + parts[3]
    return name


def compare(g: dict, ref: dict) -> dict:
    """Per parameter: cosine similarity and ‖g − ref‖/‖ref‖ (None where undefined)."""
    out = {}
    for name, r in ref.items():
        a = g.get(name)
        if a is None or r is None:
            out[pretty(name)] = {"cos": None, "rel_diff": None, "norm": None, "ref_norm": None}
            continue
        a, r = a.double().flatten(), r.double().flatten()
        na, nr = a.norm().item(), r.norm().item()
        cos = (a @ r).item() / (na * nr) if na > 0 and nr > 0 else None
        rel = (a - r).norm().item() / nr if nr > 0 else (0.0 if na == 0 else math.inf)
        out[pretty(name)] = {"cos": cos, "rel_diff": rel, "norm": na, "ref_norm": nr}
    return out


def max_rel(cmp: dict) -> float:
    vals = [v["rel_diff"] for v in cmp.values() if v["rel_diff"] is not None]
    return max(vals) if vals else float("nan")


def gap_at_scale(args, ws: float, device) -> dict:
    """HYPR (λ = gap_chunk) vs BPTT and vs BPTT with detached recurrence, at weight scale ws."""
    import torch

    x, y, n_in, n_classes = make_data(args, args.B, args.T, device)
    out = {"weight_scale": ws}
    grads = {}
    for key, method, kw, readout in [("hypr", f"hypr:{args.gap_chunk}", {}, None), ("bptt", "bptt", {}, None),
                                     ("bptt_detached", "bptt", {"detach_recurrent": True}, None)]:
        net = make_net(args, n_in, n_classes, device, weight_scale=ws, readout=readout)
        if key == "hypr":
            with torch.no_grad():
                _, _, rec = net(x, record=True)
            out["hidden_spike_rate"] = rec[0].float().mean().item()
            out["active_hidden_neurons"] = int((rec[0].sum((0, 1)) > 0).sum())
        make_learner(method, net, **kw).step(x, y)
        grads[key] = grads_of(net)
    out["hypr_vs_bptt"] = compare(grads["hypr"], grads["bptt"])
    out["hypr_vs_bptt_detached"] = compare(grads["hypr"], grads["bptt_detached"])
    out["bptt_detached_vs_bptt"] = compare(grads["bptt_detached"], grads["bptt"])
    return out


def exactness_check(args, device) -> dict:
    """HYPR.md §8: detached recurrence and a linear readout: HYPR must equal BPTT (float32 rounding)."""
    import hyprgen

    x, y, n_in, n_classes = make_data(args, args.B, args.T, device)
    g = {}
    for key in ("hypr", "bptt"):
        net = make_net(args, n_in, n_classes, device, readout="linear")
        (hyprgen.HYPR(net, chunk=args.gap_chunk) if key == "hypr" else hyprgen.BPTT(net, detach_recurrent=True)).step(x, y)
        g[key] = grads_of(net)
    cmp = compare(g["hypr"], g["bptt"])
    return {"config": f"readout=linear, BPTT(detach_recurrent=True), HYPR λ={args.gap_chunk}, weight scale "
                      f"{args.weight_scale}", "per_param": cmp, "max_rel_diff": max_rel(cmp)}


# ---------------------------------------------------------------------------------------------
# parent: run everything, print, write
# ---------------------------------------------------------------------------------------------

def child_argv(args, method: str, result: str, grad: str) -> list[str]:
    argv = [sys.executable, "-m", "benchmarks.hypr_memory_time", "--one", method, "--result-out", result,
            "--grad-out", grad, "--device", args.device, "--T", str(args.T), "--n", str(args.n),
            "--B", str(args.B), "--reps", str(args.reps), "--slow-reps", str(args.slow_reps),
            "--neuron", args.neuron, "--readout", args.readout, "--input", args.input,
            "--weight-scale", str(args.weight_scale), "--seed", str(args.seed), "--chunks", *map(str, args.chunks)]
    argv += ["--threads", str(args.threads)] if args.threads else []
    argv += ["--quiet-wait", str(args.quiet_wait)]
    return argv + (["--quick"] if args.quick else [])


def fmt(v, spec=".3f", none="–"):
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_table(rows: list[dict], ref: dict | None, model: dict, args):
    mem_name = "peak GPU Δ" if args.device.startswith("cuda") else "peak RSS Δ"
    head = (f"{'method':<18}{'reps':>5}{'median s':>10}{'min s':>9}{'quiet med':>11}{'×BPTT':>7}{'others':>8}"
            f"{mem_name + ' MiB':>17}"
            f"{'sampled':>9}{'×BPTT':>7}{'model MiB':>11}{'loss':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['label']:<18} FAILED: {r['error'].splitlines()[-1] if r['error'] else '?'}")
            continue
        m = r["memory"]
        t_ratio = r["median_s"] / ref["median_s"] if ref else None
        m_ratio = (m["peak_increase_mib"] / ref["memory"]["peak_increase_mib"]
                   if ref and ref["memory"]["peak_increase_mib"] > 0 else None)
        quiet = f"{fmt(r.get('quiet_median_s'), '.3f')} ({len(r.get('quiet_times_s') or [])})"
        print(f"{r['label']:<18}{r['reps']:>5}{r['median_s']:>10.3f}{r['min_s']:>9.3f}{quiet:>11}{fmt(t_ratio, '.2f'):>7}"
              f"{fmt(r.get('other_cores_busy_mean'), '.2f'):>8}"
              f"{m['peak_increase_mib']:>17.1f}{fmt(m.get('sampled_peak_increase_mib'), '.1f'):>9}"
              f"{fmt(m_ratio, '.2f'):>7}{model_mib(r['method'], model):>11.1f}{r['loss']:>9.4f}")


def print_gap(title: str, cmp: dict):
    print(f"  {title}")
    print(f"    {'parameter':<17}{'cos':>10}{'rel diff':>11}{'‖g‖':>11}{'‖g_ref‖':>11}")
    for name, v in cmp.items():
        print(f"    {name:<17}{fmt(v['cos'], '.4f'):>10}{fmt(v['rel_diff'], '.3g'):>11}"
              f"{fmt(v['norm'], '.3g'):>11}{fmt(v['ref_norm'], '.3g'):>11}")


def plot(path: Path, rows: list[dict], model: dict, args) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return None
    labels = [r["label"].replace(" (per step)", "") for r in ok]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.bar(labels, [r["median_s"] for r in ok], color="tab:blue")
    ax1.scatter(labels, [r["min_s"] for r in ok], color="k", marker="_", s=200, zorder=3, label="min")
    ax1.set_yscale("log")
    ax1.set_ylabel("wall time per sequence [s] (bar: median)")
    ax1.legend()
    ax2.bar(labels, [r["memory"]["peak_increase_mib"] for r in ok], color="tab:orange", label="measured peak Δ")
    ax2.scatter(labels, [model_mib(r["method"], model) for r in ok], color="k", marker="D", zorder=3,
                label="HYPR.md §6 model")
    ax2.set_ylabel(("peak GPU memory" if args.device.startswith("cuda") else "peak RSS increase") + " [MiB]")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{args.neuron} n={args.n}, B={args.B}, T={args.T}, {args.device}, float32")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def main_parent(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    methods = expand_methods(args)
    out = Path(args.out) if args.out else DEFAULT_RESULTS / ("hypr_memory_time_quick.json" if args.quick
                                                             else "hypr_memory_time.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available in this torch build / on this machine")
    _, _, n_in, n_classes = make_data(args, 1, args.T, "cpu")
    dims = layer_dims(args, n_in, n_classes)
    model = analytic(dims, args.B, args.T, [int(m[5:]) for m in methods if m.startswith("hypr:")])
    info = machine_info(args.device)
    cmd = "python benchmarks/hypr_memory_time.py " + " ".join(sys.argv[1:])
    print(f"hyprgen benchmark: {args.neuron} n={args.n} (recurrent) → {args.readout} readout, B={args.B}, "
          f"T={args.T}, n_in={n_in}, {n_classes} classes, input={args.input}, weight scale "
          f"{args.weight_scale}, {args.device}, float32")
    print(f"machine: {info.get('lscpu Model name', platform.processor())}, nproc={info['nproc']}, "
          f"torch {info['torch']} ({info['torch_threads']} threads)")
    print(f"reps: {args.reps} timed calls per method after one full-size warm-up; EProp and HYPR λ<{SLOW_CHUNK}: "
          f"{args.slow_reps} (slow). Each method in a fresh subprocess.\n")

    rows, grads = [], {}
    with tempfile.TemporaryDirectory(prefix="hyprgen_bench_") as tmp:
        for method in methods:
            res_path, grad_path = os.path.join(tmp, "res.json"), os.path.join(tmp, method.replace(":", "_") + ".pt")
            t0 = time.perf_counter()
            print(f"  running {label(method)} ...", end="", flush=True)
            env = dict(os.environ)
            if args.malloc_fixed_threshold:
                env["GLIBC_TUNABLES"] = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"
            proc = subprocess.run(child_argv(args, method, res_path, grad_path), capture_output=True, text=True,
                                  env=env, cwd=HERE.parent)
            if proc.returncode != 0 or not os.path.exists(res_path):
                rows.append({"method": method, "label": label(method), "error": proc.stderr[-4000:]})
                print(f" FAILED (rc {proc.returncode})")
                continue
            with open(res_path) as f:
                row = json.load(f)
            os.remove(res_path)
            rows.append(row)
            grads[method] = torch.load(grad_path)
            print(f" {time.perf_counter() - t0:.1f} s (s/seq: " + ", ".join(f"{t:.3f}" for t in row["times_s"])
                  + f"; peak Δ {row['memory']['peak_increase_mib']:.1f} MiB; other processes: "
                  + ", ".join(fmt(o, ".2f") for o in row["other_cores_busy"]) + " cores)")

    ref = next((r for r in rows if r["method"] == "bptt" and "error" not in r), None)
    ok = [r for r in rows if "error" not in r]
    print("\nPer sequence (B × T), gradient only (no optimizer step):")
    print_table(rows, ref, model, args)
    mem_kind = ok[0]["memory"]["kind"] if ok else ""
    print(f"  ×BPTT: ratio of medians. others: cores kept busy by other processes during the timed calls (mean);"
          f" quiet med: median of the calls with others < {QUIET_CORES} (their number).")
    print(f"  memory: {mem_kind}; 'sampled' = max of 2 ms RSS samples (lower bound).")
    print(f"  model: HYPR.md §6 in float32 — HYPR: traces {model['hypr_traces_mib']:.2f} MiB + state "
          f"{model['state_mib']:.2f} MiB + chunk transient B·λ·(m+n·d); EProp: traces + state; BPTT: B·T·n·(d+1) "
          f"= {model['bptt_mib']:.1f} MiB.")
    print(f"  model crossover: HYPR's carried memory < BPTT's for T > {model['crossover_T_network']:.0f} steps "
          f"(hidden layer alone: m·d/(d+1) = {model['crossover_T_hidden_layer']:.0f}).")

    ratios = {}
    by = {r["method"]: r for r in ok}
    if ref:
        for r in ok:
            if r["method"] != "bptt":
                ratios[f"{r['method']}/bptt time (median)"] = r["median_s"] / ref["median_s"]
                ratios[f"{r['method']}/bptt time (min)"] = r["min_s"] / ref["min_s"]
                if r.get("quiet_median_s") and ref.get("quiet_median_s"):
                    ratios[f"{r['method']}/bptt time (quiet median)"] = r["quiet_median_s"] / ref["quiet_median_s"]
                if ref["memory"]["peak_increase_mib"] > 0:
                    ratios[f"{r['method']}/bptt peak memory"] = (r["memory"]["peak_increase_mib"]
                                                                 / ref["memory"]["peak_increase_mib"])
    if "eprop" in by:
        for r in ok:
            if r["method"].startswith("hypr:"):
                ratios[f"eprop/{r['method']} time (median)"] = by["eprop"]["median_s"] / r["median_s"]
    hyprs = sorted((r for r in ok if r["method"].startswith("hypr:")), key=lambda r: r["chunk"])
    derived = {}
    if len(hyprs) >= 2 and hyprs[-1]["chunk"] > hyprs[0]["chunk"]:
        lo, hi = hyprs[0], hyprs[-1]
        slope = ((hi["memory"]["peak_increase_mib"] - lo["memory"]["peak_increase_mib"]) * MiB
                 / (hi["chunk"] - lo["chunk"]))
        derived["hypr_bytes_per_chunk_step"] = slope
        derived["hypr_floats_per_chunk_step_per_sample_neuron"] = slope / 4 / (args.B * args.n)
    if ref:
        derived["bptt_floats_per_step_per_sample_neuron"] = (ref["memory"]["peak_increase_mib"] * MiB / 4
                                                             / (args.B * args.T * args.n))
    if ratios:
        print("\nRatios (same run):")
        for k, v in ratios.items():
            print(f"  {k:<36} {v:8.3f}")
    if derived:
        print("Derived:")
        if "hypr_floats_per_chunk_step_per_sample_neuron" in derived:
            print(f"  HYPR memory growth with λ: {derived['hypr_bytes_per_chunk_step'] / MiB:.3f} MiB per chunk step "
                  f"= {derived['hypr_floats_per_chunk_step_per_sample_neuron']:.1f} floats per (step, sample, hidden "
                  f"neuron) (§6 model: (m+n·d)/n ≈ {(dims[0]['m'] + dims[0]['n'] * dims[0]['d']) / dims[0]['n']:.1f})")
        if "bptt_floats_per_step_per_sample_neuron" in derived:
            print(f"  BPTT: {derived['bptt_floats_per_step_per_sample_neuron']:.1f} floats kept per (step, sample, "
                  f"hidden neuron) (§6 model: d+1 = {dims[0]['d'] + 1})")

    # gradient gap
    gap: dict = {}
    if not args.no_gap:
        print("\nGradient gap (one batch, same initial network; rel diff = ‖g − g_ref‖/‖g_ref‖):")
        if "bptt" in grads:
            gap["vs_bptt"] = {m: compare(g, grads["bptt"]) for m, g in grads.items() if m != "bptt"}
            for m, cmp in gap["vs_bptt"].items():
                print_gap(f"{label(m)} vs BPTT (weight scale {args.weight_scale}):", cmp)
        online = [m for m in grads if m != "bptt"]
        if len(online) >= 2:
            base = online[0]
            gap["lambda_invariance"] = {m: max_rel(compare(grads[m], grads[base])) for m in online[1:]}
            print(f"  HYPR λ-invariance / EProp agreement (max rel diff over parameters vs {label(base)}): "
                  + ", ".join(f"{label(m)} {v:.2e}" for m, v in gap["lambda_invariance"].items()))
        gap["exactness_check"] = exactness_check(args, device)
        print(f"  Check of the measuring code (HYPR.md §8): {gap['exactness_check']['config']}: max rel diff "
              f"{gap['exactness_check']['max_rel_diff']:.2e} (must be float32 rounding)")
        gap["by_weight_scale"] = []
        for ws in [args.weight_scale] + [w for w in args.gap_weight_scales if w != args.weight_scale]:
            g = gap_at_scale(args, ws, device)
            gap["by_weight_scale"].append(g)
            print(f"\n  weight scale {ws}: hidden spike rate {g['hidden_spike_rate']:.4f} "
                  f"({g['active_hidden_neurons']}/{args.n} neurons spike), HYPR λ={args.gap_chunk}")
            print_gap("HYPR vs BPTT (the gap):", g["hypr_vs_bptt"])
            print_gap("BPTT(detach_recurrent) vs BPTT (paths through recurrent spikes):", g["bptt_detached_vs_bptt"])
            print_gap("HYPR vs BPTT(detach_recurrent) (remaining: readout-leak paths to later steps):",
                      g["hypr_vs_bptt_detached"])

    result = {"command": cmd, "config": {k: v for k, v in vars(args).items() if k not in ("one", "result_out", "grad_out")},
              "machine": info, "methods": rows, "ratios": ratios, "derived": derived, "model": model, "gap": gap,
              "total_seconds": time.perf_counter() - start}
    with open(out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"\nwrote {out}")
    if not args.no_plot:
        p = plot(out.with_suffix(".png"), rows, model, args)
        print(f"wrote {p}" if p else "plot skipped (matplotlib is not installed)")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 1 if any("error" in r for r in rows) else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        expand_methods(argparse.Namespace(methods=[args.one], chunks=args.chunks))
        res = run_one(args)
        with open(args.result_out, "w") as f:
            json.dump(res, f)
        return 0
    return main_parent(args)


if __name__ == "__main__":
    sys.exit(main())
