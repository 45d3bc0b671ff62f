"""A readout with one τ_out for all its neurons (RSNN(shared_readout=True)): HYPR's readout memory then
keeps one trace F for the top hidden layer instead of one per readout neuron (docs/hypr.md §3a,
K_κ = 1), and its gradient is still that of the per-step oracle and of detached BPTT, in float64."""
import pytest
import torch

import hyprgen
from hyprgen.runtime.hypr import readout_jacobians_shared

from ..helpers import active_network, assert_grads_close, cue_targets, grads_of, rel_rms

T = 37


def shared(net: hyprgen.RSNN) -> hyprgen.RSNN:
    """net with its readout's parameters replaced by one shared value (readout neuron 0's)."""
    hidden = [layer.n for layer in net.layers[:-1]]
    out = hyprgen.RSNN(net.n_in, hidden, net.n_out, neuron=[layer.neuron for layer in net.layers[:-1]],
                       recurrent=[layer.recurrent for layer in net.layers[:-1]], shared_readout=True)
    state = {k: (v[:1] if k.startswith(f"layers.{len(hidden)}.theta.") else v) for k, v in net.state_dict().items()}
    out.load_state_dict(state)
    return out.to(next(net.parameters()).dtype)


def grads(learner, net, x, y, **kw):
    net.zero_grad(set_to_none=True)
    learner.step(x, y, **kw)
    return grads_of(net)


def test_a_shared_readout_has_one_parameter_and_autograds_summed_gradient():
    net, x = active_network("brf", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    one = shared(net)
    assert one.layers[-1].theta["tau_out"].shape == (1,)
    ref = grads(hyprgen.BPTT(one), one, x, y)["layers.2.theta.tau_out"]
    expanded = shared(net)   # the same value in every neuron, unshared: autograd's per-neuron gradient
    per_neuron = hyprgen.RSNN(3, [6, 5], 3, neuron="brf").double()
    per_neuron.load_state_dict({k: (v.expand(3).clone() if k.endswith("tau_out") else v)
                                for k, v in expanded.state_dict().items()})
    total = grads(hyprgen.BPTT(per_neuron), per_neuron, x, y)["layers.2.theta.tau_out"].sum()
    torch.testing.assert_close(ref, total.reshape(1), rtol=1e-12, atol=0)


@pytest.mark.parametrize("neuron", ["brf", "alif", "lif", "se_adlif"])
def test_one_trace_for_the_top_layer_gives_the_per_step_oracles_gradient(neuron):
    net, x = active_network(neuron, T=T)
    net = shared(net)
    y = cue_targets(x.shape[0], T, net.n_out)
    learner = hyprgen.HYPR(net, chunk=7)
    assert learner.shared_memory and learner._zero_carried(2)[1][1].G.shape[0] == 1
    got = grads(learner, net, x, y)
    oracle = grads(hyprgen.EProp(net, jacobians="autograd"), net, x, y)
    assert_grads_close(got, oracle, what=f"{neuron} HYPR (K_κ = 1) vs EProp(autograd)")
    for chunk in (1, 3, T):
        assert_grads_close(grads(hyprgen.HYPR(net, chunk=chunk), net, x, y), got, what=f"λ={chunk} vs λ=7")


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_one_hidden_layer_equals_detached_bptt(loss):
    net, x = active_network("alif", hidden=(7,), T=T)
    net = shared(net)
    gen = torch.Generator().manual_seed(3)
    y = cue_targets(x.shape[0], T, net.n_out) if loss == "ce" else torch.randn(x.shape[0], T, net.n_out,
                                                                              dtype=torch.float64, generator=gen)
    got = grads(hyprgen.HYPR(net, chunk=5, loss=loss), net, x, y)
    ref = grads(hyprgen.BPTT(net, loss=loss, detach_recurrent=True), net, x, y)
    assert_grads_close(got, ref, what=f"{loss}: HYPR (K_κ = 1) vs detached BPTT")


def test_carried_bytes_drop_by_the_top_layers_extra_traces():
    """§6 with K_κ = 1: the top hidden layer carries one F (B·n·(m + 1 + p)) instead of n_out."""
    net = shared(hyprgen.RSNN(5, [7, 6], 3, neuron=["brf", "alif"]))
    B, top = 4, net.layers[1]
    saved = 4 * (net.n_out - 1) * B * top.n * (top.m + 1 + len(top.neuron.META["params"]))
    per_route = hyprgen.HYPR(net, chunk=5)
    per_route.shared_memory = False   # the general form, for the comparison
    assert per_route.carried_bytes(B) - hyprgen.HYPR(net, chunk=5).carried_bytes(B) == saved


def test_only_readouts_whose_jacobians_are_one_value_share_the_trace():
    net = hyprgen.RSNN(3, 4, 2)
    assert not readout_jacobians_shared(net.layers[-1])            # one τ_out per readout neuron
    assert readout_jacobians_shared(shared(net).layers[-1])
    assert not hyprgen.HYPR(shared(net), readout_memory=False).shared_memory


def test_triton_equals_torch_with_one_trace():
    net, x = active_network("brf", T=11)
    net = shared(net).float()
    x, y = x.float(), cue_targets(x.shape[0], 11, net.n_out)
    ref = grads(hyprgen.HYPR(net, chunk=4), net, x, y)
    got = grads(hyprgen.HYPR(net, chunk=4, backend="triton"), net, x, y)
    for k in ref:
        assert rel_rms(got[k], ref[k]) < 1e-5, k


def test_streaming_with_lr_zero_carries_f_like_sequence_mode():
    """Streaming with no weight change: the sum of the per-chunk gradients (each chunk normalized by
    its own labelled steps, all equal here) is sequence mode's gradient times the chunk count."""
    net, x = active_network("brf", T=20)
    net = shared(net)
    y = torch.randint(0, net.n_out, (x.shape[0], 20))
    ref = grads(hyprgen.HYPR(net, chunk=5), net, x, y)
    learner = hyprgen.HYPR(net, chunk=5)
    net.zero_grad(set_to_none=True)
    for s in range(0, 20, 5):     # one chunk per call, .grad kept across calls (no optimizer)
        learner.stream(x[:, s:s + 5], y[:, s:s + 5], None)
    total = grads_of(net)
    assert_grads_close({k: v / 4 for k, v in total.items()}, ref, what="stream (K_κ = 1) vs sequence")
