"""Every shipped neuron's generated Triton kernels against the torch backend, output by output.

S-stage (<neuron>_s_stage_kernel: fused recurrent tl.dot with the state in registers and in neuron
tiles through memory, the per-step fallback beyond MAX_FUSED_N, and the non-recurrent grid) against TorchStages.s_stage (ops.s_stage_ref), and P-stage
(<neuron>_p_stage_kernel) against TorchStages.p_stage (the generated torch `p_stage`). Odd
sizes (B=3, n=37, n_in=45, λ=7, T=50: the last chunk has one step), float32, every output allocated
NaN-filled so an element a kernel leaves unwritten fails. Kernels run in Triton's interpreter on the
CPU (hyprgen/ops/dispatch.py). Each chunk starts both backends from the torch backend's state, so a
difference cannot hide behind (or be blamed on) an earlier chunk.
"""
from pathlib import Path

import pytest
import torch

import hyprgen
from ..conftest import SHIPPED
from hyprgen.compiler.build import generate
from hyprgen.loader import load_kernels as load_triton
from hyprgen.compiler.codegen.unrolled import Pattern
from hyprgen.paths import neurons_dir
from hyprgen.ops import s_stage as s_ops
from hyprgen.runtime.stages import TorchStages, TritonStages
from ..helpers import active_network, assert_outputs_close

B, N, N_IN, LAM, T = 3, 37, 45, 7, 50
TOL = 1e-5  # relative RMS error, float32


def layer_setup(neuron: str, device, recurrent: bool = True):
    """An active float32 layer of `neuron` (n=37, n_in=45) and its input [T, B, n_in], on `device`."""
    net, x = active_network(neuron, hidden=[N], n_in=N_IN, n_out=3, recurrent=recurrent, T=T, B=B)
    return net.float().to(device).layers[0], x.float().to(device).transpose(0, 1)


def s_stage_outputs(outs, kept, state) -> dict:
    return {"o": outs, "r_prev": kept.r_prev, "current": kept.current, "pre": kept.pre,
            "r_out": torch.stack(state.r), "o_out": state.o}


def compare_s_stage(neuron: str, device, recurrent: bool):
    layer, x = layer_setup(neuron, device, recurrent)
    triton_stages = TritonStages(load_triton(layer.neuron))
    state, spikes = layer.init_state(B), 0.0
    for s in range(0, T, LAM):
        ref = TorchStages.s_stage(layer, x[s:s + LAM], state)
        got = triton_stages.s_stage(layer, x[s:s + LAM], state)
        assert_outputs_close(s_stage_outputs(*got), s_stage_outputs(*ref), TOL, f"{neuron} S-stage, chunk at {s}")
        state, spikes = ref[2], spikes + ref[0].sum().item()
    assert spikes > 0 or layer.neuron.META["output"] != "spike", "no spikes: the comparison would be vacuous"


@pytest.mark.parametrize("neuron", SHIPPED)
def test_s_stage_fused_recurrent(neuron, device, nan_outputs):
    compare_s_stage(neuron, device, recurrent=True)


@pytest.mark.parametrize("neuron", SHIPPED)
def test_s_stage_fused_tiled(neuron, device, nan_outputs, monkeypatch):
    """The fused kernel beyond REGISTER_N (n = 256..512 on a GPU): one program walks the neurons in
    tiles every step, the state through memory. Here tiles of 16 over n = 37 (3 tiles, the last ragged)."""
    monkeypatch.setattr(s_ops, "REGISTER_N", 16)
    monkeypatch.setattr(s_ops, "TILE_N", 16)
    assert s_ops.s_stage_config(N, True)["TILED"]
    compare_s_stage(neuron, device, recurrent=True)


@pytest.mark.parametrize("neuron", ["brf", "alif"])
def test_s_stage_per_step_fallback(neuron, device, nan_outputs, monkeypatch):
    """Recurrent layers beyond MAX_FUSED_N: torch GEMM + the neuron step per step (λ launches)."""
    monkeypatch.setattr(s_ops, "MAX_FUSED_N", 16)
    compare_s_stage(neuron, device, recurrent=True)


@pytest.mark.parametrize("neuron", ["brf", "se_adlif"])
def test_s_stage_feedforward(neuron, device, nan_outputs):
    compare_s_stage(neuron, device, recurrent=False)


def assert_soa_storage(sweep):
    """The kernel's per-component outputs are views of structure-of-arrays storage, one [B, n] slab per
    component (what merge_kernel reads without a copy): q^0 [d, B, n], E^τ [λ, d, B, n], Φ [d, d, B, n],
    θ terms [p, B, n] and [d, p, B, n]."""
    storage = {"q0": sweep.q0.permute(2, 0, 1), "E": sweep.E.permute(0, 3, 1, 2), "Phi": sweep.Phi.permute(2, 3, 0, 1),
               "theta_grad": sweep.theta_grad.permute(2, 0, 1), "Theta_in": sweep.Theta_in.permute(2, 3, 0, 1)}
    for name, x in storage.items():
        assert x.is_contiguous(), name


@pytest.mark.parametrize("neuron", SHIPPED)
def test_p_stage(neuron, device, nan_outputs):
    """q^0, g^τ, E^τ, Φ^{λ:1}, θ terms and λ^τγ^τ of every chunk, at the states the S-stage kept."""
    layer, x = layer_setup(neuron, device)
    triton_stages = TritonStages(load_triton(layer.neuron))
    gen = torch.Generator().manual_seed(1)
    state = layer.init_state(B)
    for s in range(0, T, LAM):
        outs, kept, state = TorchStages.s_stage(layer, x[s:s + LAM], state)
        signal = torch.randn(outs.shape, generator=gen).to(device)
        ref, ref_sg = TorchStages().p_stage(layer, kept, signal)
        got, got_sg = triton_stages.p_stage(layer, kept, signal)
        fields = ("q0", "g", "E", "Phi", "theta_grad", "Theta_in")
        assert_soa_storage(got)
        assert_outputs_close({f: getattr(got, f) for f in fields} | {"signal_gamma": got_sg},
                             {f: getattr(ref, f) for f in fields} | {"signal_gamma": ref_sg},
                             TOL, f"{neuron} P-stage, chunk at {s}")


@pytest.mark.parametrize("neuron", SHIPPED)
def test_structural_zeros_skipped(neuron):
    """Φ entries outside the closure of A's pattern stay exactly 0 in products of random A with that
    pattern (the independent check of Pattern.phi), and the kernel never computes them."""
    ir, _ = generate(neurons_dir() / f"{neuron}.py")
    pattern = Pattern.of(ir.jacobians)
    mask = torch.tensor(pattern.A, dtype=torch.float64)
    Phi = torch.eye(pattern.d, dtype=torch.float64)
    for _ in range(2 * pattern.d + 1):
        Phi = Phi @ (torch.randn(pattern.d, pattern.d, dtype=torch.float64) * mask)
    reach = torch.tensor(pattern.phi())
    assert (Phi[~reach] == 0).all()
    assert (Phi[reach] != 0).all()  # the closure is not larger than needed (random entries: no cancellation)
    source = Path(load_triton(hyprgen.load(neuron)).__file__).read_text()
    for k in range(pattern.d):
        for l in range(pattern.d):
            assert (f"_Phi_{k}_{l} " in source) == bool(reach[k, l]), (k, l)
    for k, row in enumerate(ir.jacobians.A):
        for l, e in enumerate(row):
            assert (f"_A_{k}_{l} =" in source) == (e is not None), (k, l)
