"""HYPR (docs/hypr.md §4–5) against its independent references (§8), in float64."""
import pytest
import torch

import hyprgen
from hyprgen.runtime.neuron import resolve

from ..conftest import SHIPPED
from ..helpers import active_network, assert_grads_close, cue_targets, grads_of

T = 37  # odd, not a multiple of any λ below


def hypr_grads(net, x, y, chunk, loss="ce", mask=None, backend="torch", **options):
    net.zero_grad(set_to_none=True)
    result = hyprgen.HYPR(net, chunk=chunk, loss=loss, backend=backend, **options).step(x, y, mask=mask)
    return grads_of(net), result


# with and without the readout's memory in the learning signal (docs/hypr.md §3a; the LI readout's default)
MEMORY = pytest.mark.parametrize("readout_memory", [True, False], ids=["readout_memory", "same_step"])
# the generated torch stages, and the compiled C kernels of the cpu target (float64 here)
BACKENDS = pytest.mark.parametrize("backend", ["torch", "cpu"])


def assert_outputs_match(got, ref, backend: str) -> None:
    """The torch backend runs the network's own forward code: equal to the bit. The cpu target computes
    the same expressions in C (another evaluation order, libm and FMA contraction): equal to rounding."""
    tol = 0 if backend == "torch" else 1e-12
    torch.testing.assert_close(got, ref, rtol=tol, atol=tol * ref.abs().max().item())


@BACKENDS
@MEMORY
@pytest.mark.parametrize("neuron", SHIPPED)
def test_gradient_does_not_depend_on_chunk_length(neuron, readout_memory, backend):
    net, x = active_network(neuron, T=T)   # two recurrent hidden layers, LI readout
    y = cue_targets(x.shape[0], T, net.n_out)
    ref, ref_result = hypr_grads(net, x, y, chunk=T, readout_memory=readout_memory, backend=backend)
    for chunk in (1, 3, 7):
        got, result = hypr_grads(net, x, y, chunk, readout_memory=readout_memory, backend=backend)
        assert_grads_close(got, ref, what=f"{neuron} λ={chunk} vs λ=T ({backend})")
        # a chunk boundary changes nothing in the forward, on either backend
        torch.testing.assert_close(result.outputs, ref_result.outputs, rtol=0, atol=0)


@BACKENDS
@MEMORY
@pytest.mark.parametrize("neuron", SHIPPED)
def test_hypr_equals_per_step_eprop_with_autograd_jacobians(neuron, readout_memory, backend):
    net, x = active_network(neuron, T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    got, result = hypr_grads(net, x, y, chunk=7, readout_memory=readout_memory, backend=backend)
    net.zero_grad(set_to_none=True)
    oracle = hyprgen.EProp(net, jacobians="autograd", readout_memory=readout_memory).step(x, y)
    assert_grads_close(got, grads_of(net), what=f"{neuron} HYPR ({backend}) vs EProp(autograd)")
    torch.testing.assert_close(result.loss, oracle.loss, rtol=1e-12, atol=0)
    assert_outputs_match(result.outputs, oracle.outputs, backend)


def test_eprop_generated_equals_eprop_autograd():
    net, x = active_network("alif", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    hyprgen.EProp(net, jacobians="generated").step(x, y)
    got = grads_of(net)
    net.zero_grad(set_to_none=True)
    hyprgen.EProp(net, jacobians="autograd").step(x, y)
    assert_grads_close(got, grads_of(net), what="EProp generated vs autograd")


@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("neuron", ["brf", "alif", "se_adlif"])
def test_hypr_equals_bptt_of_the_detached_graph(neuron, loss):
    net, x = active_network(neuron, hidden=(7,), readout="linear", T=T)
    if loss == "ce":
        y = cue_targets(x.shape[0], T, net.n_out)
    else:
        y = torch.randn(x.shape[0], T, net.n_out, dtype=torch.float64)
    got, _ = hypr_grads(net, x, y, chunk=5, loss=loss)
    net.zero_grad(set_to_none=True)
    hyprgen.BPTT(net, loss=loss, detach_recurrent=True).step(x, y)
    assert_grads_close(got, grads_of(net), what=f"{neuron} HYPR vs detached BPTT")


@pytest.mark.parametrize("masked", [False, True], ids=["all_steps", "masked"])
@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("neuron", ["brf", "alif", "se_adlif"])
def test_readout_memory_equals_bptt_of_the_detached_graph_under_an_li_readout(neuron, loss, masked):
    """docs/hypr.md §3a: with one recurrent hidden layer and an LI readout, keeping the readout's memory
    leaves out only the paths through W_rec's input, so HYPR is autograd BPTT with o^{t-1} detached
    in I^t; the paper's same-step rule is not (the readout's leak carries the rest)."""
    net, x = active_network(neuron, hidden=(7,), readout="li", T=T)
    gen = torch.Generator().manual_seed(3)
    if loss == "ce":
        y, mask = cue_targets(x.shape[0], T, net.n_out), None
        if masked:
            y[torch.rand(y.shape, generator=gen) < 0.3] = -100
    else:
        y = torch.randn(x.shape[0], T, net.n_out, dtype=torch.float64, generator=gen)
        mask = torch.rand(x.shape[0], T, generator=gen) > 0.3 if masked else None
    got, _ = hypr_grads(net, x, y, chunk=5, loss=loss, mask=mask)
    net.zero_grad(set_to_none=True)
    hyprgen.BPTT(net, loss=loss, detach_recurrent=True).step(x, y, mask=mask)
    ref = grads_of(net)
    assert_grads_close(got, ref, what=f"{neuron} HYPR (readout memory) vs detached BPTT")
    same_step, _ = hypr_grads(net, x, y, chunk=5, loss=loss, mask=mask, readout_memory=False)
    W = "layers.0.W_in"
    assert (same_step[W] - ref[W]).abs().max() > 1e-3 * ref[W].abs().max()   # the memory is not negligible here


def test_readout_memory_changes_nothing_without_a_readout_state():
    """A linear readout has no memory: both rules give the same gradient, bit for bit."""
    net, x = active_network("brf", readout="linear", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    with_memory, _ = hypr_grads(net, x, y, chunk=5, readout_memory=True)
    same_step, _ = hypr_grads(net, x, y, chunk=5, readout_memory=False)
    assert all(torch.equal(with_memory[k], same_step[k]) for k in same_step)


def test_drop_spike_paths_equals_bptt_with_own_spike_detached():
    """drop_spike_paths (the authors' release, docs/hypr.md §7) = autograd BPTT of the detached graph in
    which each neuron's carried previous spike z^{t-1} is detached too; and it changes ALIF's gradient."""
    net, x = active_network("alif", hidden=(7,), readout="linear", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    net.zero_grad(set_to_none=True)
    hyprgen.HYPR(net, chunk=5, drop_spike_paths=True).step(x, y)
    got = grads_of(net)
    layer, readout = net.layers
    z = layer.neuron.META["carried"].index("z")
    net.zero_grad(set_to_none=True)
    with torch.enable_grad():
        ff, theta, state = layer.feedforward(x.transpose(0, 1)), layer.params_tuple(), layer.init_state(x.shape[0])
        r, o, outs = state.r, state.o, []
        for t in range(T):
            r = tuple(c.detach() if k == z else c for k, c in enumerate(r))
            r, o = layer.neuron.step_autograd(r, layer.current(ff[t], o, detach_recurrent=True), theta)
            outs.append(o)
        out = readout.feedforward(torch.stack(outs)).transpose(0, 1)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, net.n_out), y.reshape(-1), reduction="sum")
        (loss / (y != -100).sum()).backward()
    assert_grads_close(got, grads_of(net), what="drop_spike_paths vs BPTT with z detached")
    kept, _ = hypr_grads(net, x, y, chunk=5)
    assert (kept["layers.0.theta.tau_a"] - got["layers.0.theta.tau_a"]).abs().max() > 1e-3 * got["layers.0.theta.tau_a"].abs().max()


def test_hypr_differs_from_full_bptt():
    """Without the detachment BPTT has paths HYPR drops (docs/hypr.md §8): the gap must be visible."""
    net, x = active_network("brf", hidden=(7,), readout="linear", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    got, _ = hypr_grads(net, x, y, chunk=5)
    net.zero_grad(set_to_none=True)
    hyprgen.BPTT(net).step(x, y)
    ref = grads_of(net)
    gap = (got["layers.0.W_rec"] - ref["layers.0.W_rec"]).norm() / ref["layers.0.W_rec"].norm()
    assert gap > 1e-3


def test_mask_and_mse_reduction_match_autograd():
    """MSE with a mask: HYPR's loss equals the documented reduction computed directly."""
    net, x = active_network("lif", T=T)
    target = torch.randn(x.shape[0], T, net.n_out, dtype=torch.float64)
    mask = torch.rand(x.shape[0], T) > 0.5
    result = hyprgen.HYPR(net, chunk=4, loss="mse").step(x, target, mask=mask)
    y, _ = net(x)
    expected = (((y - target) ** 2) * mask[..., None]).sum() / (mask.sum() * net.n_out)
    torch.testing.assert_close(result.loss, expected, rtol=1e-12, atol=0)


def test_streaming_forward_equals_one_pass():
    net, x = active_network("alif", T=T)
    y_full, state_full = net(x)
    state, pieces = None, []
    for s in (0, 5, 6, 20):  # uneven pieces
        e = {0: 5, 5: 6, 6: 20, 20: T}[s]
        y, state = net(x[:, s:e], state)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, 1), y_full, rtol=0, atol=0)
    # HYPR's streaming mode without an optimizer runs the same forward (the torch backend's: the same code)
    learner = hyprgen.HYPR(net, chunk=4, backend="torch")
    y_ce = cue_targets(x.shape[0], T, net.n_out)
    outs = [learner.stream(x[:, s:e], y_ce[:, s:e], None).outputs for s, e in ((0, 10), (10, 11), (11, T))]
    torch.testing.assert_close(torch.cat(outs, 1), y_full, rtol=0, atol=0)


def test_streaming_with_a_single_chunk_per_call_equals_sequence_mode_gradient():
    """With λ ≥ T and one call, streaming mode is sequence mode (same normalizer, one chunk)."""
    net, x = active_network("brf", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    ref, _ = hypr_grads(net, x, y, chunk=T)
    net.zero_grad(set_to_none=True)
    hyprgen.HYPR(net, chunk=T).stream(x, y, None)
    assert_grads_close(grads_of(net), ref, what="stream vs sequence")


def test_streaming_steps_the_optimizer_every_chunk():
    net, x = active_network("lif", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    steps = []
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    opt.step = lambda *a, **k: steps.append(1)
    hyprgen.HYPR(net, chunk=10).stream(x, y, opt)
    assert len(steps) == 4  # chunks of 10, 10, 10, 7


def test_clamp_is_applied_after_optimizer_steps():
    net, x = active_network("brf", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    omega = net.layers[0].theta["omega"]
    opt = torch.optim.SGD(net.parameters(), lr=1e9)  # huge step: clamps must hold
    hyprgen.HYPR(net, chunk=8).step(x, y, opt)
    lo, hi = next(p["clamp"] for p in net.layers[0].neuron.META["params"] if p["name"] == "omega")
    assert omega.min() >= lo and omega.max() <= hi
    assert torch.isfinite(omega).all()


# ---- bad input ----------------------------------------------------------------------------------

def test_bad_inputs_give_clear_errors():
    net, x = active_network("lif", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    learner = hyprgen.HYPR(net, chunk=4)
    with pytest.raises(ValueError, match=r"\[B, T, n_in=3\]"):
        learner.step(x[0], y)
    with pytest.raises(ValueError, match="n_in=3"):
        learner.step(x[..., :2], y)
    with pytest.raises(ValueError, match="long tensor"):
        learner.step(x, y.double())
    with pytest.raises(ValueError, match=r"\[B=3, T=37\]"):
        learner.step(x, y[:2])
    with pytest.raises(ValueError, match="class indices outside"):
        learner.step(x, torch.full_like(y, 7))
    bad = x.clone()
    bad[1, 4, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        learner.step(bad, y)
    with pytest.raises(ValueError, match="float64"):
        learner.step(x.float(), y)
    for chunk in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="chunk"):
            hyprgen.HYPR(net, chunk=chunk)
    with pytest.raises(ValueError, match="unknown loss"):
        hyprgen.HYPR(net, loss="hinge")
    learner.stream(x, y, None)
    with pytest.raises(ValueError, match="batch size"):
        learner.stream(x[:2], y[:2], None)


def test_module_from_another_hyprgen_version_is_rejected():
    import types

    mod = resolve("lif")
    fake = types.ModuleType("old_lif")
    fake.__dict__.update({k: getattr(mod, k) for k in ("init_state", "step", "step_autograd", "step_with_jacobians")})
    fake.META = dict(mod.META, hyprgen_version="0.0.1")
    with pytest.raises(hyprgen.errors.HyprgenError, match="generated by hyprgen 0.0.1.*rebuild"):
        hyprgen.RSNN(3, [4], 2, neuron=fake)
    with pytest.raises(hyprgen.errors.HyprgenError, match="not a hyprgen neuron module"):
        hyprgen.RSNN(3, [4], 2, neuron=types.ModuleType("empty"))


def test_stream_state_round_trip_resumes_exactly():
    """A stream saved with stream_state() and restored into a fresh learner continues identically."""
    import copy

    net, x = active_network("alif", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    first = hyprgen.HYPR(net, chunk=5)
    first.stream(x[:, :20], y[:, :20], None)
    saved = copy.deepcopy(first.stream_state())
    net.zero_grad(set_to_none=True)
    expected = first.stream(x[:, 20:], y[:, 20:], None)
    expected_grads = grads_of(net)
    net.zero_grad(set_to_none=True)
    resumed = hyprgen.HYPR(net, chunk=5)
    resumed.load_stream_state(saved)
    got = resumed.stream(x[:, 20:], y[:, 20:], None)
    torch.testing.assert_close(got.outputs, expected.outputs, rtol=0, atol=0)
    assert_grads_close(grads_of(net), expected_grads, rel=0, what="resumed stream")


def test_carried_bytes_is_the_memory_model():
    """HYPR.carried_bytes = docs/hypr.md §6 per layer: ε B·n·d·m, ε_b B·n·d, Θ B·n·d·p, state B·n·(d+1);
    with readout memory (§3a) every hidden layer adds G, G_b, G_θ: R·B·n·(m + 1 + p), R = n_out·d_readout."""
    net = hyprgen.RSNN(5, [7, 6], 3, neuron=["brf", "alif"], readout="li")
    B, R = 4, 3 * 1
    expected = memory = 0
    for layer in net.layers:
        n, d, m, p = layer.n, layer.d, layer.m, len(layer.neuron.META["params"])
        expected += 4 * (B * n * d * m + B * n * d + B * n * d * p + B * n * (d + 1))
        if layer is not net.layers[-1]:
            memory += 4 * R * B * n * (m + 1 + p)
    assert hyprgen.HYPR(net, chunk=5, readout_memory=False).carried_bytes(B) == expected
    assert hyprgen.HYPR(net, chunk=5).carried_bytes(B) == expected + memory   # the default under an LI readout


# -- sequences in pieces (step_pieces) ----------------------------------------------------------

PIECE_ENDS = (5, 6, 20, T)  # uneven, not multiples of λ


def pieces_of(*tensors):
    starts = (0,) + PIECE_ENDS[:-1]
    return [tuple(t[:, s:e] for t in tensors) for s, e in zip(starts, PIECE_ENDS)]


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_step_pieces_equals_step_on_the_whole_sequence(loss):
    """Default normalizer (counted over all pieces, applied at the end) and the mask included."""
    net, x = active_network("alif", T=T)
    mask = torch.rand(x.shape[0], T, generator=torch.Generator().manual_seed(3)) < 0.7
    if loss == "ce":
        target = cue_targets(x.shape[0], T, net.n_out)
        pieces = pieces_of(x, target)
        full = dict(mask=None)
    else:
        target = torch.randn(x.shape[0], T, net.n_out, dtype=torch.float64)
        pieces = pieces_of(x, target, mask)
        full = dict(mask=mask)
    net.zero_grad(set_to_none=True)
    ref = hyprgen.HYPR(net, chunk=4, loss=loss).step(x, target, **full)
    ref_grads = grads_of(net)
    net.zero_grad(set_to_none=True)
    got = hyprgen.HYPR(net, chunk=4, loss=loss).step_pieces(iter(pieces), keep_outputs=True)
    assert_grads_close(grads_of(net), ref_grads, what=f"step_pieces vs step ({loss})")
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-12, atol=0)
    torch.testing.assert_close(got.outputs, ref.outputs, rtol=0, atol=0)


def test_step_pieces_adds_to_existing_gradients_and_steps_the_optimizer():
    net, x = active_network("brf", T=T)
    target = cue_targets(x.shape[0], T, net.n_out)
    net.zero_grad(set_to_none=True)
    hyprgen.HYPR(net, chunk=7).step(x, target)
    once = grads_of(net)
    hyprgen.HYPR(net, chunk=7).step_pieces(pieces_of(x, target))  # default normalizer: .grad set aside
    for name, g in grads_of(net).items():
        torch.testing.assert_close(g, 2 * once[name], rtol=1e-10, atol=1e-14, msg=name)
    # an explicit normalizer N: the gradient of Σ loss / N = once · (labelled steps) / N; one SGD step
    w0 = {n: p.detach().clone() for n, p in net.named_parameters()}
    N = float(x.shape[0] * T)
    scale = float((target != -100).sum()) / N
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    result = hyprgen.HYPR(net, chunk=7).step_pieces(pieces_of(x, target), opt, normalizer=N)
    assert result.outputs is None
    for n, p in net.named_parameters():
        if once[n] is not None:
            torch.testing.assert_close(p.detach(), w0[n] - 0.5 * scale * once[n], rtol=1e-10, atol=1e-14, msg=n)


def test_step_pieces_rejects_bad_pieces():
    net, x = active_network("lif", T=T)
    target = cue_targets(x.shape[0], T, net.n_out)
    learner = hyprgen.HYPR(net, chunk=4)
    with pytest.raises(ValueError, match="no pieces"):
        learner.step_pieces([])
    with pytest.raises(hyprgen.errors.ShapeError, match="piece 1 has batch size 2"):
        learner.step_pieces([(x[:, :5], target[:, :5]), (x[:2, 5:], target[:2, 5:])])
    with pytest.raises(hyprgen.errors.ShapeError, match="piece 0 must be a tuple"):
        learner.step_pieces([x])
    with pytest.raises(hyprgen.errors.ShapeError, match="target"):
        learner.step_pieces([(x, target[:, :3])])


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_streaming_loss_is_the_mean_over_labelled_steps(loss):
    """The stream's reported loss is that of its outputs over the labelled steps only (as `step`
    normalizes), computed here from the returned outputs with torch's own losses; chunks without a
    label used to count as 0 (half the true loss on the cue stream)."""
    net, x = active_network("lif", T=T)
    B, n_out = x.shape[0], net.n_out
    if loss == "ce":
        target, mask = cue_targets(B, T, n_out), None
        target[:, :T - 5] = -100                                      # labels only in the last 5 steps
    else:
        target = torch.rand(B, T, n_out, dtype=x.dtype)
        mask = torch.zeros(B, T, dtype=torch.bool)
        mask[:, -3:] = True
    learner = hyprgen.HYPR(net, chunk=4, loss=loss)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    result = learner.stream(x, target, opt, mask=mask)
    y = result.outputs
    if loss == "ce":
        expected = torch.nn.functional.cross_entropy(y.reshape(-1, n_out), target.reshape(-1), ignore_index=-100)
    else:
        expected = torch.nn.functional.mse_loss(y[mask], target[mask])
    torch.testing.assert_close(result.loss, expected, rtol=1e-10, atol=0)


def test_one_sweep_over_stacked_lanes_splits_into_the_separate_sweeps():
    """HYPR runs a layer's signal and its route signals (readout memory) as one P-stage over stacked
    lanes; split back, each part is the sweep of its own lanes, bit for bit."""
    from dataclasses import fields

    from hyprgen.ops.p_stage import ChunkSweep, p_stage_torch
    from hyprgen.ops.readout_memory import stacked
    assert set(ChunkSweep.BATCH_AXIS) == {f.name for f in fields(ChunkSweep)}
    net, x = active_network("alif", T=T)
    layer, gen = net.layers[0], torch.Generator().manual_seed(5)
    lam, B, n = 6, x.shape[0], layer.n
    r = tuple(torch.randn(lam, B, n, generator=gen, dtype=torch.float64) for _ in range(layer.d))
    current, theta = torch.randn(lam, B, n, generator=gen, dtype=torch.float64), layer.params_tuple()
    signals = torch.randn(lam, 3 * B, n, generator=gen, dtype=torch.float64)   # B own lanes + 2 routes
    both, _ = p_stage_torch(layer.neuron, tuple(stacked(t, 3, 1) for t in r), stacked(current, 3, 1), signals, theta)
    first, rest = both.split_lanes(B)
    own, _ = p_stage_torch(layer.neuron, r, current, signals[:, :B], theta)
    routes, _ = p_stage_torch(layer.neuron, tuple(stacked(t, 2, 1) for t in r), stacked(current, 2, 1),
                              signals[:, B:], theta)
    for name in ChunkSweep.BATCH_AXIS:
        assert torch.equal(getattr(first, name), getattr(own, name)), name
        assert torch.equal(getattr(rest, name), getattr(routes, name)), name


@BACKENDS
def test_a_sequence_recycles_its_traces_and_a_stream_never_overwrites_its_saved_state(backend):
    """Within one call each merge writes ε^λ into the ε^0 of the chunk before (runtime/hypr.py
    `_spare_traces`): after the first chunk no ε is allocated (the second takes the zeros the call
    started from); the cpu stages merge in place, so one buffer serves the whole call, from the zeros
    on. The traces a stream holds between calls (what stream_state() hands a checkpoint) are never
    written by the next call."""
    net, x = active_network("brf", T=T)
    y = cue_targets(x.shape[0], T, net.n_out)
    learner = hyprgen.HYPR(net, chunk=5, backend=backend, readout_memory=False)
    buffers = []   # (ε^0, out, ε^λ) of the first hidden layer, per chunk
    merge = learner.stages[0].merge

    def spy(traces, sweep, pre, out=None):
        grad, new = merge(traces, sweep, pre, out=out)
        buffers.append((traces.eps.data_ptr(), None if out is None else out.data_ptr(), new.eps.data_ptr()))
        return grad, new

    learner.stages[0].merge = spy
    learner.step(x, y)
    chunks = -(-T // 5)
    assert len(buffers) == chunks
    if learner.stages[0].MERGES_IN_PLACE:
        assert all(out == eps0 == new == buffers[0][0] for eps0, out, new in buffers)
    else:
        assert [out is None for _, out, _ in buffers] == [True] + [False] * (chunks - 1)
        assert all(out == buffers[c - 1][0] for c, (_, out, _) in enumerate(buffers) if c >= 1)
        assert len({new for *_, new in buffers}) == 2   # two buffers in turn
    learner.stream(x[:, :20], y[:, :20], None)
    saved = learner.stream_state()
    kept = [t.clone() for t in saved["traces"][0]]
    learner.stream(x[:, 20:], y[:, 20:], None)   # four chunks
    assert all(torch.equal(a, b) for a, b in zip(saved["traces"][0], kept))
