"""S-stage: one layer's λ sequential steps over a chunk (docs/hypr.md §5), keeping what the P-stage reads.

    s_stage_ref(neuron, ff, w_rec, r0, o0, theta)       the generated torch `step` in a loop: the reference
    s_stage_triton(kernels, ff, w_rec, r0, o0, theta)   the generated S-stage kernel `<neuron>_s_stage_kernel`

Both take ff = W_in x^τ + b [λ, B, n] (one GEMM for the chunk, done by the caller), W_rec [n, n] or
None, the state carried in r^0 and o^0, and return

    (o^0..o^λ [λ+1, B, n], r^{τ-1} [λ, d, B, n], I^τ [λ, B, n], r^λ (d tensors [B, n]), o^λ [B, n]).

The reference returns the last step's own tensors as the state after the chunk (not views of the
stacked outputs), so a chunk boundary changes nothing, to the bit, in what the next chunk computes.

Shapes: λ steps, B samples, n neurons, d carried state components, p neuron parameters.

Kernel launch. With recurrence and n ≤ MAX_FUSED_N, one program holds a tile of BLOCK_B samples × all
n neurons for the whole chunk and adds W_rec o^{τ-1} with tl.dot each step (o^{τ-1} round-trips
through global memory, which the kernel writes anyway: the P-stage and the layer above read it).
Beyond MAX_FUSED_N the state of all neurons of a sample no longer fits one program's registers: the
fallback runs, per step, the recurrent product as a torch GEMM and the neuron step as the kernel with
RECURRENT=False and λ = 1 (λ launches instead of one). Without recurrence the grid tiles samples and
neurons, one launch per chunk. λ and B are runtime values (do_not_specialize): a new chunk length,
last-chunk length or batch never recompiles; n gets Triton's usual divisible-by-16 variant.
"""
from __future__ import annotations

from types import ModuleType

import torch
import triton

from ..contract import kernel_name
from . import dispatch

MAX_FUSED_N = 512   # recurrent layers up to this size run the fused S-stage


def s_stage_ref(neuron: ModuleType, ff: torch.Tensor, w_rec: torch.Tensor | None, r0: tuple[torch.Tensor, ...],
                o0: torch.Tensor, theta: tuple[torch.Tensor, ...]):
    """The generated torch step over the chunk. r0: d tensors [B, n]; theta: p raw parameters [n].
    I^τ = ff^τ + o^{τ-1} W_rec^T (as the network's forward computes it)."""
    r, o = tuple(r0), o0
    r_prev, currents, outs = [], [], [o]
    for t in range(ff.shape[0]):
        current = ff[t] if w_rec is None else ff[t] + o @ w_rec.t()
        r_prev.append(torch.stack(r) if r else ff.new_zeros(0, *o.shape))
        currents.append(current)
        r, o = neuron.step(r, current, theta)
        outs.append(o)
    return torch.stack(outs), torch.stack(r_prev), torch.stack(currents), tuple(r), o


def s_stage_config(n: int, recurrent: bool) -> dict:
    """Constexprs and launch options of the S-stage kernel (tl.dot needs tiles ≥ 16)."""
    if recurrent:
        # one program holds [16, BLOCK_N] of each state component: warps grow with n to keep them in
        # registers (zero spills up to n = 128 on sm_80/sm_90; a few hundred bytes at 256, docs/results/aot.md)
        block_n = max(16, triton.next_power_of_2(n))
        return dict(RECURRENT=True, BLOCK_B=16, BLOCK_N=block_n, BLOCK_K=16, DOT_PRECISION="tf32x3",
                    num_warps=min(32, max(8, block_n // 8)), num_stages=1,
                    enable_fp_fusion=True)  # FMA contraction: Triton 3.9's default, pinned (3.10 flips it)
    return dict(RECURRENT=False, BLOCK_B=4, BLOCK_N=min(128, max(16, triton.next_power_of_2(n))), BLOCK_K=16,
                DOT_PRECISION="tf32x3", num_warps=4, num_stages=1, enable_fp_fusion=True)


def s_stage_triton(kernels: ModuleType, ff: torch.Tensor, w_rec: torch.Tensor | None, r0: torch.Tensor,
                   o0: torch.Tensor, theta: torch.Tensor):
    """The generated S-stage kernel. r0 [d, B, n]; theta [p, n] raw parameters (float32)."""
    lam, B, n = ff.shape
    d = kernels.D
    outs, r_prev, cur, r_out = dispatch.output(lam + 1, B, n, like=ff), dispatch.output(lam, d, B, n, like=ff), \
        dispatch.output(lam, B, n, like=ff), dispatch.output(d, B, n, like=ff)
    outs[0] = o0
    fused = w_rec is not None and n <= MAX_FUSED_N
    config = s_stage_config(n, fused)
    kernel = dispatch.for_device(getattr(kernels, kernel_name(kernels.NAME, "s_stage")), ff.device,
                                 tuple(kernels.NOT_SPECIALIZED))
    grid = (triton.cdiv(B, config["BLOCK_B"]), triton.cdiv(n, config["BLOCK_N"]))
    dummy = ff if w_rec is None else w_rec
    if w_rec is None or fused:
        kernel[grid](ff.contiguous(), dummy.contiguous(), r0.contiguous(), outs, theta.contiguous(), r_prev, cur,
                     r_out, B, n, lam, **config)
        return outs, r_prev, cur, tuple(r_out.unbind(0)), outs[-1]
    # fallback: per step, I^τ = ff^τ + o^{τ-1} W_rec^T in torch, then the neuron step (λ = 1)
    theta, state = theta.contiguous(), r0.contiguous()
    for t in range(lam):
        current = torch.addmm(ff[t], outs[t], w_rec.t()).unsqueeze(0)          # [1, B, n]
        next_state = dispatch.output(d, B, n, like=ff)
        kernel[grid](current, dummy, state, outs[t:], theta, r_prev[t:], cur[t:], next_state, B, n, 1, **config)
        state = next_state
    return outs, r_prev, cur, tuple(state.unbind(0)), outs[-1]
