"""S-stage: one layer's λ sequential steps over a chunk (docs/hypr.md §5), keeping what the P-stage reads.

    s_stage_ref(neuron, ff, w_rec, r0, o0, theta)       the generated torch `step` in a loop: the reference
    s_stage_triton(kernels, ff, w_rec, r0, o0, theta)   the generated S-stage kernel `<neuron>_s_stage_kernel`
    s_stage_cpu(kernels, ff, w_rec, r0, o0, theta)      the generated C step `<neuron>_s_stage_<f32|f64>` (cpu target)

Both take ff = W_in x^τ + b [λ, B, n] (one GEMM for the chunk, done by the caller), W_rec [n, n] or
None, the state carried in r^0 and o^0, and return

    (o^0..o^λ [λ+1, B, n], r^{τ-1} [λ, d, B, n], I^τ [λ, B, n], r^λ (d tensors [B, n]), o^λ [B, n]).

The reference returns the last step's own tensors as the state after the chunk (not views of the
stacked outputs), so a chunk boundary changes nothing, to the bit, in what the next chunk computes.

Shapes: λ steps, B samples, n neurons, d carried state components, p neuron parameters.

Kernel launch. With recurrence and n ≤ MAX_FUSED_N, one program covers BLOCK_B samples × all n
neurons for the whole chunk and adds W_rec o^{τ-1} with tl.dot each step (o^{τ-1} round-trips through
global memory, which the kernel writes anyway: the P-stage and the layer above read it). Up to
REGISTER_N neurons the program's state stays in registers; beyond, it walks the neurons in tiles of
TILE_N every step and reads r^{τ-1} back from the [λ+1, d, B, n] buffer it writes for the P-stage
anyway (TILED: registers hold one tile, so nothing spills; docs/kernels.md has the AOT figures).
Beyond MAX_FUSED_N the fallback runs, per step, the recurrent product as a torch GEMM and the neuron
step as the kernel with RECURRENT=False and λ = 1 (λ launches instead of one): the whole recurrent
product of every step would otherwise fall on the ⌈B/16⌉ programs of the fused kernel. Without
recurrence the grid tiles samples and neurons, one launch per chunk. λ and B are runtime values
(do_not_specialize): a new chunk length, last-chunk length or batch never recompiles; n gets
Triton's usual divisible-by-16 variant.
"""
from __future__ import annotations

from types import ModuleType

import torch

from ..contract import kernel_name
from . import dispatch
from .triton_support import triton

MAX_FUSED_N = 512   # recurrent layers up to this size run the fused S-stage
REGISTER_N = 128    # ... and up to this size keep their state in registers (it spilled at 256: docs/kernels.md)
TILE_N, TILE_WARPS = 128, 16   # the neuron tile (and its warps) of the fused kernel beyond REGISTER_N


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
    """Constexprs and launch options of the S-stage kernel (tl.dot needs tiles ≥ 16). Every choice
    compiles without spills for every shipped neuron on sm_80 and sm_90 (docs/kernels.md, aot.md)."""
    options = dict(DOT_PRECISION="tf32x3", num_stages=1,
                   enable_fp_fusion=True)  # FMA contraction: Triton 3.9's default, pinned (3.10 flips it)
    if not recurrent:
        return dict(RECURRENT=False, TILED=False, BLOCK_B=4, BLOCK_N=min(128, max(16, triton.next_power_of_2(n))),
                    BLOCK_K=16, num_warps=4, **options)
    if n > REGISTER_N:   # neuron tiles, the state through memory: one binary for every n up to MAX_FUSED_N
        return dict(RECURRENT=True, TILED=True, BLOCK_B=16, BLOCK_N=TILE_N, BLOCK_K=16, num_warps=TILE_WARPS,
                    **options)
    # one tile [16, BLOCK_N] holds every neuron, the state in registers: 8 warps up to n = 64, 16 at 128;
    # presynaptic tiles of 32 where 8 warps leave the registers (with 16, ptxas spills 8 B for li at
    # n = 64 on sm_80 once n and the pointers carry the divisible-by-16 attribute of a real launch)
    block_n = max(16, triton.next_power_of_2(n))
    return dict(RECURRENT=True, TILED=False, BLOCK_B=16, BLOCK_N=block_n, BLOCK_K=min(32, block_n) if block_n <= 64
                else 16, num_warps=max(8, block_n // 8), **options)


def s_stage_triton(kernels: ModuleType, ff: torch.Tensor, w_rec: torch.Tensor | None, r0: torch.Tensor,
                   o0: torch.Tensor, theta: torch.Tensor):
    """The generated S-stage kernel. r0 [d, B, n]; theta [p, n] raw parameters (float32)."""
    lam, B, n = ff.shape
    d = kernels.D
    # o^0..o^λ and r^0..r^λ, row 0 given: the kernel writes rows 1..λ (r^{τ-1}: rows 0..λ-1, a view)
    outs, states, cur = dispatch.output(lam + 1, B, n, like=ff), dispatch.output(lam + 1, d, B, n, like=ff), \
        dispatch.output(lam, B, n, like=ff)
    outs[0], states[0] = o0, r0
    fused = w_rec is not None and n <= MAX_FUSED_N
    config = s_stage_config(n, fused)
    kernel = dispatch.for_device(getattr(kernels, kernel_name(kernels.NAME, "s_stage")), ff.device,
                                 tuple(kernels.NOT_SPECIALIZED))
    grid = (triton.cdiv(B, config["BLOCK_B"]), 1 if fused else triton.cdiv(n, config["BLOCK_N"]))
    dummy = ff if w_rec is None else w_rec
    if w_rec is None or fused:
        kernel[grid](ff.contiguous(), dummy.contiguous(), outs, states, theta.contiguous(), cur, B, n, lam, **config)
    else:   # fallback: per step, I^τ = ff^τ + o^{τ-1} W_rec^T in torch, then the neuron step (λ = 1)
        theta = theta.contiguous()
        for t in range(lam):
            current = torch.addmm(ff[t], outs[t], w_rec.t()).unsqueeze(0)          # [1, B, n]
            kernel[grid](current, dummy, outs[t:], states[t:], theta, cur[t:], B, n, 1, **config)
    # r^λ and o^λ copied out, so that the carried state does not hold the chunk's whole buffers alive
    return outs, states[:-1], cur, tuple(states[-1].clone().unbind(0)), outs[-1].clone()


@torch.no_grad()  # the kernels write raw memory: no autograd graph
def s_stage_cpu(kernels, ff: torch.Tensor, w_rec: torch.Tensor | None, r0: torch.Tensor, o0: torch.Tensor,
                theta: torch.Tensor, buffers: dispatch.ChunkBuffers | None = None):
    """The generated C neuron step (ops/cpu_kernels.py) in ff's dtype (float32 or float64). r0 [d, B, n];
    theta [p, n]. With recurrence, per step the GEMM I^τ = ff^τ + o^{τ-1} W_rec^T (torch's BLAS, into
    I^τ's row) then one step of the kernel; without, one call for the chunk (I^τ = ff^τ). buffers: where
    the chunk's states and currents go (a learner call's ChunkBuffers), else new tensors."""
    lam, B, n = ff.shape
    out = lambda name, *shape: dispatch.chunk_output(buffers, name, *shape, like=ff, dtype=ff.dtype)  # noqa: E731
    # outs stays a new tensor: it dies with the layer above's merge, before this layer's P-stage, the
    # chunk's peak, where a buffer held through the call would add B·n·(λ+1) values
    outs, states = dispatch.output(lam + 1, B, n, like=ff, dtype=ff.dtype), out("states", lam + 1, kernels.D, B, n)
    outs[0], states[0] = o0, r0
    theta = theta.contiguous()
    if w_rec is None:
        cur = ff.contiguous()
        kernels.call("s_stage", cur, states, outs, theta, B, n, lam)
    else:
        cur, w_t = out("current", lam, B, n), w_rec.t()
        # o^{τ-1} for the GEMM in a tensor of its own: MKL's product depends on its operand's address
        # alignment (the rows of outs are not 64-byte aligned), and a chunk boundary must change nothing
        o_prev = outs[0].clone()
        for t in range(lam):   # rows t..t+1 of outs and states: the kernel reads row t and writes row t+1
            if t:
                o_prev.copy_(outs[t])
            torch.addmm(ff[t], o_prev, w_t, out=cur[t])
            kernels.call("s_stage", cur[t], states[t:t + 2], outs[t:t + 2], theta, B, n, 1)
    # r^λ and o^λ copied out, as in s_stage_triton
    return outs, states[:-1], cur, tuple(states[-1].clone().unbind(0)), outs[-1].clone()
