"""merge_kernel (Triton) against the torch reference hyprgen.ops.merge.merge_ref.

The kernel runs under Triton's interpreter on CPU tensors. This file does not set TRITON_INTERPRET:
triton reads it when it is first imported (for triton.language's own @jit helpers) and when a kernel
is decorated, so setting it here would depend on import order and leak into other test files. The
launcher picks the interpreted form for CPU tensors whatever the variable says
(hyprgen/ops/dispatch.py); `test_with_triton_interpret_set` runs the other case in a subprocess.
"""
import re

import pytest
import torch

from hyprgen.errors import HyprgenError
from hyprgen.ops.merge import Traces, compiled_merge_kernel, launch_merge, merge_config, merge_triton
from hyprgen.ops.merge import merge_ref as merge
from hyprgen.ops.p_stage import ChunkSweep

from ..helpers import assert_outputs_close, rel_rms, run_with_triton_interpret

B, N_IN, N = 3, 8, 37
M = N_IN + N          # presynaptic inputs of a recurrent layer: 45
P = 2                 # neuron parameters
BF16_ULP = 2.0 ** -7  # bfloat16 keeps 8 significant bits: one rounding errs < 2^-7 relative (truncation),
                      # ≤ 2^-8 rounding to nearest (GPU); the interpreter truncates fp32 → bf16


def random_chunk(d, lam, rho=None, seed=0, device="cpu"):
    """Traces, sweep and p^τ of one chunk in fp32 on `device`. rho: Φ^{λ:1} = ρ·(orthogonal), a
    contracting flow."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen).to(device)  # noqa: E731
    Phi = r(B, N, d, d) if rho is None or d == 0 else rho * torch.linalg.qr(r(B, N, d, d))[0]
    traces = Traces(eps=r(B, N, d, M), eps_b=r(B, N, d), Theta=r(B, N, d, P))
    sweep = ChunkSweep(q0=r(B, N, d), g=r(lam, B, N), E=r(lam, B, N, d), Phi=Phi, theta_grad=r(B, N, P),
                       Theta_in=r(B, N, d, P))
    return traces, sweep, r(lam, B, M)


def assert_close(got, ref, tol=1e-5):
    """The chunk gradient and new traces of merge_triton against merge_ref's."""
    outputs = lambda grad, traces: {"W": grad.W, "b": grad.b, "theta": grad.theta,  # noqa: E731
                                    "eps": traces.eps, "eps_b": traces.eps_b, "Theta": traces.Theta}
    assert_outputs_close(outputs(*got), outputs(*ref), tol, "merge")


@pytest.mark.parametrize("lam", [1, 7, 20])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_merge_matches_reference(d, lam, device, nan_outputs):
    chunk = random_chunk(d, lam, device=device)
    assert_close(merge_triton(*chunk), merge(*chunk))


@pytest.mark.parametrize("d", [0, 4])
def test_linear_readout_and_largest_state(d, device, nan_outputs):
    """d = 0 (linear readout: ΔW = Σ g p only, no traces) and d = 4 run in the kernel too."""
    chunk = random_chunk(d, 20, device=device)
    assert_close(merge_triton(*chunk), merge(*chunk))


@pytest.mark.parametrize("lam", [7, 20])
@pytest.mark.parametrize("use_dot", [True, False])
def test_both_tau_forms_on_small_tiles(use_dot, lam, device, nan_outputs):
    """tl.dot over masked τ tiles and rank-1 updates, each on both sides of λ = 16, on 16×16 tiles
    (several tiles and ragged edges in both grid dimensions)."""
    chunk = random_chunk(3, lam, device=device)
    config = merge_config(N, M, 3, lam) | dict(BLOCK_N=16, BLOCK_M=16, USE_DOT=use_dot)
    assert_close(launch_merge(*chunk, config), merge(*chunk))


def structure_of_arrays(sweep: ChunkSweep) -> ChunkSweep:
    """The same sweep as p_stage_triton returns it: q^0, E^τ, Φ and the θ terms as views of storage
    with one [B, n] slab per component ([d, B, n], [λ, d, B, n], [d, d, B, n], ...)."""
    def soa(x, storage_order, back):
        return x.permute(*storage_order).contiguous().permute(*back)
    return ChunkSweep(q0=soa(sweep.q0, (2, 0, 1), (1, 2, 0)), g=sweep.g, E=soa(sweep.E, (0, 3, 1, 2), (0, 2, 3, 1)),
                      Phi=soa(sweep.Phi, (2, 3, 0, 1), (2, 3, 0, 1)), theta_grad=soa(sweep.theta_grad, (2, 0, 1), (1, 2, 0)),
                      Theta_in=soa(sweep.Theta_in, (2, 3, 0, 1), (2, 3, 0, 1)))


@pytest.mark.parametrize("lam", [7, 20])
def test_structure_of_arrays_sweep_is_read_in_place(lam, device, nan_outputs):
    """merge_kernel reads q^0, E and Φ structure-of-arrays: the P-stage kernel's views go in as they are,
    an array-of-structs sweep (the torch stages') is permuted first; both give the reference's result,
    and the kernel's outputs agree to the bit."""
    traces, sweep, pre = random_chunk(3, lam, device=device)
    views = structure_of_arrays(sweep)
    assert not views.E.is_contiguous() and views.E.permute(0, 3, 1, 2).is_contiguous()
    got = merge_triton(traces, views, pre)
    assert_close(got, merge(traces, sweep, pre))
    from_aos = merge_triton(traces, sweep, pre)
    assert torch.equal(got[0].W, from_aos[0].W) and torch.equal(got[1].eps, from_aos[1].eps)


@pytest.mark.parametrize("d, dtype, problem", [(2, torch.float64, "computes in float32, but q0 is torch.float64"),
                                               (5, torch.float32, "d = 5 carried components")])
def test_unsupported_inputs_are_refused(d, dtype, problem):
    """float64 (the gradient checks) and d > 4 are refused with the reason, never run silently on the
    torch reference: the caller chose the Triton backend."""
    traces, sweep, pre = random_chunk(d, 7)
    cast = lambda x: x.to(dtype)  # noqa: E731
    traces = Traces(*map(cast, (traces.eps, traces.eps_b, traces.Theta)))
    sweep = ChunkSweep(*map(cast, (sweep.q0, sweep.g, sweep.E, sweep.Phi, sweep.theta_grad, sweep.Theta_in)))
    with pytest.raises(HyprgenError, match=re.escape(problem)):
        merge_triton(traces, sweep, cast(pre))


def test_chunk_length_never_recompiles():
    """B and λ are not specialized, and λ selects one of two variants (rank-1 below 16, tl.dot above)."""
    assert {p.name for p in compiled_merge_kernel().params if p.do_not_specialize} == {"B", "lam"}
    configs = {tuple(sorted(merge_config(N, M, 2, lam).items())) for lam in range(1, 300)}
    assert len(configs) == 2


def test_bf16_traces_drift(device):
    """Traces stored in bf16 (fp32 arithmetic) stay within ULP·Σ_{j<K} ρ^j of the fp32 reference.

    Each chunk rounds ε^λ once to bf16, a relative error below ULP per element. Error carried in is
    multiplied by Φ^{λ:1}, of norm ρ = 0.9 here, so after K chunks it is at most ULP·Σ_{j<K} ρ^j of the
    trace's size (traces grow over these chunks). ΔW reads ε^0 through q^0: the same bound, diluted
    by its Σ g p term. Under the interpreter (truncation, a bias that adds up) drift is ~1.5·10^-3 per
    chunk, well inside the bound; round to nearest on a GPU gives less.
    """
    d, lam, K, rho = 2, 20, 6, 0.9
    traces = Traces.zeros(B, N, d, M, P, torch.empty(0, device=device))
    traces_bf16 = Traces(traces.eps.bfloat16(), traces.eps_b, traces.Theta)
    for k in range(K):
        _, sweep, pre = random_chunk(d, lam, rho=rho, seed=k, device=device)
        grad, traces = merge(traces, sweep, pre)
        grad_bf16, traces_bf16 = merge_triton(traces_bf16, sweep, pre)
        assert traces_bf16.eps.dtype == torch.bfloat16
        bound = BF16_ULP * sum(rho**j for j in range(k + 1))
        drift = rel_rms(traces_bf16.eps, traces.eps)
        assert 0 < drift <= bound, f"chunk {k}: ε drift {drift:.2e} > {bound:.2e}"
        assert rel_rms(grad_bf16.W, grad.W) <= bound
        assert rel_rms(traces_bf16.eps_b, traces.eps_b) <= 1e-5  # small terms stay fp32


def test_with_triton_interpret_set():
    """With TRITON_INTERPRET=1 before triton's import, merge_kernel is the interpreted form; the
    launcher and the compiled form for AOT still work."""
    script = ("import torch, tests.ops.test_merge as t\n"
              "from hyprgen.ops.merge import merge_kernel, compiled_merge_kernel\n"
              "from triton.runtime.interpreter import InterpretedFunction\n"
              "assert isinstance(merge_kernel, InterpretedFunction)\n"
              "chunk = t.random_chunk(2, 20)\n"
              "t.assert_close(t.merge_triton(*chunk), t.merge(*chunk))\n"
              "compiled_merge_kernel()\n")
    run_with_triton_interpret(script, timeout=120)


@pytest.mark.parametrize("arch", [80, 90])
def test_aot_compile_without_gpu(arch, tmp_path, monkeypatch):
    """triton.compile to a cubin for sm_80 / sm_90 on this machine; ptxas reports no spills."""
    pytest.importorskip("triton.backends.nvidia.compiler")
    from hyprgen.ops.aot import compile_merge, resources
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    for lam in (8, 64):   # rank-1 and tl.dot variants
        kernel = compile_merge(d=3, lam=lam, arch=arch)
        report = resources(kernel)
        print(f"sm_{arch} d=3 λ={lam}: {report}")
        assert kernel.asm["cubin"] and 0 < report["registers"] <= 255
        assert report["spill_stores"] == report["spill_loads"] == 0
