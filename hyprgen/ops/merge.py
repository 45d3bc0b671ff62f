"""Merge: the gradient of a chunk and the eligibility traces carried out of it (docs/hypr.md §4).

    merge_ref(traces, sweep, pre)       plain PyTorch: the reference
    merge_triton(traces, sweep, pre)    `merge_kernel` for the weight terms, torch for the small ones
    merge_cpu(kernels, traces, sweep, pre)   the neuron's C merge: one fused pass over ε (or, split, Φ ε
                                        and q^0 ε in C and GEMMs for the rank-λ terms); the small ones
                                        in C too (cpu target)

Shapes: λ steps, B samples, n neurons, m presynaptic inputs, d carried state components.

    ΔW  = Σ_b q^0·ε^0 + Σ_{b,τ} g^τ p^τ            # [n, m]
    ε^λ = Φ^{λ:1} ε^0 + Σ_τ E^τ p^τ                 # [B, n, d, m]

`merge_kernel` runs one program per (neuron tile, presynaptic tile) and loops over the batch inside,
so ΔW is a deterministic sum (no atomics), ε^0 is read once and ε^λ written once. The τ-sums take
one of two forms, a constexpr (USE_DOT) that the launcher sets from λ, so at most two variants:

- λ ≥ 16: tl.dot over τ tiles of BLOCK_T = 16 (tl.dot's minimum K): G^T P into ΔW and E^T P into
  the fresh trace, E's rows (neuron, component) flattened to BLOCK_N·D_PAD rows. The last τ tile is
  masked to zero, so any λ runs on the same binary.
- λ < 16: rank-1 updates, one per τ (a runtime loop). A dot would pad K = λ to 16 and force
  BLOCK_N ≥ 16, while here few neurons per tile keep the per-neuron data (Φ: BLOCK_N·d² values,
  which every thread holds) in registers; the FMA count, λ per trace element, stays far below what
  the memory traffic of ε costs.

The kernel reads q^0, E^τ and Φ^{λ:1} structure-of-arrays, one [B, n] slab per component (q^0
[d, B, n], E^τ [λ, d, B, n], Φ [d, d, B, n]): the P-stage kernel's storage (ops/p_stage.py), in which a
tile's neurons lie side by side. `launch_merge` permutes ChunkSweep's views back into it, which is
free for p_stage_triton's output and one copy for any other sweep (the torch stages', the tests').

λ, T, B, n and m are runtime values (`do_not_specialize` for B and λ; n and m only get Triton's usual
divisible-by-16 variants), so a new sequence length, chunk length or batch never recompiles.
d (0..4), its power-of-two padding and the block sizes are constexpr. Offsets within one sample are
int32 (the launcher checks n·d·m < 2^31), sample and step bases int64.

The bias and neuron-parameter traces (ε_b [B, n, d], Θ [B, n, d, p]) and their gradient terms are
computed in torch (`small_terms`): they hold B·n·d·(1+p) numbers against B·n·d·m for ε, so they are
a few small batched products beside the kernel; a second kernel would only save launches, to be
done (or fused here) if GPU profiles show those launches matter. (On a CPU those products cost
0.5 ms a chunk, so the cpu target has them in C: `small_terms_cpu`.)

Trace storage follows traces.eps.dtype: float32, or bfloat16 to halve the memory of ε. All arithmetic
is float32 either way (bf16 is widened on load and rounded once on store). With fp32 traces the dots
use input_precision "tf32x3" (three tf32 products, about fp32 accuracy, still on tensor cores; "ieee"
falls back to FMA with more registers); with bf16 traces "tf32", whose rounding (2^-11) is below
bf16's (2^-8). On a GPU fp32 → bf16 rounds to nearest; Triton 3.9's interpreter truncates (the tests'
bound allows for it). Other dtypes (float64 in the gradient checks) and d > 4 are refused (merge_ref runs them).

Interpreter: the launcher runs the interpreted form for CPU tensors and the compiled form for CUDA
tensors (ops/dispatch.py); this works because merge_kernel calls builtins only (tl.full, not
tl.zeros), so keep it that way. Interpreted launches use larger tiles (one Python loop per program).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import HyprgenError
from . import dispatch
from .triton_support import jit, tl, triton
from .p_stage import ChunkSweep


@dataclass
class Traces:
    """Eligibility traces carried across chunks (docs/hypr.md §3), per sample."""

    eps: torch.Tensor    # [B, n, d, m]  ε_ij   weights
    eps_b: torch.Tensor  # [B, n, d]     ε_i    bias
    Theta: torch.Tensor  # [B, n, d, p]  Θ_i    neuron parameters

    @staticmethod
    def zeros(B: int, n: int, d: int, m: int, p: int, like: torch.Tensor) -> "Traces":
        z = lambda *s: torch.zeros(*s, dtype=like.dtype, device=like.device)  # noqa: E731
        return Traces(z(B, n, d, m), z(B, n, d), z(B, n, d, p))


@dataclass
class ChunkGradient:
    W: torch.Tensor      # [n, m]
    b: torch.Tensor      # [n]
    theta: torch.Tensor  # [n, p]


def trace_buffer(traces: Traces, out: torch.Tensor | None, in_place: bool = False) -> torch.Tensor:
    """Where a merge writes ε^λ: `out`, a buffer the caller no longer needs (the learner passes the ε^0
    of the chunk before, so that a long run allocates no ε-sized tensor per chunk: runtime/hypr.py
    `_spare_traces`), or a new one. Every element is written, whatever out held. in_place: the merge
    can write ε^λ over ε^0 itself (merge_cpu), so out may be traces.eps; no other overlap is allowed."""
    eps = traces.eps
    if out is None:
        return dispatch.output(*eps.shape, like=eps, dtype=eps.dtype)
    if out.shape != eps.shape or out.dtype != eps.dtype or out.device != eps.device or not out.is_contiguous():
        raise ValueError(f"merge: out must be a contiguous {eps.dtype} tensor of ε's shape {tuple(eps.shape)} on "
                         f"{eps.device}, got {out.dtype} {tuple(out.shape)} on {out.device}")
    itself = in_place and out.data_ptr() == eps.data_ptr() and eps.is_contiguous()
    # d = 0: ε is empty, and every empty tensor's storage pointer is 0
    if eps.numel() and not itself and out.untyped_storage().data_ptr() == eps.untyped_storage().data_ptr():
        raise ValueError("merge: out shares memory with the traces ε^0 it reads (pass another buffer)")
    return out


@torch.no_grad()  # explicit gradients; also, the in-place accumulation below has no autograd form
def merge_ref(traces: Traces, sweep: ChunkSweep, pre: torch.Tensor,
              out: torch.Tensor | None = None) -> tuple[ChunkGradient, Traces]:
    """Chunk gradient and traces carried out of the chunk. pre: presynaptic p^τ [λ, B, m]; out: where
    ε^λ goes (trace_buffer)."""
    lam, B, n, d = sweep.E.shape
    q0 = sweep.q0.unsqueeze(-2)                                          # [B, n, 1, d]
    grad = ChunkGradient(
        W=(q0 @ traces.eps).squeeze(-2).sum(0) + torch.einsum("tbn,tbm->nm", sweep.g, pre),   # GEMM, K = B·λ
        b=(sweep.q0 * traces.eps_b).sum((0, 2)) + sweep.g.sum((0, 1)),
        theta=(q0 @ traces.Theta).squeeze(-2).sum(0) + sweep.theta_grad.sum(0),
    )
    # ε^λ = Φ^{λ:1} ε^0 + Σ_τ E^τ p^τ: Φ ε^0 into trace_buffer (the merge's only ε-sized one), then
    # per sample one [n·d, λ] × [λ, m] GEMM accumulated into it in place
    E_b = sweep.E.permute(1, 2, 3, 0).reshape(B, n * d, lam)             # [B, n·d, λ]
    eps = torch.matmul(sweep.Phi, traces.eps, out=trace_buffer(traces, out))   # [B, n, d, m], contiguous
    acc = eps.view(B, n * d, pre.shape[-1])
    torch.baddbmm(acc, E_b, pre.transpose(0, 1), out=acc)  # out= rather than baddbmm_: FLOP counters see it
    new = Traces(eps=eps,
                 eps_b=(sweep.Phi @ traces.eps_b.unsqueeze(-1)).squeeze(-1) + sweep.E.sum(0),
                 Theta=sweep.Phi @ traces.Theta + sweep.Theta_in)
    return grad, new


BLOCK_T = 16                    # τ tile: tl.dot's minimum K
NOT_SPECIALIZED = ["B", "lam"]  # batch and chunk length: any value runs on the same binary


@jit(do_not_specialize=NOT_SPECIALIZED)
def merge_kernel(
    eps_ptr,      # [B, n, d, m]  ε^0           fp32 or bf16
    q0_ptr,       # [d, B, n]     q^0           fp32   (the P-stage kernel's structure-of-arrays storage:
    g_ptr,        # [λ, B, n]     g^τ           fp32    one [B, n] slab per component, neurons contiguous)
    E_ptr,        # [λ, d, B, n]  E^τ           fp32
    Phi_ptr,      # [d, d, B, n]  Φ^{λ:1}       fp32   Φ(i, k, c) at slab k·d + c
    pre_ptr,      # [λ, B, m]     p^τ           fp32
    grad_W_ptr,   # [n, m]        ΔW (out)      fp32
    eps_out_ptr,  # [B, n, d, m]  ε^λ (out)     dtype of eps_ptr
    B, n, m, lam,
    D: tl.constexpr,              # d, 0..4
    D_PAD: tl.constexpr,          # next power of two ≥ max(d, 1)
    BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_T: tl.constexpr,        # τ tile of the dots (16, tl.dot's minimum K)
    USE_DOT: tl.constexpr,        # τ-sums as tl.dot over τ tiles (λ ≥ 16), else rank-1 updates per τ
    DOT_PRECISION: tl.constexpr,  # "tf32x3" (≈ fp32) or "tf32" (bf16 traces)
):
    # Tiles index one 3-D space [DP, BN, BM] = (component k, neuron i, input j): per-neuron data is
    # [DP, BN, 1] (neurons contiguous in memory, as the structure-of-arrays inputs store them), per-input
    # data [1, 1, BM], and the products broadcast. Offsets within one sample of ε are int32 (the
    # launcher checks n·d·m < 2^31), and so are offsets within Φ and one step of E (d²·B·n < 2^31);
    # sample and step bases are int64.
    i1 = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    j1 = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    k1 = tl.arange(0, D_PAD)
    k = k1[:, None, None]                                      # [DP, 1, 1]   components
    i = i1[None, :, None]                                      # [1, BN, 1]   neurons
    j = j1[None, None, :]                                      # [1, 1, BM]   presynaptic inputs
    i_ok, j_ok = i < n, j < m
    ik_ok = i_ok & (k < D)
    n64, m64 = tl.full((), n, tl.int64), tl.full((), m, tl.int64)
    Bn = B * n                                                 # one [B, n] slab (a component of q^0, E, Φ)

    grad_W = tl.full((1, BLOCK_N, BLOCK_M), 0.0, tl.float32)   # Σ_b q^0·ε^0 (+ Σ g p on the rank-1 path)
    if USE_DOT:
        grad_W_dot = tl.full((BLOCK_N, BLOCK_M), 0.0, tl.float32)          # Σ_{b,τ} g^τ p^τ
        t = tl.arange(0, BLOCK_T)
        r = tl.arange(0, D_PAD * BLOCK_N)          # E's rows (component, neuron), as the reshape below
        r_k = r // BLOCK_N
        r_i = tl.program_id(0) * BLOCK_N + r % BLOCK_N
        r_ok = (r_k < D) & (r_i < n)
    for b in range(B):
        b64 = tl.full((), b, tl.int64)
        if USE_DOT:
            fresh = tl.full((D_PAD * BLOCK_N, BLOCK_M), 0.0, tl.float32)  # Σ_τ E^τ p^τ, rows (k, i)
            for t0 in range(0, lam, BLOCK_T):
                step = (t0 + t).to(tl.int64) * B + b64                      # [BT]  (τ, b)
                t_ok = t0 + t < lam
                P = tl.load(pre_ptr + step[:, None] * m64 + j1[None, :],
                            mask=t_ok[:, None] & (j1 < m)[None, :], other=0.0)             # [BT, BM]
                G = tl.load(g_ptr + step[None, :] * n64 + i1[:, None],
                            mask=(i1 < n)[:, None] & t_ok[None, :], other=0.0)             # [BN, BT]
                grad_W_dot = tl.dot(G, P, grad_W_dot, input_precision=DOT_PRECISION)
                if D > 0:
                    # E^τ[k, b, i] at (τ·d + k)·B·n + b·n + i
                    E_tb = (t0 + t).to(tl.int64) * (D * Bn) + b64 * n64                        # [BT]  (τ, b)
                    Et = tl.load(E_ptr + E_tb[None, :] + (r_k * Bn + r_i)[:, None],
                                 mask=r_ok[:, None] & t_ok[None, :], other=0.0)                # [DP·BN, BT]
                    fresh = tl.dot(Et, P, fresh, input_precision=DOT_PRECISION)
            new = tl.reshape(fresh, (D_PAD, BLOCK_N, BLOCK_M))                    # ε^λ of sample b
        else:
            new = tl.full((D_PAD, BLOCK_N, BLOCK_M), 0.0, tl.float32)
            for tau in range(lam):
                step = tl.full((), tau, tl.int64) * B + b64
                P = tl.load(pre_ptr + step * m64 + j, mask=j_ok, other=0.0)                   # [1, 1, BM]
                grad_W += tl.load(g_ptr + step * n64 + i, mask=i_ok, other=0.0) * P           # g^τ: [1, BN, 1]
                if D > 0:
                    E_tb = tl.full((), tau, tl.int64) * (D * Bn) + b64 * n64                  # (τ, b)
                    new += tl.load(E_ptr + E_tb + k * Bn + i, mask=ik_ok, other=0.0) * P      # E^τ: [DP, BN, 1]
        if D > 0:
            sample = b64 * n64 * D * m64                           # start of sample b in ε
            for c in tl.static_range(D):   # source component c: ε^0_c is loaded once and used twice
                eps_c = tl.load(eps_ptr + sample + (i * D + c) * m + j,
                                mask=i_ok & j_ok, other=0.0).to(tl.float32)                  # [1, BN, BM]
                q0_c = tl.load(q0_ptr + b64 * n64 + c * Bn + i, mask=i_ok, other=0.0)      # [1, BN, 1]
                phi_c = tl.load(Phi_ptr + b64 * n64 + (k * D + c) * Bn + i,
                                mask=ik_ok, other=0.0)                                     # [DP, BN, 1]  Φ(i, ·, c)
                grad_W += q0_c * eps_c
                new += phi_c * eps_c
            tl.store(eps_out_ptr + sample + (i * D + k) * m + j, new.to(eps_out_ptr.dtype.element_ty),
                     mask=ik_ok & j_ok)
    if USE_DOT:
        grad_W += tl.reshape(grad_W_dot, (1, BLOCK_N, BLOCK_M))
    tl.store(grad_W_ptr + i.to(tl.int64) * m + j, grad_W, mask=i_ok & j_ok)


def compiled_merge_kernel() -> JITFunction:
    """The compiled (GPU) form of merge_kernel, whatever TRITON_INTERPRET said at import."""
    return dispatch.compiled(merge_kernel, tuple(NOT_SPECIALIZED))


def merge_config(n: int, m: int, d: int, lam: int, trace_dtype: torch.dtype = torch.float32) -> dict:
    """Constexprs and launch options of merge_kernel. Tiles chosen for no spills on sm_80 and sm_90
    (`hyprgen build --aot`, docs/results/aot.md); not yet tuned on a GPU."""
    use_dot = lam >= BLOCK_T
    if use_dot:   # tl.dot needs BLOCK_N, BLOCK_M ≥ 16
        block_n, block_m, num_warps = (16, 64, 8) if d <= 1 else (16, 16, 4)
        if d <= 1 and trace_dtype == torch.bfloat16:
            block_m = 32  # 64 spills 32 B on sm_80 (ptxas), 32 does not
    else:
        block_n, block_m, num_warps = (4, 128, 4) if d <= 1 else (2, 128, 4)
        block_n = min(block_n, triton.next_power_of_2(n))
    return dict(D=d, D_PAD=triton.next_power_of_2(max(d, 1)), BLOCK_N=block_n,
                BLOCK_M=min(block_m, max(16, triton.next_power_of_2(m))), BLOCK_T=BLOCK_T, USE_DOT=use_dot,
                DOT_PRECISION="tf32x3" if trace_dtype == torch.float32 else "tf32", num_warps=num_warps,
                num_stages=1, enable_fp_fusion=True)  # FMA contraction: Triton 3.9's default, pinned (3.10 flips it)


def interpreter_tiles(config: dict, n: int, m: int) -> dict:
    """The interpreter runs one program at a time in Python, so fewer, larger tiles (same results)."""
    return config | dict(BLOCK_N=min(64, max(config["BLOCK_N"], triton.next_power_of_2(n))),
                         BLOCK_M=min(256, max(config["BLOCK_M"], triton.next_power_of_2(m))))


MAX_D = 4  # carried components merge_kernel handles


def unsupported(traces: Traces, sweep: ChunkSweep, pre: torch.Tensor) -> str | None:
    """Why merge_kernel cannot take these inputs (None when it can)."""
    fp32 = {"q0": sweep.q0, "g": sweep.g, "E": sweep.E, "Phi": sweep.Phi, "pre": pre}
    if sweep.E.shape[-1] > MAX_D:
        return f"d = {sweep.E.shape[-1]} carried components (the kernel handles d <= {MAX_D})"
    wrong = [f"{name} is {x.dtype}" for name, x in fp32.items() if x.dtype != torch.float32]
    if wrong:
        return f"the kernel computes in float32, but {', '.join(wrong)}"
    if traces.eps.dtype not in (torch.float32, torch.bfloat16):
        return f"the traces ε are {traces.eps.dtype} (float32 or bfloat16)"
    if len({x.device for x in [*fp32.values(), traces.eps]}) != 1:
        return "the inputs are on different devices"
    return None


def merge_triton(traces: Traces, sweep: ChunkSweep, pre: torch.Tensor,
                 out: torch.Tensor | None = None) -> tuple[ChunkGradient, Traces]:
    """Chunk gradient and traces carried out of the chunk (as merge_ref). pre: p^τ [λ, B, m]; out: where
    ε^λ goes (trace_buffer)."""
    problem = unsupported(traces, sweep, pre)
    if problem is not None:   # never a silent switch to merge_ref: the caller chose this backend
        raise HyprgenError(f"merge_triton: {problem}; use merge_ref (backend='torch')")
    lam, _, n, d = sweep.E.shape
    config = merge_config(n, pre.shape[-1], d, lam, traces.eps.dtype)
    if dispatch.interpreting(pre.device):
        config = interpreter_tiles(config, n, pre.shape[-1])
    return launch_merge(traces, sweep, pre, config, out)


def launch_merge(traces: Traces, sweep: ChunkSweep, pre: torch.Tensor, config: dict,
                 out: torch.Tensor | None = None) -> tuple[ChunkGradient, Traces]:
    """merge_kernel with the given config (merge_config's keys) and the small terms in torch."""
    lam, B, n, d = sweep.E.shape
    m = pre.shape[-1]
    assert n * max(d, 1) * m < 2**31, "offsets within one sample of ε are int32"
    assert max(d, 1) ** 2 * B * n < 2**31, "offsets within Φ [d, d, B, n] and one step of E are int32"
    eps = traces.eps.contiguous()
    grad_W = dispatch.output(n, m, like=eps)
    eps_new = trace_buffer(traces, out)
    grid = (triton.cdiv(n, config["BLOCK_N"]), triton.cdiv(m, config["BLOCK_M"]))
    # structure-of-arrays, as the kernel reads them: no copy for p_stage_triton's views, one otherwise
    q0, E, Phi = (x.permute(*order).contiguous() for x, order in
                  ((sweep.q0, (2, 0, 1)), (sweep.E, (0, 3, 1, 2)), (sweep.Phi, (2, 3, 0, 1))))   # [d, B, n] ...
    dispatch.for_device(merge_kernel, eps.device, tuple(NOT_SPECIALIZED))[grid](
        eps, q0, sweep.g.contiguous(), E, Phi, pre.contiguous(), grad_W, eps_new, B, n, m, lam, **config)
    b, theta, eps_b, Theta = small_terms(traces, sweep)
    return ChunkGradient(W=grad_W, b=b, theta=theta), Traces(eps=eps_new, eps_b=eps_b, Theta=Theta)


def small_terms(traces: Traces, sweep: ChunkSweep):
    """Bias and neuron-parameter terms in the sweep's dtype (traces back in their own): Δb, Δθ, ε_b^λ, Θ^λ."""
    wide = lambda x: x.to(sweep.q0.dtype)  # noqa: E731
    q0, Phi, eps_b, Theta = sweep.q0, sweep.Phi, wide(traces.eps_b), wide(traces.Theta)
    b = (q0 * eps_b).sum((0, 2)) + sweep.g.sum((0, 1))                                  # [n]
    theta = (q0.unsqueeze(-2) @ Theta).squeeze(-2).sum(0) + sweep.theta_grad.sum(0)    # [n, p]
    eps_b_new = (Phi @ eps_b.unsqueeze(-1)).squeeze(-1) + sweep.E.sum(0)                 # [B, n, d]
    Theta_new = Phi @ Theta + sweep.Theta_in                                             # [B, n, d, p]
    return b, theta, eps_b_new.to(traces.eps_b.dtype), Theta_new.to(traces.Theta.dtype)


@torch.no_grad()
def merge_cpu(kernels, traces: Traces, sweep: ChunkSweep, pre: torch.Tensor,
              out: torch.Tensor | None = None, fused: bool | None = None) -> tuple[ChunkGradient, Traces]:
    """Chunk gradient and traces carried out of the chunk (as merge_ref), in the sweep's dtype, in one of
    two forms (fused=None: the fused one whenever d > 0):
    - fused: one C kernel writes ε^λ = Φ^{λ:1} ε^0 + Σ_τ E^τ p^τ and ΔW = Σ_b q^0 ε^0, reading ε once
      (once more per 128 steps beyond the first 128); faster than the split form at every λ measured,
      2.4× at λ = 16 to 1.2× at λ = 1,024 (docs/results/cpu_target.md);
    - split: the C kernel writes ε^λ = Φ^{λ:1} ε^0 and ΔW = Σ_b q^0 ε^0 reading ε once; then per sample
      one GEMM [n·d, λ] × [λ, m] adds Σ_τ E^τ p^τ into ε^λ. It is the form for d = 0 (no ε: the GEMM
      is empty), and the fused form's comparison.
    Both read E as p_stage_cpu stores it, [B, λ, n·d] (no copy), and add Σ g^τ p^τ into ΔW with one
    GEMM over K = λ·B; the bias and parameter terms are one more C kernel (small_terms_cpu).
    pre: p^τ [λ, B, m]; out: where ε^λ goes (trace_buffer), which may be traces.eps itself: both forms
    merge in place (the learner's way when the traces are its own: one ε-sized buffer per layer)."""
    lam, B, n, d = sweep.E.shape
    m = pre.shape[-1]
    if fused is None:
        fused = 0 < d
    elif fused and not d:
        raise ValueError("merge_cpu: the fused form needs d > 0 carried components (a linear layer has none)")
    eps = traces.eps.contiguous()
    eps_new = trace_buffer(traces, out, in_place=True)
    grad_W = dispatch.output(n, m, like=eps, dtype=eps.dtype)
    E_b = sweep.E.transpose(0, 1).contiguous()                 # [B, λ, n, d]: p_stage_cpu's E, no copy
    if fused:
        kernels.call("merge_fused", eps, sweep.q0.contiguous(), sweep.Phi.contiguous(), E_b,
                     pre.contiguous(), eps_new, grad_W, B, n, m, lam)
    else:
        kernels.call("merge", eps, sweep.q0.contiguous(), sweep.Phi.contiguous(), eps_new, grad_W, B, n, m)
        if d:
            acc = eps_new.view(B, n * d, m)
            torch.baddbmm(acc, E_b.reshape(B, lam, n * d).transpose(1, 2), pre.transpose(0, 1), out=acc)
    grad_W.addmm_(sweep.g.reshape(lam * B, n).t(), pre.reshape(lam * B, m))
    b, theta, eps_b, Theta = small_terms_cpu(kernels, traces, sweep, E_b)
    return ChunkGradient(W=grad_W, b=b, theta=theta), Traces(eps=eps_new, eps_b=eps_b, Theta=Theta)


def small_terms_cpu(kernels, traces: Traces, sweep: ChunkSweep, E_b: torch.Tensor):
    """small_terms in the neuron's C kernel (one call, where torch takes a dozen small batched products).
    E_b: E^τ as p_stage_cpu stores it, [B, λ, n, d]."""
    lam, B, n, d = sweep.E.shape
    p = sweep.theta_grad.shape[-1]
    out = lambda *shape: dispatch.output(*shape, like=sweep.q0, dtype=sweep.q0.dtype)  # noqa: E731
    eps_b, Theta, b, theta = out(B, n, d), out(B, n, d, p), out(n), out(n, p)
    kernels.call("merge_small", traces.eps_b.contiguous(), traces.Theta.contiguous(), sweep.q0.contiguous(),
                 sweep.Phi.contiguous(), E_b, sweep.g.contiguous(), sweep.theta_grad.contiguous(),
                 sweep.Theta_in.contiguous(), eps_b, Theta, b, theta, B, n, lam)
    return b, theta, eps_b, Theta
