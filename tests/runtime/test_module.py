"""An RSNN behaves like an nn.Module: deepcopy, torch.save of the whole network and pickling into a
fresh process give a network whose forward equals the original's (the layers hold their neuron by
name or spec path, re-resolved on unpickling); torch.autocast around HYPR; the loss compiles in one
graph."""
import copy
import io
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hyprgen
from hyprgen import loader, paths
from hyprgen.errors import HyprgenError
from hyprgen.runtime import losses
from hyprgen.runtime.network import PICKLE_GLOBALS, LinearNeuron

from ..helpers import active_network, assert_grads_close, cue_targets, grads_of

ROOT = Path(__file__).parents[2]


def user_spec(folder: Path) -> Path:
    """A user neuron: the shipped LIF renamed, in a spec file of its own."""
    path = folder / "my_lif.py"
    path.write_text((paths.neurons_dir() / "lif.py").read_text().replace('Neuron("lif"', 'Neuron("my_lif"'))
    return path


NETWORKS = {
    "shipped": lambda tmp: hyprgen.RSNN(5, [6, 4], 3, neuron="brf", seed=0),
    "shipped_module": lambda tmp: hyprgen.RSNN(5, [6], 3, neuron=hyprgen.load("alif"), readout="linear", seed=0),
    "user_spec": lambda tmp: hyprgen.RSNN(5, [6], 3, neuron=str(user_spec(tmp)), seed=0),
    "user_module": lambda tmp: hyprgen.RSNN(5, [6], 3, neuron=hyprgen.load(user_spec(tmp)), shared_readout=True,
                                            seed=0),
}


def outputs(net, x):
    with torch.no_grad():
        return net(x)[0]


@pytest.fixture(params=NETWORKS, ids=list(NETWORKS))
def network(request, tmp_path):
    torch.manual_seed(1)
    return NETWORKS[request.param](tmp_path), torch.rand(2, 9, 5)


def test_deepcopy_gives_an_equal_independent_network(network):
    net, x = network
    twin = copy.deepcopy(net)
    torch.testing.assert_close(outputs(twin, x), outputs(net, x), rtol=0, atol=0)
    for copied, layer in zip(twin.layers, net.layers):   # the same generated module (not re-imported)
        assert copied.neuron is layer.neuron or isinstance(copied.neuron, LinearNeuron)
    with torch.no_grad():
        twin.layers[0].W_in.add_(1.0)
    assert not torch.equal(twin.layers[0].W_in, net.layers[0].W_in)


def test_whole_network_save_and_load(network):
    net, x = network
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(outputs(loaded, x), outputs(net, x), rtol=0, atol=0)


def test_whole_network_load_with_weights_only_and_the_safe_globals(network):
    net, x = network
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    with pytest.raises(Exception, match="weights_only"):
        torch.load(buffer, weights_only=True)
    buffer.seek(0)
    with torch.serialization.safe_globals(PICKLE_GLOBALS):
        loaded = torch.load(buffer, weights_only=True)
    torch.testing.assert_close(outputs(loaded, x), outputs(net, x), rtol=0, atol=0)


def test_a_state_dict_round_trip_still_needs_no_unpickling(network):
    net, x = network
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(outputs(twin, x), outputs(net, x), rtol=0, atol=0)


def unpickle_in_a_fresh_process(net, x, folder: Path) -> subprocess.CompletedProcess:
    """pickle.loads of `net` in a new Python that has loaded no neuron module, then its forward on x
    compared with this process's (torch.equal)."""
    torch.save({"net": pickle.dumps(net), "x": x, "y": outputs(net, x)}, folder / "sent.pt")
    script = f"""
import pickle, sys, torch
sent = torch.load({str(folder / 'sent.pt')!r}, weights_only=True)
assert not any(name.startswith(("hyprgen.generated.", "hyprgen_cache_")) for name in sys.modules)
net = pickle.loads(sent["net"])
with torch.no_grad():
    y = net(sent["x"])[0]
assert torch.equal(y, sent["y"]), (y - sent["y"]).abs().max()
print("forward equal")
"""
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["shipped", "user_spec"])
def test_unpickled_in_a_fresh_process_that_never_loaded_the_neuron(kind, tmp_path):
    torch.manual_seed(1)
    done = unpickle_in_a_fresh_process(NETWORKS[kind](tmp_path), torch.rand(2, 9, 5), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "forward equal" in done.stdout


def test_unpickling_refuses_a_spec_that_changed(tmp_path):
    """Another process re-resolves the spec path: a spec edited since gives another neuron, refused."""
    net = NETWORKS["user_spec"](tmp_path)
    spec = tmp_path / "my_lif.py"
    saved = pickle.dumps(net)
    spec.write_text(spec.read_text().replace("uniform(5, 25)", "uniform(5, 30)"))
    (tmp_path / "saved.pkl").write_bytes(saved)
    script = f"import pickle; pickle.loads(open({str(tmp_path / 'saved.pkl')!r}, 'rb').read())"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "changed since the network was pickled" in done.stderr and "state_dict" in done.stderr, done.stderr


def test_a_module_hyprgen_did_not_load_is_refused_when_pickled(tmp_path):
    """A generated module imported by hand (here: a copy of a shipped one) cannot be found again by an
    unpickling process: pickling says what to pass instead."""
    copied = tmp_path / "brf.py"
    copied.write_text((paths.generated_dir() / "brf.py").read_text())
    module = loader.import_file(copied, "by_hand_brf")
    try:
        net = hyprgen.RSNN(5, [6], 3, neuron=module, seed=0)
        with pytest.raises(HyprgenError, match=r"layer 0: .*'brf'.*not loaded by hyprgen.*neuron='brf'.*state_dict"):
            copy.deepcopy(net)
    finally:
        del sys.modules["by_hand_brf"]


# -- torch.autocast ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_hypr_refuses_autocast_in_one_line_and_leaves_the_gradients(dtype):
    """Autocast would round every synaptic current to bfloat16/float16 and so move spikes
    (benchmarks/autocast_spikes.py); HYPR says so before it touches .grad or the stream."""
    net, x = active_network("brf", hidden=(6,), dtype=torch.float32)
    y = cue_targets(x.shape[0], x.shape[1], net.n_out)
    learner = hyprgen.HYPR(net, chunk=4)
    learner.step(x, y)
    before = grads_of(net)
    for call in (lambda: learner.step(x, y), lambda: learner.step_pieces([(x, y)]),
                 lambda: learner.stream(x, y, None)):
        with torch.autocast("cpu", dtype=dtype), pytest.raises(ValueError) as refused:
            call()
        assert "\n" not in str(refused.value)
        assert "HYPR does not run under torch.autocast" in str(refused.value)
        assert "enabled=False" in str(refused.value)
        assert_grads_close(grads_of(net), before, rel=0)
    net.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=dtype), torch.autocast("cpu", enabled=False):   # what the message says
        learner.step(x, y)
    assert_grads_close(grads_of(net), before, rel=0)


# -- torch.compile -----------------------------------------------------------------------------------


def loss_cases():
    gen = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        y = torch.randn(3, 8, 4, generator=gen, dtype=dtype)
        yield "ce", y, cue_targets(3, 8, 4), None
        yield "ce", y, torch.full((3, 8), -100), None                       # nothing labelled: normalizer 1
        yield "mse", y, torch.randn(3, 8, 4, generator=gen, dtype=dtype), None
        yield "mse", y, torch.randn(3, 8, 4, generator=gen, dtype=dtype), torch.rand(3, 8, generator=gen) > 0.5


def test_the_mean_loss_compiles_in_one_graph_and_is_the_eager_loss_to_the_bit():
    """losses.mean_loss (BPTT's loss, the evaluation's) has no .item(): torch.compile captures it whole
    (fullgraph=True raises at a graph break); value and gradient are those of loss_sum / default_normalizer."""
    compiled = torch.compile(losses.mean_loss, fullgraph=True, backend="eager")
    for kind, y, target, mask in loss_cases():
        y_old, y_new = y.clone().requires_grad_(), y.clone().requires_grad_()
        old = losses.loss_sum(kind, y_old, target, mask) / losses.default_normalizer(kind, target, mask, y.shape[-1])
        new = losses.mean_loss(kind, y_new, target, mask)
        old.backward()
        new.backward()
        assert new.dtype == old.dtype and torch.equal(new, old), (kind, new, old)
        assert torch.equal(y_new.grad, y_old.grad)
        assert torch.equal(compiled(kind, y, target, mask), old.detach())


def inference_network():
    net, x = active_network("brf", hidden=(6,), T=13, dtype=torch.float32)
    return net, x


def assert_forward_equal(got, ref):
    (y, state), (y_ref, state_ref) = got, ref
    assert torch.equal(y, y_ref)
    for s, s_ref in zip(state, state_ref):
        assert torch.equal(s.o, s_ref.o) and all(torch.equal(a, b) for a, b in zip(s.r, s_ref.r))


@pytest.mark.parametrize("how", ["torch.compile", "RSNN.compile"])
def test_the_inference_forward_compiles_in_one_graph(how):
    """No graph break in RSNN.forward (the input's NaN check is skipped when compiled): fullgraph=True
    compiles, unrolled (torch.compile(net)) or as one scan per layer (net.compile()); with aot_eager
    (dynamo and AOT autograd, no code generation) the outputs and states are the eager ones to the bit."""
    net, x = inference_network()
    with torch.no_grad():
        explained = torch._dynamo.explain(net)(x)
        assert explained.graph_break_count == 0, explained.break_reasons
        reference = net(x)
        if how == "torch.compile":
            compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
        else:
            net.compile(backend="aot_eager")
            compiled = net
        assert_forward_equal(compiled(x), reference)


def captured_sizes(compile_, lengths) -> list[int]:
    """The number of nodes in the graph dynamo captures for each sequence length (static shapes)."""
    net, _ = inference_network()
    graphs = []
    compiled = compile_(net, lambda gm, inputs: graphs.append(gm) or gm.forward)
    with torch.no_grad():
        for T in lengths:
            compiled(torch.rand(2, T, net.n_in))
    return [len(gm.graph.nodes) for gm in graphs]


def test_compiled_by_rsnn_compile_the_graph_does_not_grow_with_t():
    """What the compile time follows: net.compile() captures a graph of one size for any T (each layer's
    steps one scan); torch.compile(net) unrolls the loop, a graph that grows with T."""
    def scanned(net, backend):
        net.compile(backend=backend, dynamic=False)
        return net

    sizes = captured_sizes(scanned, (5, 40))
    assert len(sizes) == 2 and sizes[0] == sizes[1], sizes
    unrolled = captured_sizes(lambda net, backend: torch.compile(net, backend=backend, dynamic=False), (5, 40))
    assert unrolled[1] > 5 * unrolled[0], unrolled


def test_rsnn_compile_with_gradients_unrolls_and_a_copy_is_not_compiled():
    net, x = inference_network()
    y_ref = net(x)[0]
    net.compile(backend="aot_eager")
    assert torch.equal(net(x)[0], y_ref)          # gradients on: the unrolled loop
    twin = copy.deepcopy(net)
    assert twin._compiled_call_impl is None and not twin._scan_when_compiled
    with torch.no_grad():
        assert torch.equal(twin(x)[0], y_ref)


def test_the_inductor_compiled_inference_forward_equals_the_eager_one():
    """torch's scan is a prototype: the code inductor generates for it (net.compile(), the default
    backend) is checked against the eager loop."""
    net, x = inference_network()
    with torch.no_grad():
        reference = net(x)
        net.compile()
        assert_forward_equal(net(x), reference)
