"""`hyprgen build --verify SPEC`: run every kernel of a neuron (Triton, and the cpu target's C) against the torch backend.

A small random problem (one recurrent layer, n = 37, n_in = 45, B = 3, λ = 7, float32) goes through
the S-stage, the P-stage and the merge of both backends, and through a whole HYPR step of a network
with that layer and a linear readout. Each output's relative RMS error is reported against TOLERANCE;
the Triton kernels run compiled on a GPU when one is present, interpreted otherwise; the C kernels
(target "cpu") compiled on the CPU. A user's new neuron is thus checked the moment it is built.

The input weights are scaled (SCALES, smallest first) until the layer spikes on 2–60 % of (sample,
step, neuron), so that thresholds, surrogates and resets are exercised. A scale at which the torch
reference itself is not finite (the neuron diverges: a cubic under a strong input) says so and ends
the search upwards (the smaller scales tried so far remain; not scales just below it, where a
barely finite reference amplifies rounding chaotically), and a rate outside 2–60 % is stated, not
hidden. `--input-scale s` fixes the scale (halved while the reference is not finite). A neuron the
kernels do not support (d > ops.merge.MAX_D) is one error line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType

import torch

from .errors import HyprgenError

TOLERANCE = 1e-5
B, N, N_IN, LAM = 3, 37, 45, 7
SCALES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)   # input-weight scales tried, smallest first
ACTIVE = (0.02, 0.6)                                 # the firing rates that count as moderate
HALVINGS = 10                                        # smaller scales tried after a non-finite reference


@dataclass
class Check:
    stage: str
    output: str
    rel_rms: float
    max_abs: float

    @property
    def ok(self) -> bool:
        return self.rel_rms <= TOLERANCE


@dataclass
class Setup:
    """The problem verify settled on: its input scale, the layer's firing rate (None for a continuous
    output) and what the search met on the way (one line each)."""

    scale: float
    rate: float | None
    notes: list[str] = field(default_factory=list)


def _compare(stage: str, got: dict, ref: dict) -> list[Check]:
    checks = []
    for name, r in ref.items():
        g, r = got[name].double(), r.double()
        scale = r.pow(2).mean().sqrt().item()
        err = (g - r).pow(2).mean().sqrt().item()
        rel = float("inf") if not torch.isfinite(g).all() else (err / scale if scale > 0 else err)
        checks.append(Check(stage, name, rel, (g - r).abs().max().item()))
    return checks


def active_network(neuron, hidden=(6, 5), n_in: int = 3, n_out: int = 3, readout: str = "li", recurrent=True,
                   T: int = 37, B: int = 3, seed: int = 0, dtype=torch.float64, device=None, require: bool = True):
    """An RSNN and an input x [B, T, n_in] on which every spiking hidden layer fires on 2–60 % of
    (sample, step, neuron), so that comparisons exercise thresholds, surrogates, resets and recurrence.

    Tries the input-weight scales SCALES in turn; returns (net, x, firing rates of the spiking hidden
    layers). With require=False the last scale is returned when none is moderate; else an error."""
    from .runtime import RSNN

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, n_in, generator=gen, dtype=dtype).to(device)
    for scale in SCALES:
        net = RSNN(n_in, list(hidden), n_out, neuron=neuron, readout=readout, recurrent=recurrent, seed=seed,
                   weight_scale=scale).to(dtype=dtype, device=device)
        _, _, recorded = net(x, record=True)
        rates = [r.mean().item() for layer, r in zip(net.layers[:-1], recorded)
                 if layer.neuron.META["output"] == "spike"]
        if all(ACTIVE[0] <= r <= ACTIVE[1] for r in rates):
            return net, x, rates
    if require:
        raise AssertionError(f"{neuron}: no weight scale gives moderate activity (last rates {rates})")
    return net, x, rates


# ----------------------------------------------------------------------------------------------
# The problem and the torch reference on it


@dataclass
class Problem:
    """verify's random problem at one input scale; every tensor float32 on the device."""

    scale: float
    net: object              # RSNN: one layer of N neurons, a linear readout
    h: torch.Tensor          # [λ, B, n_in] the layer's input
    state: object            # the layer's initial state
    x_long: torch.Tensor     # [B, 3λ − 2, n_in] a HYPR step's input (three chunks, the last one short)
    target: torch.Tensor     # [B, 3λ − 2] its class targets
    rate: float | None       # the layer's firing rate on h (None: a continuous output)


def make_problem(neuron: ModuleType, scale: float, device: torch.device, seed: int) -> Problem:
    from .runtime import RSNN

    x = torch.randn(B, LAM, N_IN, generator=torch.Generator().manual_seed(seed), dtype=torch.float32).to(device)
    net = RSNN(N_IN, [N], 3, neuron=neuron, readout="linear", seed=seed,
               weight_scale=scale).to(dtype=torch.float32, device=device)
    gen = torch.Generator().manual_seed(seed + 2)
    target = torch.randint(0, 3, (B, 3 * LAM - 2), generator=gen).to(device)
    x_long = torch.randn(B, 3 * LAM - 2, N_IN, generator=gen).to(device)
    spiking = neuron.META["output"] == "spike"
    rate = net(x, record=True)[2][0].mean().item() if spiking else None
    return Problem(scale, net, x.transpose(0, 1), net.layers[0].init_state(B), x_long, target, rate)


def _traces(layer, n_params: int, seed: int, device):
    from .ops.merge import Traces

    gen = torch.Generator().manual_seed(seed + 3)
    return Traces(*(torch.randn(s, generator=gen).to(device) for s in
                    ((B, N, layer.d, layer.m), (B, N, layer.d), (B, N, layer.d, n_params))))


def _hypr_grads(net, backend: str, x_long, target) -> dict:
    from .runtime import HYPR

    net.zero_grad(set_to_none=True)
    # verify judges finiteness itself (`finite`: a diverging reference is a note, not an error)
    HYPR(net, chunk=LAM, backend=backend, check_finite=False).step(x_long, target)
    return {name: p.grad.clone() for name, p in net.named_parameters()}


def reference(p: Problem, seed: int) -> dict:
    """The torch backend's outputs on p: {stage: {output: tensor}} and, under "inputs", what the
    kernels get from it (the kept S-stage values, the learning signal, the traces, the sweep)."""
    from .ops.merge import merge_ref
    from .runtime.stages import TorchStages

    layer, stages = p.net.layers[0], TorchStages()
    out, kept, new_state = stages.s_stage(layer, p.h, p.state)
    signal = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1)).to(out.device)
    sweep, signal_gamma = stages.p_stage(layer, kept, signal)
    traces = _traces(layer, len(layer.neuron.META["params"]), seed, out.device)
    grad, new_traces = merge_ref(traces, sweep, kept.pre)
    return {"S-stage": _s_fields(out, kept, new_state), "P-stage": _p_fields(sweep, signal_gamma),
            "merge": _merge_fields(grad, new_traces), "HYPR step": _hypr_grads(p.net, "torch", p.x_long, p.target),
            "inputs": {"kept": kept, "signal": signal, "traces": traces, "sweep": sweep}}


def _s_fields(out, kept, state) -> dict:
    return {"o": out, "r_prev": kept.r_prev, "current": kept.current, "r_out": torch.stack(state.r)}


def _p_fields(sweep, signal_gamma) -> dict:
    return {f: getattr(sweep, f) for f in ("q0", "g", "E", "Phi", "theta_grad", "Theta_in")} | \
        {"signal_gamma": signal_gamma}


def _merge_fields(grad, traces) -> dict:
    return {"dW": grad.W, "eps": traces.eps, "eps_b": traces.eps_b, "Theta": traces.Theta}


def finite(ref: dict) -> bool:
    return all(torch.isfinite(t).all().item() for stage, outputs in ref.items() if stage != "inputs"
               for t in outputs.values())


# ----------------------------------------------------------------------------------------------
# Choosing the scale


def _distance(rate: float | None) -> float:
    """How far a firing rate lies outside ACTIVE (0 inside; a continuous output is always inside)."""
    return 0.0 if rate is None else max(ACTIVE[0] - rate, rate - ACTIVE[1], 0.0)


def choose(neuron: ModuleType, device, seed: int, input_scale: float | None) -> tuple[Problem, dict, Setup]:
    """The problem verify runs at (module docstring), its torch reference and what the search met."""
    notes, kept = [], []                       # kept: (problem, reference) with a finite reference

    def attempt(scale: float) -> bool:
        p = make_problem(neuron, scale, device, seed)
        ref = reference(p, seed)
        if finite(ref):
            kept.append((p, ref))
        return finite(ref)

    upwards = SCALES if input_scale is None else (input_scale,)
    last = None
    for scale in upwards:
        last = scale
        if not attempt(scale):
            notes.append(f"the reference itself is not finite at input scale {scale:g}: the neuron diverges on "
                         "this input, so a kernel's error there would say nothing; "
                         + ("using a smaller scale" if kept else "trying smaller scales"))
            break
        if input_scale is None and _distance(kept[-1][0].rate) == 0:
            break
    for k in range(1, HALVINGS + 1):
        if kept:
            break
        if not attempt(last / 2**k):
            notes.append(f"the reference itself is not finite at input scale {last / 2**k:g}")
    if not kept:
        raise HyprgenError(f"{neuron.META['spec_file']}: neuron '{neuron.META['name']}': the torch reference is not "
                           f"finite at any input scale from {last:g} down to {last / 2**HALVINGS:g}: the neuron "
                           "diverges on a random input (check its step, or its bounds and clamps)")
    p, ref = min(kept, key=lambda pr: (_distance(pr[0].rate), -pr[0].scale))   # ties: the busier input
    if _distance(p.rate) > 0:
        tried = sorted(k[0].scale for k in kept)
        closest = f" (the closest of the scales tried, {tried[0]:g}–{tried[-1]:g})" if len(tried) > 1 else ""
        side, little = (("below", "thresholds, surrogates and resets are exercised little") if p.rate < ACTIVE[0] else
                        ("above", "the dynamics below threshold are exercised little"))
        notes.append(f"the layer fires on {p.rate:.1%} of (sample, step, neuron) at input scale {p.scale:g}{closest}, "
                     f"{side} the {ACTIVE[0]:.0%}–{ACTIVE[1]:.0%} this check aims for: {little}; choose a scale "
                     "with --input-scale")
    return p, ref, Setup(p.scale, p.rate, notes)


# ----------------------------------------------------------------------------------------------
# The kernels against the reference


def unsupported(neuron: ModuleType) -> str | None:
    """Why the Triton kernels cannot run this neuron (None when they can)."""
    from .ops.merge import MAX_D

    carried = neuron.META["carried"]
    if len(carried) > MAX_D:
        return (f"carries d = {len(carried)} state components ({', '.join(carried)}); the Triton kernels handle "
                f"d ≤ {MAX_D}, so it runs on backend='torch' or 'cpu' only")
    return None


TARGET_NAMES = {"triton": "Triton", "cpu": "C (cpu target)"}


def _kernel(stage: str, target: str, run, *args):
    """run(*args), with whatever a kernel raises (a compiler, a launcher's check) as one line."""
    try:
        return run(*args)
    except Exception as exc:  # noqa: BLE001  a user's neuron may break a kernel anywhere: report, located
        first = (str(exc).strip().splitlines() or [""])[0]
        raise HyprgenError(f"{stage}: the {TARGET_NAMES[target]} kernel failed: {type(exc).__name__}: {first}") from exc


def verify(neuron: ModuleType, kernels, device: torch.device | None = None, seed: int = 0,
           input_scale: float | None = None, target: str = "triton") -> tuple[list[Check], Setup]:
    """(checks, setup) for a generated torch module and its kernels: the Triton module (target
    "triton") or the loaded C kernels (target "cpu", ops/cpu_kernels.py; on the CPU)."""
    from .runtime.stages import CpuStages, TritonStages

    problem = unsupported(neuron) if target == "triton" else None
    if problem is not None:
        raise HyprgenError(f"{neuron.META['spec_file']}: neuron '{neuron.META['name']}' {problem}")
    if input_scale is not None and not (math.isfinite(input_scale) and input_scale > 0):
        raise HyprgenError(f"--input-scale must be a positive number, got {input_scale:g}")
    if target == "cpu":
        device, stages = torch.device("cpu"), CpuStages(kernels)
    else:
        device, stages = device or torch.device("cuda" if torch.cuda.is_available() else "cpu"), TritonStages(kernels)
    p, ref, setup = choose(neuron, device, seed, input_scale)
    inputs, layer = ref.pop("inputs"), p.net.layers[0]
    kept, sweep = inputs["kept"], inputs["sweep"]
    got = {"S-stage": _s_fields(*_kernel("S-stage", target, stages.s_stage, layer, p.h, p.state)),
           "P-stage": _p_fields(*_kernel("P-stage", target, stages.p_stage, layer, kept, inputs["signal"])),
           "merge": _merge_fields(*_kernel("merge", target, stages.merge, inputs["traces"], sweep, kept.pre)),
           "HYPR step": _kernel("HYPR step", target, _hypr_grads, p.net, target, p.x_long, p.target)}
    return [c for stage in ref for c in _compare(stage, got[stage], ref[stage])], setup


def format_report(name: str, checks: list[Check], setup: Setup, device: str, target: str = "triton") -> str:
    activity = "continuous output" if setup.rate is None else f"layer firing rate {setup.rate:.1%}"
    lines = [f"{name}: {TARGET_NAMES[target]} kernels vs torch backend on {device}; B={B}, n={N}, n_in={N_IN}, λ={LAM}, "
             f"float32, input scale {setup.scale:g}, {activity}; relative RMS error, tolerance {TOLERANCE:g}"]
    lines += [f"  note: {note}" for note in setup.notes]
    lines.append(f"  {'stage':<10} {'output':<26} {'rel. RMS':>10} {'max |err|':>10}")
    for c in checks:
        lines.append(f"  {c.stage:<10} {c.output:<26} {c.rel_rms:>10.2e} {c.max_abs:>10.2e}"
                     f"{'' if c.ok else '   FAIL'}")
    failed = sum(not c.ok for c in checks)
    lines.append(f"  {len(checks) - failed}/{len(checks)} outputs within tolerance" + (f", {failed} FAILED" if failed else ""))
    return "\n".join(lines)
