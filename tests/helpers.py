"""Shared helpers for runtime tests: active float64 networks, gradient comparison, subprocesses."""
import os
import subprocess
import sys
from pathlib import Path

import torch

import hyprgen


def active_network(neuron, hidden=(6, 5), n_in=3, n_out=3, readout="li", recurrent=True, T=37, B=3, seed=0):
    """A float64 RSNN and an input on which every hidden layer spikes at a moderate rate.

    Scales the input weights until each spiking layer fires on 2-60 % of (b, t, neuron), so that
    gradient comparisons exercise the surrogate, the resets and the recurrence.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, n_in, generator=gen, dtype=torch.float64)
    for scale in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        net = hyprgen.RSNN(n_in, list(hidden), n_out, neuron=neuron, readout=readout, recurrent=recurrent,
                           seed=seed, weight_scale=scale).double()
        _, _, rec = net(x, record=True)
        spiking = [r for layer, r in zip(net.layers[:-1], rec) if layer.neuron.META["output"] == "spike"]
        rates = [r.mean().item() for r in spiking]
        if all(0.02 <= r <= 0.6 for r in rates):
            return net, x
    raise AssertionError(f"{neuron}: no weight scale gives moderate activity (last rates {rates})")


def rel_rms(got, ref) -> float:
    """‖got − ref‖_RMS / ‖ref‖_RMS in float64 (the absolute RMS error of got when ref is all zero)."""
    ref64 = ref.double()
    scale = ref64.pow(2).mean().sqrt()
    return ((got.double() - ref64).pow(2).mean().sqrt() / scale).item() if scale > 0 else got.abs().max().item()


def cue_targets(B, T, n_out, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_out, (B, T), generator=gen)
    y[:, : T // 3] = -100  # ignored steps
    return y


def grads_of(net):
    return {k: p.grad.detach().clone() for k, p in net.named_parameters() if p.grad is not None}


def assert_grads_close(got, ref, rel=1e-10, what=""):
    """max|got − ref| ≤ rel·max|ref| for every parameter; every reference gradient is non-zero."""
    assert got.keys() == ref.keys(), f"{what}: parameters with gradients differ: {got.keys() ^ ref.keys()}"
    for k in ref:
        scale = ref[k].abs().max().item()
        assert scale > 0, f"{what}: reference gradient of {k} is zero; the test would be vacuous"
        err = (got[k] - ref[k]).abs().max().item()
        assert err <= rel * scale, f"{what}: {k}: max error {err:.3e} > {rel:g} × {scale:.3e}"


def run_with_triton_interpret(script: str, timeout: float = 300) -> None:
    """Run `script` in a fresh Python from the repository root with TRITON_INTERPRET=1 set before
    triton is imported (which fixes the form of every @triton.jit kernel); fails if it fails."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).resolve().parents[1], check=True,
                   timeout=timeout)
