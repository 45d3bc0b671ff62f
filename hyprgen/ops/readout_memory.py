"""The readout's memory in the learning signal (docs/hypr.md §3a), chunked: the cross-chunk term and
the traces G that carry it, in plain PyTorch.

Under a readout with state (an LI readout's y), a hidden layer's parameter moves the loss at step t
also through the readout state it moved at earlier steps. Per route ρ = (readout neuron k, readout
state component c), per sample, G_ρ holds ∂r_ρ/∂W of the readout state r with respect to this
layer's weights along the paths HYPR keeps (recurrent inputs external, §3), and likewise for the
bias and the neuron parameters. One chunk then adds to the gradient, besides the in-chunk terms
(the layer's usual sweep and merge with the signal g_readout·W_out of §3a, not λγ·W_out):

    ΔW   += Σ_b Σ_ρ q^0_readout[b, ρ] · G_ρ[b]                      (the readout's q^0: the chunk's
                                                                      errors seen from r^{t0-1})
    G_ρ  ← Σ_ρ' Φ_readout[b, ρ, ρ'] G_ρ'[b]  +  q^0_w · ε^0 + Σ_τ g^τ_w p^τ      (per sample)

where the last two terms are this layer's P-stage run with the route signal w_ρ^τ = E_readout^τ[ρ]
routed to the layer through the same-step paths (§3a's κ^{t1-s} M^s), i.e. what the merge computes
for ΔW but kept per sample and per route. Routes stack with the batch in the P-stage: R·B lanes.
Shapes: λ steps, B samples, n neurons, m presynaptic inputs, d carried components of this layer,
p its parameters, R = n_out · d_readout routes (route-major: index ρ·B + b in stacked tensors).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .merge import ChunkGradient, Traces
from .p_stage import ChunkSweep


@dataclass
class ReadoutTraces:
    """∂(readout state)/∂(this layer's parameters) per route and sample, carried across chunks."""

    G: torch.Tensor        # [R, B, n, m]  weights
    G_b: torch.Tensor      # [R, B, n]     bias
    G_theta: torch.Tensor  # [R, B, n, p]  neuron parameters

    @staticmethod
    def zeros(R: int, B: int, n: int, m: int, p: int, like: torch.Tensor, dtype: torch.dtype | None = None):
        z = lambda *s: torch.zeros(*s, dtype=like.dtype, device=like.device)  # noqa: E731
        return ReadoutTraces(z(R, B, n, m).to(dtype or like.dtype), z(R, B, n), z(R, B, n, p))


def route_signals(readout_E: torch.Tensor, W_out: torch.Tensor) -> torch.Tensor:
    """The route signals at the top hidden layer, [λ, R·B, n]: w_ρ = E_readout^τ[b, k, c] · W_out[k, :]
    for ρ = (k, c). readout_E: the readout's E^τ [λ, B, n_out, d_r]; W_out [n_out, n]."""
    lam, B, n_out, d_r = readout_E.shape
    w = torch.einsum("tbkc,ki->tkcbi", readout_E, W_out)                  # [λ, n_out, d_r, B, n]
    return w.reshape(lam, n_out * d_r * B, W_out.shape[1])


def stacked(x: torch.Tensor, R: int, dim: int) -> torch.Tensor:
    """x repeated R times along its batch dimension `dim` (route-major: block ρ holds all B samples)."""
    return x.repeat(*[R if k == dim else 1 for k in range(x.dim())])


@torch.no_grad()
def readout_memory_merge_ref(memory: ReadoutTraces, traces: Traces, route: ChunkSweep, pre: torch.Tensor,
                             readout_q0: torch.Tensor, readout_Phi: torch.Tensor
                             ) -> tuple[ChunkGradient, ReadoutTraces]:
    """The cross-chunk gradient term and the traces G after the chunk.

    traces: this layer's ε^0 (before this chunk's merge); route: this layer's sweep with the route
    signals (batch R·B); pre: p^τ [λ, B, m]; readout_q0 [B, n_out, d_r]; readout_Phi [B, n_out, d_r, d_r]."""
    R, B = memory.G.shape[:2]
    n_out, d_r = readout_q0.shape[1:]
    lam = pre.shape[0]
    q_r = readout_q0.reshape(B, R).t()                                    # [R, B]
    G, G_b, G_theta = memory.G.to(pre.dtype), memory.G_b, memory.G_theta
    grad = ChunkGradient(W=torch.einsum("rb,rbnm->nm", q_r, G), b=torch.einsum("rb,rbn->n", q_r, G_b),
                         theta=torch.einsum("rb,rbnp->np", q_r, G_theta))
    n, d = route.q0.shape[1:]
    q0_w = route.q0.reshape(R, B, n, d)
    g_w = route.g.reshape(lam, R, B, n)
    fresh_W = torch.einsum("rbnd,bndm->rbnm", q0_w, traces.eps.to(pre.dtype)) + torch.einsum("trbn,tbm->rbnm", g_w, pre)
    fresh_b = torch.einsum("rbnd,bnd->rbn", q0_w, traces.eps_b) + g_w.sum(0)
    fresh_theta = torch.einsum("rbnd,bndp->rbnp", q0_w, traces.Theta) + route.theta_grad.reshape(R, B, n, -1)

    def decayed(x: torch.Tensor) -> torch.Tensor:
        """Σ_c' Φ_readout[b, k, c, c'] x[(k, c'), b, ...]: the readout's own flow over the chunk."""
        x = x.reshape(n_out, d_r, B, *x.shape[2:])
        return torch.einsum("bkce,kebx->kcbx", readout_Phi, x.flatten(3)).reshape(R, B, *x.shape[3:])

    new = ReadoutTraces(G=(decayed(G) + fresh_W).to(memory.G.dtype), G_b=decayed(G_b) + fresh_b,
                        G_theta=decayed(G_theta) + fresh_theta)
    return grad, new


@torch.no_grad()
def shared_readout_merge_ref(memory: ReadoutTraces, traces: Traces, route: ChunkSweep, pre: torch.Tensor,
                             weight: torch.Tensor, decay: torch.Tensor) -> tuple[ChunkGradient, ReadoutTraces]:
    """readout_memory_merge_ref for the top hidden layer under a readout whose Jacobians are one value
    for all its neurons (shared τ_out; docs/hypr.md §3a, K_κ = 1): every route's signal is then
    E_readout^τ[b] · W_out[k, i], so one trace F = G / W_out[k, i] serves all k (memory.G: [1, B, n, m]).

    route: this layer's sweep with the signal E_readout^τ[b] on every neuron (batch B); weight [B, n]:
    Σ_k q^0_readout[b, k] · W_out[k, i]; decay [B]: the readout's Φ over the chunk (the same for all k)."""
    B, n = weight.shape
    F, F_b, F_theta = memory.G[0].to(pre.dtype), memory.G_b[0], memory.G_theta[0]
    grad = ChunkGradient(W=torch.einsum("bn,bnm->nm", weight, F), b=(weight * F_b).sum(0),
                         theta=torch.einsum("bn,bnp->np", weight, F_theta))
    fresh_W = torch.einsum("bnd,bndm->bnm", route.q0, traces.eps.to(pre.dtype)) + torch.einsum("tbn,tbm->bnm",
                                                                                                 route.g, pre)
    fresh_b = torch.einsum("bnd,bnd->bn", route.q0, traces.eps_b) + route.g.sum(0)
    fresh_theta = torch.einsum("bnd,bndp->bnp", route.q0, traces.Theta) + route.theta_grad.reshape(B, n, -1)
    k = decay.to(pre.dtype)
    new = ReadoutTraces(G=(k[:, None, None] * F + fresh_W)[None].to(memory.G.dtype),
                        G_b=(k[:, None] * F_b + fresh_b)[None], G_theta=(k[:, None, None] * F_theta + fresh_theta)[None])
    return grad, new
