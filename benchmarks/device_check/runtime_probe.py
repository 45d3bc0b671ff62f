"""One HYPR training step on the device with backend="triton" and with backend="torch", in a fresh process.

    python -m benchmarks.device_check.runtime_probe DEVICE      # prints one JSON line

The first thing the device check runs on the GPU (do the compiled kernels run at all, and agree?),
and the proof that the runtime path needs no build: after the step, neither SymPy nor
hyprgen.compiler has been imported (the committed generated modules were used as they are).
A BRF layer of 37 neurons (odd: masked tails), 8 inputs, LI readout, B = 3, T = 40, λ = 16 (the
last chunk shorter).
"""
from __future__ import annotations

import json
import sys

import torch

B, T, N_IN, N, N_OUT, LAM = 3, 40, 8, 37, 5, 16


def probe(device: str) -> dict:
    import hyprgen
    from hyprgen.ops import dispatch
    from hyprgen.verify import TOLERANCE

    gen = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((B, T, N_IN), 0.2), generator=gen).to(device)
    y = torch.randint(0, N_OUT, (B, T), generator=gen).to(device)
    results = {}
    for backend in ("torch", "triton"):
        net = hyprgen.RSNN(N_IN, [N], N_OUT, neuron="brf", readout="li", weight_scale=150.0, seed=0).to(device)
        loss = hyprgen.HYPR(net, chunk=LAM, backend=backend).step(x, y).loss.item()
        results[backend] = (loss, {k: p.grad.double() for k, p in net.named_parameters()})
    (_, ref), (loss, got) = results["torch"], results["triton"]

    def rel_rms(a, b):
        scale = b.pow(2).mean().sqrt()
        return ((a - b).pow(2).mean().sqrt() / scale).item() if scale > 0 else a.abs().max().item()

    worst = max(ref, key=lambda k: rel_rms(got[k], ref[k]))
    error = rel_rms(got[worst], ref[worst])
    return {"device": device, "kernels": "interpreted" if dispatch.interpreting(torch.device(device)) else "compiled",
            "loss_triton": loss, "loss_torch": results["torch"][0], "grad_rel_rms_max": error,
            "worst_gradient": worst, "tolerance": TOLERANCE, "ok": error <= TOLERANCE,
            "sympy_imported": "sympy" in sys.modules,
            "compiler_imported": any(m.startswith("hyprgen.compiler") for m in sys.modules)}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1] if len(sys.argv) > 1 else "cpu")))
