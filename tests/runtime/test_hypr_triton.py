"""HYPR with backend="triton" against backend="torch": whole training steps, errors, bf16 traces,
and that new sequence or chunk lengths reuse the compiled kernels.

Kernels run in Triton's interpreter on the CPU (float32). Gradients agree to float32 rounding: the
kernels compute the same maths in another order (and with FMA contraction on a GPU).
"""
import math

import pytest
import torch

import hyprgen
from hyprgen.loader import load_kernels as load_triton
from hyprgen.ops import p_stage as p_ops
from hyprgen.ops import s_stage as s_ops
from hyprgen.ops.compile_keys import compile_key

from ..helpers import active_network, cue_targets, grads_of, rel_rms, run_with_triton_interpret

TOL = 1e-5  # relative RMS error, float32


def two_layer(neuron="brf", T=50):
    """2 recurrent hidden layers (37, 29 neurons; 45 inputs), li readout, B=3, active, float32."""
    net, x = active_network(neuron, hidden=[37, 29], n_in=45, n_out=5, T=T, B=3)
    return net.float(), x.float(), cue_targets(3, T, 5)


def hypr_grads(net, x, y, **options):
    net.zero_grad(set_to_none=True)
    result = hyprgen.HYPR(net, **options).step(x, y)
    return result, grads_of(net)


@pytest.mark.parametrize("readout_memory", [True, False], ids=["readout_memory", "same_step"])
@pytest.mark.parametrize("neuron", ["brf", "alif"])
def test_training_step_equals_torch_backend(neuron, readout_memory):
    """Both learning signals (docs/hypr.md §3a, §3): with readout memory the P-stage kernel also runs
    the route signals stacked with the batch."""
    net, x, y = two_layer(neuron)
    ref_result, ref = hypr_grads(net, x, y, chunk=7, backend="torch", readout_memory=readout_memory)
    got_result, got = hypr_grads(net, x, y, chunk=7, backend="triton", readout_memory=readout_memory)
    assert got.keys() == ref.keys() and len(ref) == len(list(net.parameters()))
    for name in ref:
        assert ref[name].abs().max() > 0, f"{name}: zero reference gradient, the comparison would be vacuous"
        assert rel_rms(got[name], ref[name]) <= TOL, f"{name}: relative RMS error {rel_rms(got[name], ref[name]):.2e}"
    assert rel_rms(got_result.outputs, ref_result.outputs) <= TOL
    assert abs(got_result.loss.item() - ref_result.loss.item()) <= TOL * abs(ref_result.loss.item())


def test_optimizer_steps_and_streaming_equal_torch_backend():
    """Three Adam steps in streaming mode (an update per chunk, state and traces carried over calls)."""
    nets = {b: two_layer()[0] for b in ("torch", "triton")}
    _, x, y = two_layer()
    for backend, net in nets.items():
        learner, opt = hyprgen.HYPR(net, chunk=7, backend=backend), torch.optim.Adam(net.parameters(), lr=1e-3)
        learner.stream(x[:, :21], y[:, :21], opt)
        learner.stream(x[:, 21:35], y[:, 21:35], opt)
    for (name, p_ref), (_, p_got) in zip(nets["torch"].named_parameters(), nets["triton"].named_parameters()):
        assert (p_got - p_ref).abs().max() <= TOL * p_ref.abs().max(), name


def test_backend_errors():
    net, x, y = two_layer()
    with pytest.raises(ValueError, match="backend must be one of"):
        hyprgen.HYPR(net, backend="cuda")
    with pytest.raises(ValueError, match="bfloat16 with backend='triton'"):
        hyprgen.HYPR(net, backend="torch", trace_dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="float32; the network and input are torch.float64"):
        hyprgen.HYPR(net.double(), backend="triton").step(x.double(), y)


def test_bf16_traces_drift_over_100_chunks():
    """Weight traces stored in bf16 (fp32 arithmetic): the gradient of 100 chunks drifts from the fp32
    traces' gradient by less than the bound of docs/kernels.md, u·Σ_{j<K} ρ^j with u = 2^-7 (one
    bf16 rounding by truncation, the interpreter's; 2^-8 on a GPU) and ρ = max_i exp(-λ/τ_i), the
    contraction of LIF's membrane over one chunk. Nothing else is stored in bf16: every other
    gradient is bit-identical."""
    lam, K = 4, 100
    net, x = active_network("lif", hidden=[16], n_in=8, n_out=3, readout="linear", T=lam * K, B=2,
                            recurrent=False)
    net, x, y = net.float(), x.float(), cue_targets(2, lam * K, 3)
    _, ref = hypr_grads(net, x, y, chunk=lam, backend="triton")
    _, got = hypr_grads(net, x, y, chunk=lam, backend="triton", trace_dtype=torch.bfloat16)
    rho = math.exp(-lam / net.layers[0].theta["tau_u"].max().item())
    bound = 2.0 ** -7 * sum(rho ** j for j in range(K))
    drift = rel_rms(got["layers.0.W_in"], ref["layers.0.W_in"])
    assert 0 < drift <= bound, f"W_in drift {drift:.2e} > bound {bound:.2e}"
    for name in ref:
        if name != "layers.0.W_in":
            assert torch.equal(got[name], ref[name]), name


def stage_keys(kernels, B, lam, n=37, m=45):
    """compile_key of both generated kernels as the launchers would launch them for (B, λ)."""
    f = lambda *s: torch.zeros(*s)  # noqa: E731
    d, p = kernels.D, kernels.P
    s_stage = compile_key(kernels.brf_s_stage_kernel, f(lam, B, n), f(n, n), f(lam + 1, B, n), f(lam + 1, d, B, n),
                          f(p, n), f(lam, B, n), B, n, lam, **s_ops.s_stage_config(n, True))
    p_stage = compile_key(kernels.brf_p_stage_kernel, f(lam, d, B, n), f(lam, B, n), f(lam, B, n), f(p, n),
                          f(d, B, n), f(lam, B, n), f(lam, B, n), f(lam, d, B, n), f(d, d, B, n), f(p, B, n),
                          f(d, p, B, n), B, n, lam, **p_ops.p_stage_config())
    return s_stage, p_stage


def test_new_lengths_never_recompile():
    """Batch size and chunk length (so also T, the last chunk's length and the number of chunks, which
    the kernels never see) map to one compiled binary per kernel; a new layer size may not."""
    kernels = load_triton(hyprgen.load("brf"))
    keys = {stage_keys(kernels, B, lam) for B in (1, 3, 32) for lam in (1, 7, 64, 250)}
    assert len(keys) == 1
    assert stage_keys(kernels, 3, 7, n=300) != keys.pop()


def test_with_triton_interpret_set():
    """With TRITON_INTERPRET=1 before triton's import (as CI may set it), the generated kernels are
    interpreted functions and a whole HYPR step still equals the torch backend's."""
    script = ("import torch, hyprgen\n"
              "from hyprgen.loader import load_kernels as load_triton\n"
              "from triton.runtime.interpreter import InterpretedFunction\n"
              "from tests.runtime.test_hypr_triton import two_layer, hypr_grads, rel_rms, TOL\n"
              "assert isinstance(load_triton(hyprgen.load('lif')).lif_p_stage_kernel, InterpretedFunction)\n"
              "net, x, y = two_layer('lif', T=12)\n"
              "_, ref = hypr_grads(net, x, y, chunk=5, backend='torch')\n"
              "_, got = hypr_grads(net, x, y, chunk=5, backend='triton')\n"
              "assert all(rel_rms(got[k], ref[k]) <= TOL for k in ref if ref[k].abs().max() > 0)\n")
    run_with_triton_interpret(script)
