"""Launchers of a neuron's generated Triton kernels: the S-stage (fwd_kernel) and P-stage (chunk_kernel).

References (same signatures and semantics, plain PyTorch): `hyprgen.runtime.stages.TorchStages`
(S-stage: the generated torch step in a loop; P-stage: the generated torch `chunk_sweep`, the
same unrolled statements on [B, n] tensors). Shapes: λ steps, B samples, n neurons, d carried components, p neuron parameters.

S-stage. With recurrence and n ≤ MAX_FUSED_N, one program holds a tile of BLOCK_B samples × all n
neurons for the whole chunk and adds W_rec o^{τ-1} with tl.dot each step (o^{τ-1} round-trips
through global memory, which the kernel writes anyway: the P-stage and the layer above read it).
Beyond MAX_FUSED_N the state of all neurons of a sample no longer fits one program's registers: the
fallback runs, per step, the recurrent product as a torch GEMM and the neuron step as fwd_kernel
with RECURRENT=False and λ = 1 (λ launches instead of one). Without recurrence the grid tiles
samples and neurons, one launch per chunk.

P-stage. One lane per (sample, neuron); per-sample neuron-parameter gradients are written (no
atomics) and summed over the batch here.

λ, B are runtime values (do_not_specialize): a new chunk length, last-chunk length or batch never
recompiles; n gets Triton's usual divisible-by-16 specialization. The Jacobians are recomputed in
registers from r^{τ-1} and I^τ, never stored.
"""
from __future__ import annotations

import torch
import triton

from ..runtime.chunk import ChunkSweep
from .launch import for_device

MAX_FUSED_N = 512   # recurrent layers up to this size run the fused S-stage
CHUNK_BLOCK = 128   # P-stage lanes per program


def empty(*shape: int, like: torch.Tensor) -> torch.Tensor:
    """Output allocation of every launcher (tests replace it by a NaN fill: unwritten → fails)."""
    return torch.empty(*shape, dtype=torch.float32, device=like.device)


def fwd_config(n: int, recurrent: bool) -> dict:
    """Constexprs and launch options of fwd_kernel (tl.dot needs tiles ≥ 16)."""
    if recurrent:
        # one program holds [16, BLOCK_N] of each state component: warps grow with n to keep them in
        # registers (zero spills up to n = 128 on sm_80/sm_90; a few hundred bytes at 256, docs/aot.md)
        block_n = max(16, triton.next_power_of_2(n))
        return dict(RECURRENT=True, BLOCK_B=16, BLOCK_N=block_n, BLOCK_K=16, DOT_PRECISION="tf32x3",
                    num_warps=min(32, max(8, block_n // 8)), num_stages=1,
                    enable_fp_fusion=True)  # FMA contraction: Triton 3.9's default, pinned (3.10 flips it)
    return dict(RECURRENT=False, BLOCK_B=4, BLOCK_N=min(128, max(16, triton.next_power_of_2(n))), BLOCK_K=16,
                DOT_PRECISION="tf32x3", num_warps=4, num_stages=1, enable_fp_fusion=True)


def chunk_config() -> dict:
    return dict(BLOCK=CHUNK_BLOCK, num_warps=4, num_stages=1, enable_fp_fusion=True)


def s_stage(kernels, ff: torch.Tensor, w_rec: torch.Tensor | None, r0: torch.Tensor, o0: torch.Tensor,
            theta: torch.Tensor):
    """The layer over one chunk. ff: W_in x^τ + b [λ, B, n]; w_rec [n, n] or None; r0 [d, B, n];
    o0 [B, n]; theta [p, n] raw parameters. Returns (o^0..o^λ [λ+1, B, n], r^{τ-1} [λ, d, B, n],
    I^τ [λ, B, n], r^λ [d, B, n])."""
    lam, B, n = ff.shape
    d = kernels.D
    outs, r_prev, cur, r_out = empty(lam + 1, B, n, like=ff), empty(lam, d, B, n, like=ff), \
        empty(lam, B, n, like=ff), empty(d, B, n, like=ff)
    outs[0] = o0
    fused = w_rec is not None and n <= MAX_FUSED_N
    config = fwd_config(n, fused)
    kernel = for_device(kernels.fwd_kernel, ff.device, tuple(kernels.NOT_SPECIALIZED))
    grid = (triton.cdiv(B, config["BLOCK_B"]), triton.cdiv(n, config["BLOCK_N"]))
    dummy = ff if w_rec is None else w_rec
    if w_rec is None or fused:
        kernel[grid](ff.contiguous(), dummy.contiguous(), r0.contiguous(), outs, theta.contiguous(), r_prev, cur,
                     r_out, B, n, lam, **config)
        return outs, r_prev, cur, r_out
    # fallback: per step, I^τ = ff^τ + o^{τ-1} W_rec^T in torch, then the neuron step (λ = 1)
    theta, state = theta.contiguous(), r0.contiguous()
    for t in range(lam):
        current = torch.addmm(ff[t], outs[t], w_rec.t()).unsqueeze(0)          # [1, B, n]
        next_state = empty(d, B, n, like=ff)
        kernel[grid](current, dummy, state, outs[t:], theta, r_prev[t:], cur[t:], next_state, B, n, 1, **config)
        state = next_state
    return outs, r_prev, cur, state


def p_stage(kernels, r_prev: torch.Tensor, cur: torch.Tensor, signal: torch.Tensor, theta: torch.Tensor):
    """Reverse sweep over the chunk. r_prev [λ, d, B, n], cur and signal [λ, B, n], theta [p, n].
    Returns (ChunkSweep, λ^τ γ^τ [λ, B, n])."""
    lam, B, n = cur.shape
    d, p = kernels.D, kernels.P
    q0, g, sg, E = empty(B, n, d, like=cur), empty(lam, B, n, like=cur), empty(lam, B, n, like=cur), \
        empty(lam, B, n, d, like=cur)
    Phi, theta_grad, Theta_in = empty(B, n, d, d, like=cur), empty(B, n, p, like=cur), empty(B, n, d, p, like=cur)
    config = chunk_config()
    kernel = for_device(kernels.chunk_kernel, cur.device, tuple(kernels.NOT_SPECIALIZED))
    kernel[(triton.cdiv(B * n, config["BLOCK"]),)](
        r_prev.contiguous(), cur.contiguous(), signal.contiguous(), theta.contiguous(), q0, g, sg, E, Phi,
        theta_grad, Theta_in, B, n, lam, **config)
    return ChunkSweep(q0=q0, g=g, E=E, Phi=Phi, theta_grad=theta_grad.sum(0), Theta_in=Theta_in), sg
