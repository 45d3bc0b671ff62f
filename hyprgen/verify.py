"""`hyprgen build --verify SPEC`: run every Triton kernel of a neuron against the torch backend.

A small random problem (one recurrent layer, n = 37, n_in = 45, B = 3, λ = 7, float32; input weights
scaled until the layer spikes on 2–60 % of (sample, step, neuron) so thresholds, surrogates and resets
are exercised) goes through the S-stage, the P-stage and the merge of both backends, and through a
whole HYPR step of a network with that layer and a linear readout. Each output's relative RMS error
is reported against TOLERANCE; the kernels run compiled on a GPU when one is present, interpreted
otherwise. A user's new neuron is thus checked the moment it is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch

TOLERANCE = 1e-5
B, N, N_IN, LAM = 3, 37, 45, 7


@dataclass
class Check:
    stage: str
    output: str
    rel_rms: float
    max_abs: float

    @property
    def ok(self) -> bool:
        return self.rel_rms <= TOLERANCE


def _compare(stage: str, got: dict, ref: dict) -> list[Check]:
    checks = []
    for name, r in ref.items():
        g, r = got[name].double(), r.double()
        scale = r.pow(2).mean().sqrt().item()
        err = (g - r).pow(2).mean().sqrt().item()
        rel = float("inf") if not torch.isfinite(g).all() else (err / scale if scale > 0 else err)
        checks.append(Check(stage, name, rel, (g - r).abs().max().item()))
    return checks


SCALES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)   # input-weight scales tried, smallest first
ACTIVE = (0.02, 0.6)                                 # the firing rates that count as moderate


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


def verify(neuron: ModuleType, kernels: ModuleType, device: torch.device | None = None, seed: int = 0):
    """(checks, firing rate) for a generated torch module and its Triton kernels module."""
    from .ops.merge import Traces, merge_ref, merge_triton
    from .runtime import HYPR
    from .runtime.stages import TorchStages, TritonStages

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net, x, _ = active_network(neuron, hidden=[N], n_in=N_IN, readout="linear", T=LAM, B=B, seed=seed,
                               dtype=torch.float32, device=device, require=False)
    rate = net(x, record=True)[2][0].mean().item()
    layer, torch_stages, triton_stages = net.layers[0], TorchStages(), TritonStages(kernels)
    h, state = x.transpose(0, 1), layer.init_state(B)
    checks = []

    ref_out, ref_kept, ref_state = torch_stages.s_stage(layer, h, state)
    out, kept, new_state = triton_stages.s_stage(layer, h, state)
    s_fields = lambda o, k, s: {"o": o, "r_prev": k.r_prev, "current": k.current,  # noqa: E731
                                "r_out": torch.stack(s.r)}
    checks += _compare("S-stage", s_fields(out, kept, new_state), s_fields(ref_out, ref_kept, ref_state))

    signal = torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    (ref_sweep, ref_sg), (sweep, sg) = torch_stages.p_stage(layer, ref_kept, signal), \
        triton_stages.p_stage(layer, ref_kept, signal)
    fields = ("q0", "g", "E", "Phi", "theta_grad", "Theta_in")
    checks += _compare("P-stage", {f: getattr(sweep, f) for f in fields} | {"signal_gamma": sg},
                       {f: getattr(ref_sweep, f) for f in fields} | {"signal_gamma": ref_sg})

    gen = torch.Generator().manual_seed(seed + 2)
    traces = Traces(*(torch.randn(s, generator=gen).to(device) for s in
                      ((B, N, layer.d, layer.m), (B, N, layer.d), (B, N, layer.d, len(neuron.META["params"])))))
    (ref_grad, ref_traces), (grad, new_traces) = merge_ref(traces, ref_sweep, ref_kept.pre), \
        merge_triton(traces, ref_sweep, ref_kept.pre)
    checks += _compare("merge", {"dW": grad.W, "eps": new_traces.eps, "eps_b": new_traces.eps_b,
                                 "Theta": new_traces.Theta},
                       {"dW": ref_grad.W, "eps": ref_traces.eps, "eps_b": ref_traces.eps_b,
                        "Theta": ref_traces.Theta})

    target = torch.randint(0, 3, (B, 3 * LAM - 2), generator=gen).to(device)
    x_long = torch.randn(B, 3 * LAM - 2, N_IN, generator=gen).to(device)
    grads = {}
    for backend in ("torch", "triton"):
        net.zero_grad(set_to_none=True)
        HYPR(net, chunk=LAM, backend=backend).step(x_long, target)
        grads[backend] = {name: p.grad.clone() for name, p in net.named_parameters()}
    checks += _compare("HYPR step", grads["triton"], grads["torch"])
    return checks, rate


def format_report(name: str, checks: list[Check], rate: float, device: str) -> str:
    lines = [f"{name}: Triton kernels vs torch backend on {device}; B={B}, n={N}, n_in={N_IN}, λ={LAM}, "
             f"float32, layer firing rate {rate:.1%}; relative RMS error, tolerance {TOLERANCE:g}",
             f"  {'stage':<10} {'output':<26} {'rel. RMS':>10} {'max |err|':>10}"]
    for c in checks:
        lines.append(f"  {c.stage:<10} {c.output:<26} {c.rel_rms:>10.2e} {c.max_abs:>10.2e}"
                     f"{'' if c.ok else '   FAIL'}")
    failed = sum(not c.ok for c in checks)
    lines.append(f"  {len(checks) - failed}/{len(checks)} outputs within tolerance" + (f", {failed} FAILED" if failed else ""))
    return "\n".join(lines)
