"""The generated torch P-stage against the plain reference, in float64."""
import pytest
import torch

from hyprgen.ops.jacobians import densify
from hyprgen.ops.p_stage import p_stage_ref, p_stage_torch
from hyprgen.ops.s_stage import s_stage_ref

from ..conftest import SHIPPED
from ..helpers import active_network


@pytest.mark.parametrize("neuron", SHIPPED)
def test_generated_p_stage_equals_dense_reference(neuron, device):
    """The generated `p_stage` (unrolled, structural zeros skipped) equals p_stage_ref on the densified
    Jacobians (the plain matrix form of docs/hypr.md §4), at the states of an active run."""
    net, x = active_network(neuron, hidden=(9,), T=11, device=device)
    layer = net.layers[0]
    state = layer.init_state(x.shape[0])
    _, r_prev, current, _, _ = s_stage_ref(layer.neuron, layer.feedforward(x.transpose(0, 1)), layer.W_rec, state.r,
                                        state.o, layer.params_tuple())
    signal = torch.randn(current.shape, dtype=torch.float64).to(device)
    r_prev, theta = tuple(r_prev.unbind(1)), layer.params_tuple()
    sweep, signal_gamma = p_stage_torch(layer.neuron, r_prev, current, signal, theta)
    _, _, jac = layer.neuron.step_with_jacobians(r_prev, current, theta)
    ref, ref_signal_gamma = p_stage_ref(densify(jac, current.shape, current.dtype, current.device), signal)
    for name in ("q0", "g", "E", "Phi", "theta_grad", "Theta_in", "signal_gamma"):
        value = signal_gamma if name == "signal_gamma" else getattr(sweep, name)
        expected = ref_signal_gamma if name == "signal_gamma" else getattr(ref, name)
        assert value.shape == expected.shape, name
        assert torch.allclose(value, expected, rtol=1e-12, atol=1e-12 * expected.abs().max().item()), name
