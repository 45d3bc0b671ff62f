"""Kinks (compiler/kinks.py): the derived Jacobians of Max, Min and Abs equal torch autograd's derivative
of the generated forward exactly at the kink, on the torch and the Triton target, and so HYPR equals
BPTT on a model whose state sits on its kinks. Before: d Max(u, 0)/du was 0 at u = 0 (autograd: 1)."""
import pytest
import torch

import hyprgen
from hyprgen import loader
from hyprgen.contract import JACOBIAN_BLOCKS
from hyprgen.ops.jacobians import densify, jacobians_by_autograd
from hyprgen.ops.p_stage import p_stage_torch, p_stage_triton

from ..helpers import assert_grads_close, rel_rms

KINKY = """\
import sympy as sp
from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import fast_sigmoid

neuron = Neuron("kinky", doc="a neuron whose states reset onto the kinks of Max, Min and Abs")
u, w = neuron.states("u w")
g = neuron.param("g", init=uniform(0.5, 0.9), clamp=(0.0, 1.0))
a = neuron.let("a", sp.Max(g * u + neuron.input, 0))           # Max against a number: clamp
b = neuron.let("b", sp.Min(w + neuron.input, a))               # Min between two tensors
c = neuron.let("c", sp.Abs(u - w))                              # Abs
neuron.spike(a + b + c - 1, surrogate=fast_sigmoid())
neuron.update(u, a - neuron.reset(a * neuron.prev_spike))       # reset to 0: onto Max's kink
neuron.update(w, b - neuron.reset(b * neuron.prev_spike))
"""


@pytest.fixture(scope="module")
def kinky(tmp_path_factory):
    spec = tmp_path_factory.mktemp("kinks") / "kinky.py"
    spec.write_text(KINKY)
    return loader.load(spec)


def kink_points(dtype):
    """[4, 3] states (u, w, z^{t-1}) and currents: every kink at once (all zero: Max(0, 0), Min(0, 0),
    |0|), each kink alone, and a row away from every kink."""
    u = torch.tensor([[0.0, 0.0, 0.3], [0.0, -0.2, 0.5], [0.7, 0.1, 0.2], [0.4, 0.9, -0.3]], dtype=dtype)
    w = torch.tensor([[0.0, 0.3, 0.3], [0.1, -0.2, 0.5], [0.35, 0.7, -0.1], [0.2, -0.5, 0.8]], dtype=dtype)
    current = torch.tensor([[0.0, 0.3, 0.0], [0.0, 0.1, -0.15], [-0.35, 0.0, 0.2], [0.1, 0.2, 0.3]], dtype=dtype)
    z = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    return (u, w, z), current, (torch.tensor([0.5, 0.5, 0.5], dtype=dtype),)


def test_derived_jacobians_take_autograds_derivative_at_the_kinks(kinky):
    state, current, params = kink_points(torch.float64)
    _, _, jac = kinky.step_with_jacobians(state, current, params)
    dense = densify(jac, current.shape, current.dtype, current.device)
    ref = jacobians_by_autograd(kinky, state, current, params)    # torch.func through step_autograd
    for key in JACOBIAN_BLOCKS:
        torch.testing.assert_close(getattr(dense, key), getattr(ref, key), rtol=0, atol=1e-15, msg=key)
    assert dense.A[0, 0, 0, 0] == 0.5 and dense.c[0, 0, 0] == 1.0   # d a/du = g·1 at Max(0, 0), clamp's 1


def test_triton_p_stage_takes_the_same_derivative_at_the_kinks(kinky):
    state, current, (g,) = kink_points(torch.float32)
    lam = 3   # the same points at every step of a short chunk
    r_prev = tuple(r.expand(lam, *r.shape).contiguous() for r in state)
    current = current.expand(lam, *current.shape).contiguous()
    signal = torch.linspace(-1, 1, current.numel()).reshape(current.shape)
    ref, ref_gamma = p_stage_torch(kinky, r_prev, current, signal, (g,))
    got, got_gamma = p_stage_triton(loader.load_kernels(kinky), torch.stack(r_prev, 1), current, signal, g[None])
    for name in ("q0", "g", "E", "Phi", "theta_grad"):
        assert rel_rms(getattr(got, name), getattr(ref, name)) < 1e-6, name
    assert rel_rms(got_gamma, ref_gamma) < 1e-6


@pytest.mark.parametrize("learner", ["hypr", "eprop"])
def test_hypr_equals_bptt_on_a_model_resting_on_its_kinks(kinky, learner):
    """One feed-forward hidden layer and a linear readout: HYPR's gradient is BPTT's exactly
    (docs/hypr.md §8). The input is 0 on most steps and the bias 0, so the states rest on the kinks."""
    net = hyprgen.RSNN(2, 5, 2, neuron=kinky, readout="linear", recurrent=False, seed=0).double()
    with torch.no_grad():
        net.layers[0].bias.zero_()
        net.layers[0].W_in.mul_(4.0)
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(3, 17, 2, dtype=torch.float64)
    x[:, ::4] = torch.rand(3, 5, 2, generator=gen, dtype=torch.float64)   # input at every 4th step only
    y = torch.randint(0, 2, (3, 17), generator=gen)
    hyprgen.BPTT(net).step(x, y)
    ref = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    (hyprgen.HYPR(net, chunk=5) if learner == "hypr" else hyprgen.EProp(net)).step(x, y)
    got = {k: p.grad.clone() for k, p in net.named_parameters()}
    assert_grads_close(got, ref, rel=1e-10, what=learner)
    # the states did rest on the kinks: Max's argument exactly 0 at some step and neuron
    _, _, layers = net(x, record=True)
    assert (layers[0] == 0).any()
