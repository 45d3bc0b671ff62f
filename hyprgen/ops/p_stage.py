"""P-stage: one reverse sweep over a chunk of one layer (docs/hypr.md §4), in three forms that agree.

    p_stage_ref(J, signal)                                   plain PyTorch on dense Jacobians: the reference
    p_stage_torch(neuron, r_prev, current, signal, theta)    the neuron's generated `p_stage` (unrolled
                                                             algebra on [B, n] tensors, structural zeros skipped)
    p_stage_triton(kernels, r_prev, current, signal, theta)  the neuron's generated P-stage kernel
                                                             `<neuron>_p_stage_kernel`, launched here
    p_stage_cpu(kernels, r_prev, current, signal, theta)     the neuron's generated C P-stage
                                                             `<neuron>_p_stage_<f32|f64>` (cpu target)

Each returns (ChunkSweep, λ^τ γ^τ [λ, B, n]); the second term is the same-step learning signal the
layer below receives through W_in. Shapes: λ steps, B samples, n neurons, d carried state components,
p neuron parameters. The two generated forms recompute the local Jacobians from the kept state
r^{τ-1} and current I^τ and never store them.

Kernel launch. One lane per (sample, neuron); the neuron-parameter terms are written per sample (no
atomics), as every form returns them: the merge sums them over the batch. The kernel stores every
per-component output structure-of-arrays, one [B, n] slab per component (q^0 [d, B, n], E^τ
[λ, d, B, n], Φ^{λ:1} [d, d, B, n], θ terms [p, B, n] and [d, p, B, n]), so that neighbouring lanes
write neighbouring addresses; ChunkSweep gets permuted views of that storage, in the same shapes as
the other forms, and merge_kernel reads the storage as it is (ops/merge.py). λ and B are runtime
values (do_not_specialize): a new chunk length, last-chunk length or batch never recompiles; n gets
Triton's usual divisible-by-16 variant.

The C P-stage (templates/c/kernels.c.j2) runs the same statements over blocks of lanes and stores
lane-major (q^0 [B, n, d], Φ [B, n, d, d], ...: ChunkSweep's own shapes), except E^τ, which it
stores [B, λ, n, d]: per sample the [λ, n·d] operand of the merge's GEMM (ops/merge.py merge_cpu),
read there without a copy.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch

from ..contract import kernel_name
from . import dispatch
from .triton_support import triton
from .jacobians import LocalJacobians

BLOCK = 128  # P-stage lanes per program


@dataclass
class ChunkSweep:
    """What one reverse sweep over a chunk produces (docs/hypr.md §4). Shapes as below in every form;
    p_stage_triton's tensors are views of structure-of-arrays storage (module docstring)."""

    q0: torch.Tensor           # [B, n, d]     q^0
    g: torch.Tensor            # [λ, B, n]     g^τ = q^τ c^τ + λ^τ γ^τ
    E: torch.Tensor            # [λ, B, n, d]  E^τ = Φ^{λ:τ+1} c^τ
    Phi: torch.Tensor          # [B, n, d, d]  Φ^{λ:1}
    theta_grad: torch.Tensor   # [B, n, p]     Σ_τ (q^τ D^τ + λ^τ δ^τ), per sample (the merge sums over b)
    Theta_in: torch.Tensor     # [B, n, d, p]  Σ_τ Φ^{λ:τ+1} D^τ

    BATCH_AXIS = {"q0": 0, "g": 1, "E": 1, "Phi": 0, "theta_grad": 0, "Theta_in": 0}   # of each field above

    def split_lanes(self, B: int) -> tuple["ChunkSweep", "ChunkSweep"]:
        """A sweep over stacked lanes split into its first B lanes and the rest (views, no copies)."""
        first, rest = {}, {}
        for name, axis in self.BATCH_AXIS.items():
            x = getattr(self, name)
            first[name], rest[name] = x.split([B, x.shape[axis] - B], axis)
        return ChunkSweep(**first), ChunkSweep(**rest)


def p_stage_ref(J: LocalJacobians, signal: torch.Tensor) -> tuple[ChunkSweep, torch.Tensor]:
    """Reverse sweep over τ = λ..1. J fields have leading dims [λ, B, n]; signal λ^τ: [λ, B, n].

    Only the two recursions run step by step (q^{τ-1} = q^τ A^τ + λ^τ a^τ and Φ^{λ:τ} = Φ^{λ:τ+1} A^τ);
    every other term is a batched product over all τ afterwards.
    """
    lam, B, n, d = J.c.shape
    q_after = J.c.new_empty(lam, B, n, d)          # q^τ for τ = 1..λ (the q after step τ)
    Phi_after = J.c.new_empty(lam, B, n, d, d)     # Φ^{λ:τ+1}
    q = J.c.new_zeros(B, n, d)                                                    # q^λ = 0
    Phi = torch.eye(d, dtype=J.c.dtype, device=J.c.device).expand(B, n, d, d)    # Φ^{λ:λ+1} = 1
    for k in range(lam - 1, -1, -1):  # τ = k + 1
        q_after[k], Phi_after[k] = q, Phi
        q = (q.unsqueeze(-2) @ J.A[k]).squeeze(-2) + signal[k].unsqueeze(-1) * J.a[k]   # q^{τ-1}
        Phi = Phi @ J.A[k]                                                               # Φ^{λ:τ}
    g = (q_after * J.c).sum(-1) + signal * J.gamma
    theta_grad = torch.einsum("tbnd,tbndp->bnp", q_after, J.D) + torch.einsum("tbn,tbnp->bnp", signal, J.delta)
    E = (Phi_after @ J.c.unsqueeze(-1)).squeeze(-1)
    Theta_in = (Phi_after @ J.D).sum(0)
    return ChunkSweep(q, g, E, Phi, theta_grad, Theta_in), signal * J.gamma


def p_stage_torch(neuron: ModuleType, r_prev: tuple[torch.Tensor, ...], current: torch.Tensor,
                  signal: torch.Tensor, theta: tuple[torch.Tensor, ...]) -> tuple[ChunkSweep, torch.Tensor]:
    """The generated torch P-stage. r_prev: d tensors [λ, B, n] (r^{τ-1}); current I^τ and signal λ^τ
    [λ, B, n]; theta: p raw parameters [n]."""
    q0, g, signal_gamma, E, Phi, theta_grad, Theta_in = neuron.p_stage(r_prev, current, signal, theta)
    return ChunkSweep(q0, g, E, Phi, theta_grad, Theta_in), signal_gamma


def p_stage_config() -> dict:
    """Constexprs and launch options of the P-stage kernel."""
    return dict(BLOCK=BLOCK, num_warps=4, num_stages=1,
                enable_fp_fusion=True)  # FMA contraction: Triton 3.9's default, pinned (3.10 flips it)


def p_stage_triton(kernels: ModuleType, r_prev: torch.Tensor, current: torch.Tensor, signal: torch.Tensor,
                   theta: torch.Tensor) -> tuple[ChunkSweep, torch.Tensor]:
    """The generated P-stage kernel. r_prev [λ, d, B, n], current and signal [λ, B, n], theta [p, n]
    (float32). The sweep's per-component outputs are stored structure-of-arrays (module docstring)
    and returned as views in ChunkSweep's shapes."""
    lam, B, n = current.shape
    d, p = kernels.D, kernels.P
    out = lambda *shape: dispatch.output(*shape, like=current)  # noqa: E731
    q0, g, sg, E, Phi, theta_grad, Theta_in = out(d, B, n), out(lam, B, n), out(lam, B, n), out(lam, d, B, n), \
        out(d, d, B, n), out(p, B, n), out(d, p, B, n)
    config = p_stage_config()
    kernel = dispatch.for_device(getattr(kernels, kernel_name(kernels.NAME, "p_stage")), current.device,
                                 tuple(kernels.NOT_SPECIALIZED))
    kernel[(triton.cdiv(B * n, config["BLOCK"]),)](
        r_prev.contiguous(), current.contiguous(), signal.contiguous(), theta.contiguous(), q0, g, sg, E, Phi,
        theta_grad, Theta_in, B, n, lam, **config)
    return ChunkSweep(q0=q0.permute(1, 2, 0), g=g, E=E.permute(0, 2, 3, 1), Phi=Phi.permute(2, 3, 0, 1),
                      theta_grad=theta_grad.permute(1, 2, 0), Theta_in=Theta_in.permute(2, 3, 0, 1)), sg


@torch.no_grad()  # the kernels write raw memory: no autograd graph
def p_stage_cpu(kernels, r_prev: torch.Tensor, current: torch.Tensor, signal: torch.Tensor,
                theta: torch.Tensor, signal_gamma: bool = True, buffers: dispatch.ChunkBuffers | None = None,
                e_lanes: int | None = None) -> tuple[ChunkSweep, torch.Tensor | None]:
    """The generated C P-stage (ops/cpu_kernels.py) in current's dtype (float32 or float64). r_prev
    [λ, d, B_in, n], current [λ, B_in, n], signal [λ, B, n] with B a multiple of B_in: lane b sweeps
    the states of sample b mod B_in (as if r_prev and current were stacked B / B_in times, without the
    copies: the readout's memory's route signals), theta [p, n]. signal_gamma=False: λ^τγ^τ (the layer
    below's signal) is neither computed nor stored, and None is returned in its place (the lowest
    layer: a [λ, B, n] buffer less at the chunk's peak). buffers: where the λ-sized outputs (g, E, λγ)
    go (a learner call's ChunkBuffers), else new tensors. e_lanes: E^τ of the first e_lanes lanes only
    (the sweep's E is [λ, e_lanes, n, d]; default all B): the route lanes' E is never read, and at the
    brf suite's λ = 128 it is 126 MB a chunk."""
    lam, B_in, n = current.shape
    B = signal.shape[1]
    if B % B_in or tuple(signal.shape) != (lam, B, n):
        raise ValueError(f"p_stage_cpu: signal {tuple(signal.shape)} must be [λ = {lam}, k·{B_in}, n = {n}] "
                         f"for states of {B_in} samples")
    d, p = kernels.D, kernels.P
    out = lambda *shape: dispatch.output(*shape, like=current, dtype=current.dtype)  # noqa: E731
    chunk_sized = lambda name, *shape: dispatch.chunk_output(buffers, name, *shape, like=current,  # noqa: E731
                                                             dtype=current.dtype)
    q0, Phi, theta_grad, Theta_in = out(B, n, d), out(B, n, d, d), out(B, n, p), out(B, n, d, p)
    e_lanes = B if e_lanes is None else e_lanes
    if not 0 <= e_lanes <= B:
        raise ValueError(f"p_stage_cpu: e_lanes = {e_lanes} must lie in 0..{B} (the signal's lanes)")
    g, E = chunk_sized("g", lam, B, n), chunk_sized("E", e_lanes, lam, n, d)
    sg = chunk_sized("signal_gamma", lam, B, n) if signal_gamma else None
    kernels.call("p_stage", r_prev.contiguous(), current.contiguous(), signal.contiguous(), theta.contiguous(), q0,
                 g, sg, E, Phi, theta_grad, Theta_in, B, B_in, e_lanes, n, lam)
    return ChunkSweep(q0=q0, g=g, E=E.transpose(0, 1), Phi=Phi, theta_grad=theta_grad, Theta_in=Theta_in), sg
