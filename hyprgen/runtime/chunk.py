"""HYPR's chunk computations in plain PyTorch (docs/hypr.md §4): the P-stage and the merge.

These are the reference implementations beside which the Triton kernels (P-stage
`<neuron>_chunk_kernel`, `merge_kernel`) are tested. Shapes: λ steps, B samples, n neurons, m
presynaptic inputs, d carried state components, p neuron parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .local import LocalJacobians


@dataclass
class Traces:
    """Eligibility traces carried across chunks (HYPR.md §3), per sample."""

    eps: torch.Tensor    # [B, n, d, m]  ε_ij   weights
    eps_b: torch.Tensor  # [B, n, d]     ε_i    bias
    Theta: torch.Tensor  # [B, n, d, p]  Θ_i    neuron parameters

    @staticmethod
    def zeros(B: int, n: int, d: int, m: int, p: int, like: torch.Tensor) -> "Traces":
        z = lambda *s: torch.zeros(*s, dtype=like.dtype, device=like.device)  # noqa: E731
        return Traces(z(B, n, d, m), z(B, n, d), z(B, n, d, p))


@dataclass
class ChunkSweep:
    """What one reverse sweep over a chunk produces (HYPR.md §4)."""

    q0: torch.Tensor           # [B, n, d]     q^0
    g: torch.Tensor            # [λ, B, n]     g^τ = q^τ c^τ + λ^τ γ^τ
    E: torch.Tensor            # [λ, B, n, d]  E^τ = Φ^{λ:τ+1} c^τ
    Phi: torch.Tensor          # [B, n, d, d]  Φ^{λ:1}
    theta_grad: torch.Tensor   # [n, p]        Σ_b Σ_τ (q^τ D^τ + λ^τ δ^τ)
    Theta_in: torch.Tensor     # [B, n, d, p]  Σ_τ Φ^{λ:τ+1} D^τ


def p_stage(J: LocalJacobians, signal: torch.Tensor) -> ChunkSweep:
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
    theta_grad = torch.einsum("tbnd,tbndp->np", q_after, J.D) + torch.einsum("tbn,tbnp->np", signal, J.delta)
    E = (Phi_after @ J.c.unsqueeze(-1)).squeeze(-1)
    Theta_in = (Phi_after @ J.D).sum(0)
    return ChunkSweep(q, g, E, Phi, theta_grad, Theta_in)


@dataclass
class ChunkGradient:
    W: torch.Tensor      # [n, m]
    b: torch.Tensor      # [n]
    theta: torch.Tensor  # [n, p]


@torch.no_grad()  # explicit gradients; also, the in-place accumulation below has no autograd form
def merge(traces: Traces, sweep: ChunkSweep, pre: torch.Tensor) -> tuple[ChunkGradient, Traces]:
    """Chunk gradient and traces carried out of the chunk. pre: presynaptic p^τ [λ, B, m]."""
    lam, B, n, d = sweep.E.shape
    q0 = sweep.q0.unsqueeze(-2)                                          # [B, n, 1, d]
    grad = ChunkGradient(
        W=(q0 @ traces.eps).squeeze(-2).sum(0) + torch.einsum("tbn,tbm->nm", sweep.g, pre),   # GEMM, K = B·λ
        b=(sweep.q0 * traces.eps_b).sum((0, 2)) + sweep.g.sum((0, 1)),
        theta=(q0 @ traces.Theta).squeeze(-2).sum(0) + sweep.theta_grad,
    )
    # ε^λ = Φ^{λ:1} ε^0 + Σ_τ E^τ p^τ: Φ ε^0 into a fresh buffer (the merge's only ε-sized one), then
    # per sample one [n·d, λ] × [λ, m] GEMM accumulated into it in place
    E_b = sweep.E.permute(1, 2, 3, 0).reshape(B, n * d, lam)             # [B, n·d, λ]
    eps = sweep.Phi @ traces.eps                                         # [B, n, d, m], contiguous
    acc = eps.view(B, n * d, pre.shape[-1])
    torch.baddbmm(acc, E_b, pre.transpose(0, 1), out=acc)  # out= rather than baddbmm_: FLOP counters see it
    new = Traces(eps=eps,
                 eps_b=(sweep.Phi @ traces.eps_b.unsqueeze(-1)).squeeze(-1) + sweep.E.sum(0),
                 Theta=sweep.Phi @ traces.Theta + sweep.Theta_in)
    return grad, new
