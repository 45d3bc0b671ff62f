"""Every shipped neuron's generated C kernels (the cpu target) against the torch backend, output by output.

S-stage (the neuron step, with the recurrent GEMM between steps, and without recurrence one call per
chunk), P-stage and merge of CpuStages against TorchStages (ops.s_stage_ref, the generated torch
`p_stage`, ops.merge_ref), in float64 (1e-12: the same maths in another evaluation order and libm)
and float32 (1e-5 relative RMS); the merge in both of merge_cpu's forms (fused, split). Odd sizes
(B=3, n=37, n_in=45, λ=7, T=50: the last chunk has one step, and a lane block of 37 neurons has a
vector tail); every output allocated NaN-filled, so an element a kernel leaves unwritten fails. Each
chunk starts both backends from the torch backend's state and sweep, so a difference cannot hide
behind (or be blamed on) an earlier chunk.
"""
import pytest
import torch

from hyprgen import loader
from hyprgen.runtime.stages import load_cpu_kernels
from hyprgen.ops import native
from hyprgen.ops.cpu_kernels import CpuKernels
from hyprgen.loader import load as load_neuron
from hyprgen.ops.merge import Traces, merge_cpu, merge_ref
from hyprgen.ops.p_stage import ChunkSweep
from hyprgen.runtime.stages import CpuStages, TorchStages

from ..conftest import SHIPPED
from ..helpers import active_network, assert_outputs_close

pytestmark = pytest.mark.skipif(native.compiler_problem() is not None, reason="no C compiler")

B, N, N_IN, LAM, T = 3, 37, 45, 7, 50
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}   # relative RMS error
DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])


def layer_setup(neuron: str, dtype, recurrent: bool = True):
    net, x = active_network(neuron, hidden=[N], n_in=N_IN, n_out=3, recurrent=recurrent, T=T, B=B)
    return net.to(dtype).layers[0], x.to(dtype).transpose(0, 1)


def chunks(layer, x):
    """(chunk start, the torch stages' S-stage output) for every chunk, from the torch backend's state."""
    state = layer.init_state(B)
    for s in range(0, T, LAM):
        outs, kept, after = TorchStages.s_stage(layer, x[s:s + LAM], state)
        yield s, state, (outs, kept, after)
        state = after


def s_stage_outputs(outs, kept, state) -> dict:
    return {"o": outs, "r_prev": kept.r_prev, "current": kept.current, "pre": kept.pre,
            "r_out": torch.stack(state.r), "o_out": state.o}


@DTYPES
@pytest.mark.parametrize("recurrent", [True, False], ids=["recurrent", "feedforward"])
@pytest.mark.parametrize("neuron", SHIPPED)
def test_s_stage(neuron, recurrent, dtype, nan_outputs):
    layer, x = layer_setup(neuron, dtype, recurrent)
    cpu, spikes = CpuStages(load_cpu_kernels(layer.neuron)), 0.0
    for s, state, ref in chunks(layer, x):
        got = cpu.s_stage(layer, x[s:s + LAM], state)
        assert_outputs_close(s_stage_outputs(*got), s_stage_outputs(*ref), TOL[dtype], f"{neuron} S-stage at {s}")
        spikes += ref[0].sum().item()
    assert spikes > 0 or layer.neuron.META["output"] != "spike", "no spikes: the comparison would be vacuous"


@DTYPES
@pytest.mark.parametrize("neuron", SHIPPED)
def test_p_stage_and_merge(neuron, dtype, nan_outputs):
    """q^0, g^τ, E^τ, Φ^{λ:1}, θ terms and λ^τγ^τ of every chunk; then the merge of random traces with
    the torch sweep (ΔW, Δb, Δθ and the traces after the chunk)."""
    layer, x = layer_setup(neuron, dtype)
    cpu, torch_stages = CpuStages(load_cpu_kernels(layer.neuron)), TorchStages()
    gen = torch.Generator().manual_seed(1)
    fields = ("q0", "g", "E", "Phi", "theta_grad", "Theta_in")
    p = len(layer.neuron.META["params"])
    for s, _, (outs, kept, _) in chunks(layer, x):
        signal = torch.randn(outs.shape, generator=gen, dtype=dtype)
        ref, ref_sg = torch_stages.p_stage(layer, kept, signal)
        got, got_sg = cpu.p_stage(layer, kept, signal)
        assert_outputs_close({f: getattr(got, f) for f in fields} | {"signal_gamma": got_sg},
                             {f: getattr(ref, f) for f in fields} | {"signal_gamma": ref_sg},
                             TOL[dtype], f"{neuron} P-stage at {s}")
        traces = Traces(*(torch.randn(*shape, generator=gen, dtype=dtype) for shape in
                          ((B, N, layer.d, layer.m), (B, N, layer.d), (B, N, layer.d, p))))
        ref_grad, ref_traces = torch_stages.merge(traces, ref, kept.pre)
        for fused in (False, True) if layer.d else (False,):   # both forms of merge_cpu, whatever λ
            grad, new = merge_cpu(cpu.kernels, traces, ref, kept.pre, fused=fused)
            assert_outputs_close({"W": grad.W, "b": grad.b, "theta": grad.theta, "eps": new.eps, "eps_b": new.eps_b,
                                  "Theta": new.Theta},
                                 {"W": ref_grad.W, "b": ref_grad.b, "theta": ref_grad.theta, "eps": ref_traces.eps,
                                  "eps_b": ref_traces.eps_b, "Theta": ref_traces.Theta}, TOL[dtype],
                                 f"{neuron} merge ({'fused' if fused else 'split'}) at {s}")


def test_a_wrong_tensor_is_refused_before_the_kernel_sees_it():
    """ctypes passes raw pointers: a wrong dtype or layout would be memory corruption, so it is an error."""
    layer, x = layer_setup("lif", torch.float64)
    kernels = load_cpu_kernels(layer.neuron)
    ff = layer.feedforward(x[:LAM])
    r0, o0, theta = torch.stack(layer.init_state(B).r), torch.zeros(B, N, dtype=torch.float64), \
        torch.stack(layer.params_tuple())
    from hyprgen.errors import HyprgenError
    from hyprgen.ops.s_stage import s_stage_cpu
    with pytest.raises(HyprgenError, match="theta must be a contiguous CPU torch.float64 tensor, got torch.float32"):
        s_stage_cpu(kernels, ff, None, r0, o0, theta.float())
    with pytest.raises(HyprgenError, match="computes in float32 or float64, not torch.float16"):
        kernels.function("p_stage", torch.float16)


@pytest.mark.parametrize("stages", ["torch", "cpu split", "cpu fused"])
def test_merge_into_a_given_buffer_equals_a_fresh_one_and_refuses_an_alias(stages):
    """merge(..., out=spare): ε^λ written into a buffer the learner recycles (runtime/hypr.py
    `_spare_traces`), NaN-filled here so that an element left unwritten fails; the same traces as a
    fresh buffer gets. out may not be misshapen, nor overlap ε^0 (the merge reads it while writing),
    except that the cpu merge may write over ε^0 itself (in place)."""
    layer, x = layer_setup("brf", torch.float64)
    impl = TorchStages()
    if stages != "torch":
        kernels = load_cpu_kernels(layer.neuron)
        impl.merge = lambda *args, **kw: merge_cpu(kernels, *args, **kw, fused=stages == "cpu fused")
    gen = torch.Generator().manual_seed(2)
    _, state, (outs, kept, _) = next(chunks(layer, x))
    sweep, _ = impl.p_stage(layer, kept, torch.randn(outs.shape, generator=gen, dtype=torch.float64))
    p = len(layer.neuron.META["params"])
    traces = Traces(*(torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in
                      ((B, N, layer.d, layer.m), (B, N, layer.d), (B, N, layer.d, p))))
    ref_grad, ref_traces = impl.merge(traces, sweep, kept.pre)
    spare = torch.full_like(traces.eps, float("nan"))
    grad, new = impl.merge(traces, sweep, kept.pre, out=spare)
    assert new.eps.data_ptr() == spare.data_ptr()
    assert torch.equal(new.eps, ref_traces.eps) and torch.equal(grad.W, ref_grad.W)
    if stages == "torch":
        with pytest.raises(ValueError, match="shares memory with the traces"):
            impl.merge(traces, sweep, kept.pre, out=traces.eps)
    else:   # merge_cpu writes ε^λ over ε^0 itself; any other overlap is refused
        storage = torch.cat([traces.eps.flatten(), traces.eps.flatten()[:1]])   # ε^0, then one value more
        eps0, shifted = (storage[k:k + traces.eps.numel()].view_as(traces.eps) for k in (0, 1))
        with pytest.raises(ValueError, match="shares memory with the traces"):
            impl.merge(Traces(eps0, traces.eps_b, traces.Theta), sweep, kept.pre, out=shifted)
        own = traces.eps.clone()
        grad, new = impl.merge(Traces(own, traces.eps_b, traces.Theta), sweep, kept.pre, out=own)
        assert new.eps.data_ptr() == own.data_ptr()
        assert torch.equal(new.eps, ref_traces.eps) and torch.equal(grad.W, ref_grad.W)
    with pytest.raises(ValueError, match=r"out must be a contiguous torch.float64 tensor of ε's shape"):
        impl.merge(traces, sweep, kept.pre, out=spare.float())


def fused_merge_kernels(neuron: str, registers: str) -> CpuKernels:
    """A neuron's cpu kernels with the fused merge's tile for this machine ("native") or for 16 vector
    registers ("16 registers": the AVX2 and NEON branch, taken here by hiding AVX-512 from the file)."""
    module = load_neuron(neuron)
    if registers == "native":
        return load_cpu_kernels(module)
    source = "#undef __AVX512F__   /* tests: the tile for 16 vector registers */\n" + loader.cpu_source(module)
    return CpuKernels.load(module.META["name"], source, module.META["spec_hash"])


@DTYPES
@pytest.mark.parametrize("registers", ["native", "16 registers"])
@pytest.mark.parametrize("m", [1, 64, 127], ids=["m1", "m64", "m127"])
@pytest.mark.parametrize("neuron", ["li", "lif", "brf"], ids=["d1", "d2", "d3"])
def test_fused_merge_at_every_tile_boundary(neuron, m, registers, dtype, nan_outputs):
    """merge_cpu's fused form against merge_ref where its tiles end: m = 64 fills whole tiles at every
    vector width and d (no padded rest), m = 1 is only a rest, m = 127 both; n = 37 neurons end in a
    group smaller than a tile's; λ = 1, λ = 40 (longer than the p^τ rows a block of neurons keeps in
    L1) and λ = 130 (two blocks of HG_MERGE_STEPS = 128 steps, the second of 2). Both register
    budgets' tiles (their neurons per tile differ: fused_merge_tile_neurons)."""
    kernels = fused_merge_kernels(neuron, registers)
    d, p = kernels.D, kernels.P
    gen = torch.Generator().manual_seed(m)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=dtype)  # noqa: E731
    for lam in (1, 40, 130):
        traces = Traces(r(B, N, d, m), r(B, N, d), r(B, N, d, p))
        sweep = ChunkSweep(q0=r(B, N, d), g=r(lam, B, N), E=r(B, lam, N, d).transpose(0, 1), Phi=r(B, N, d, d),
                           theta_grad=r(B, N, p), Theta_in=r(B, N, d, p))
        pre = r(lam, B, m)
        (ref_grad, ref_traces), (grad, new) = merge_ref(traces, sweep, pre), merge_cpu(kernels, traces, sweep, pre,
                                                                                      fused=True)
        outputs = lambda grad, traces: {"W": grad.W, "b": grad.b, "theta": grad.theta, "eps": traces.eps,  # noqa: E731
                                        "eps_b": traces.eps_b, "Theta": traces.Theta}
        assert_outputs_close(outputs(grad, new), outputs(ref_grad, ref_traces), TOL[dtype],
                             f"{neuron} fused merge ({registers}), m = {m}, λ = {lam}")


@pytest.mark.parametrize("neuron", ["li", "brf_exp"])
def test_bias_and_parameter_gradients_that_cancel_over_samples_are_zero(neuron):
    """Samples alike but for their labels: two samples' terms and their negatives. Δb and Δθ are exactly
    0 in float32, as the torch reference gives, and as two processes summing their halves give
    (train/distributed.py). A 1-ulp residue here is what Adam turns into a step of lr/10 (a silent
    hidden layer under `hyprgen train`, tests/train/test_torchrun.py)."""
    kernels = load_cpu_kernels(load_neuron(neuron))
    d, p, lam, m = kernels.D, kernels.P, 8, 5
    gen = torch.Generator().manual_seed(3)
    r = lambda *s: torch.randn(*s, generator=gen) * 0.1  # noqa: E731
    signed = lambda x: torch.cat([x, x, -x, -x])          # noqa: E731  [2, ...] → [B = 4, ...]
    q0, eps_b = signed(r(1, N, d)), torch.cat([r(1, N, d)] * 4)
    g_half = r(lam, 1, N)
    g = torch.cat([g_half, g_half, -g_half, -g_half], 1)   # [λ, B = 4, n]
    traces = Traces(r(4, N, d, m), eps_b, torch.cat([r(1, N, d, p)] * 4))
    sweep = ChunkSweep(q0=q0, g=g, E=r(4, lam, N, d).transpose(0, 1), Phi=r(4, N, d, d),
                       theta_grad=signed(r(1, N, p)), Theta_in=r(4, N, d, p))
    ref, _ = merge_ref(traces, sweep, r(lam, 4, m))
    grad, _ = merge_cpu(kernels, traces, sweep, r(lam, 4, m))
    assert torch.equal(ref.b, torch.zeros(N)) and torch.equal(ref.theta, torch.zeros(N, p)), "the premise"
    assert torch.equal(grad.b, torch.zeros(N)), f"Δb left {grad.b.abs().max().item():.1e}"
    assert torch.equal(grad.theta, torch.zeros(N, p)), f"Δθ left {grad.theta.abs().max().item():.1e}"


@pytest.mark.parametrize("stages", ["cpu", "triton"])
def test_the_carried_state_holds_no_chunk_buffer(stages):
    """r^λ and o^λ, carried into the next chunk, are tensors of their own ([B, n] each), not views of
    the chunk's [λ+1, ...] buffers, which would stay alive beside the next chunk's (16 MiB at the brf
    suite's λ = 512)."""
    from hyprgen.runtime.stages import TritonStages
    from hyprgen.loader import load_kernels
    layer, x = layer_setup("brf", torch.float64 if stages == "cpu" else torch.float32)
    impl = CpuStages(load_cpu_kernels(layer.neuron)) if stages == "cpu" else TritonStages(load_kernels(layer.neuron))
    _, _, state = impl.s_stage(layer, x[:LAM], layer.init_state(B))
    d = len(state.r)   # r^λ is one [d, B, n] tensor, unbound
    for name, value, values in [("o", state.o, B * N)] + [(f"r[{k}]", r, d * B * N) for k, r in enumerate(state.r)]:
        assert value.untyped_storage().nbytes() == values * value.element_size(), f"{stages}: {name} is a view"


def test_p_stage_with_several_lane_blocks_per_sample(nan_outputs):
    """n = 259 neurons: two full lane blocks of HG_LANES = 128 and a rest of 3 per sample (the sizes
    above fit one block), in float64 against the torch P-stage, and the bias and parameter terms."""
    n, lam = 259, 3
    net, x = active_network("brf", hidden=[n], n_in=5, n_out=2, recurrent=True, T=2 * lam, B=2)
    layer, x = net.double().layers[0], x.double().transpose(0, 1)
    cpu, torch_stages = CpuStages(load_cpu_kernels(layer.neuron)), TorchStages()
    _, kept, _ = torch_stages.s_stage(layer, x[:lam], layer.init_state(2))
    signal = torch.randn(lam, 2, n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    (ref, ref_sg), (got, got_sg) = torch_stages.p_stage(layer, kept, signal), cpu.p_stage(layer, kept, signal)
    fields = ("q0", "g", "E", "Phi", "theta_grad", "Theta_in")
    assert_outputs_close({f: getattr(got, f) for f in fields} | {"signal_gamma": got_sg},
                         {f: getattr(ref, f) for f in fields} | {"signal_gamma": ref_sg}, TOL[torch.float64],
                         "brf P-stage, n = 259")
    p = len(layer.neuron.META["params"])
    traces = Traces(*(torch.randn(*shape, dtype=torch.float64) for shape in
                      ((2, n, layer.d, layer.m), (2, n, layer.d), (2, n, layer.d, p))))
    (ref_grad, ref_traces), (grad, new) = merge_ref(traces, ref, kept.pre), cpu.merge(traces, ref, kept.pre)
    assert_outputs_close({"b": grad.b, "theta": grad.theta, "eps_b": new.eps_b, "Theta": new.Theta},
                         {"b": ref_grad.b, "theta": ref_grad.theta, "eps_b": ref_traces.eps_b,
                          "Theta": ref_traces.Theta}, TOL[torch.float64], "brf merge's small terms, n = 259")


@DTYPES
@pytest.mark.parametrize("registers", ["native", "16 registers"])
@pytest.mark.parametrize("neuron", ["lif", "brf", "adex"])
def test_route_merge_equals_the_readout_memory_references(neuron, registers, dtype, nan_outputs):
    """The readout's memory on the cpu target (ops/readout_memory.py): readout_memory_merge_cpu against
    readout_memory_merge_ref (R = 3 routes of an LI readout) and shared_readout_merge_cpu against
    shared_readout_merge_ref (one trace), out of place and in place (G' over G, equal to the bit), at
    odd sizes: n = 37 neurons end in a group smaller than a tile's, m = 45 inputs in a padded tile,
    λ = 7 and λ = 130 (two blocks of 128 steps); the routes' g^τ read in place from a sweep over more
    lanes (a view strided per step, as the learner hands it over)."""
    from hyprgen.ops.readout_memory import (ReadoutTraces, readout_memory_merge_cpu, readout_memory_merge_ref,
                                            shared_readout_merge_cpu, shared_readout_merge_ref)
    kernels = fused_merge_kernels(neuron, registers)
    d, p, R, m = kernels.D, kernels.P, 3, N_IN
    gen = torch.Generator().manual_seed(5)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=dtype)  # noqa: E731
    outputs = lambda grad, memory: {"W": grad.W, "b": grad.b, "theta": grad.theta, "G": memory.G,  # noqa: E731
                                    "G_b": memory.G_b, "G_theta": memory.G_theta}
    for lam in (7, 130):
        traces = Traces(r(B, N, d, m), r(B, N, d), r(B, N, d, p))
        pre = r(lam, B, m)
        for routes in (R, 1):   # per route (readout neuron), and the shared trace F
            memory = ReadoutTraces(r(routes, B, N, m), r(routes, B, N), r(routes, B, N, p))
            g = r(lam, (1 + routes) * B, N)[:, B:]   # the route lanes of a sweep over (1 + R)·B: strided per step
            route = ChunkSweep(q0=r(routes * B, N, d), g=g, E=r(lam, routes * B, N, d),
                               Phi=r(routes * B, N, d, d), theta_grad=r(routes * B, N, p),
                               Theta_in=r(routes * B, N, d, p))
            if routes == R:
                args = (r(B, R, 1), r(B, R, 1, 1))   # the readout's q^0 and Φ
                ref, cpu = readout_memory_merge_ref, readout_memory_merge_cpu
            else:
                args = (r(B, N), r(B))               # weight Σ_k q^0[b, k] W_out[k, i]; decay
                ref, cpu = shared_readout_merge_ref, shared_readout_merge_cpu
            want = outputs(*ref(memory, traces, route, pre, *args))
            what = f"{neuron} route merge ({registers}), {routes} route(s), λ = {lam}"
            got = outputs(*cpu(kernels, memory, traces, route, pre, *args))
            assert_outputs_close(got, want, TOL[dtype], what)
            own = ReadoutTraces(memory.G.clone(), memory.G_b, memory.G_theta)
            grad, new = cpu(kernels, own, traces, route, pre, *args, in_place=True)
            assert new.G.data_ptr() == own.G.data_ptr(), f"{what}: not in place"
            assert all(torch.equal(a, b) for a, b in zip(outputs(grad, new).values(), got.values())), \
                f"{what}: in place differs from out of place"


@DTYPES
@pytest.mark.parametrize("neuron", ["lif", "brf"])
def test_p_stage_sweeps_several_signals_over_one_copy_of_the_states(neuron, dtype, nan_outputs):
    """A signal of k·B lanes over states of B samples (the readout's memory's route signals): lane b
    sweeps sample b mod B, against the torch P-stage on states stacked k times, with E^τ of every lane
    or of the first B (e_lanes); a signal whose lanes are no multiple of B is refused."""
    from hyprgen.ops.readout_memory import stacked
    layer, x = layer_setup(neuron, dtype)
    cpu, torch_stages = CpuStages(load_cpu_kernels(layer.neuron)), TorchStages()
    _, kept, _ = torch_stages.s_stage(layer, x[:LAM], layer.init_state(B))
    signal = torch.randn(LAM, 3 * B, N, generator=torch.Generator().manual_seed(6), dtype=dtype)
    ref, ref_sg = torch_stages.p_stage(layer, type(kept)(stacked(kept.r_prev, 3, 2), stacked(kept.current, 3, 1),
                                                         kept.pre), signal)
    fields = ("q0", "g", "E", "Phi", "theta_grad", "Theta_in")
    for e_lanes in (None, B):   # E^τ of every lane, or of the first B only (the learner's, for route lanes)
        got, got_sg = cpu.p_stage(layer, kept, signal, e_lanes=e_lanes)
        want = {f: getattr(ref, f) for f in fields} | {"signal_gamma": ref_sg, "E": ref.E[:, :e_lanes]}
        assert_outputs_close({f: getattr(got, f) for f in fields} | {"signal_gamma": got_sg}, want, TOL[dtype],
                             f"{neuron} P-stage, 3 signals over {B} samples, E of {e_lanes or 3 * B} lanes")
    with pytest.raises(ValueError, match=r"signal \(7, 4, 37\) must be \[λ = 7, k·3, n = 37\]"):
        cpu.p_stage(layer, kept, signal[:, :4])
