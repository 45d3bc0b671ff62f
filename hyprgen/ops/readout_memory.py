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
The cpu target's form (route_merge_cpu and the two launchers after it): the layer's C kernel
route_merge for ΔW and G', the bias and parameter terms in torch; a readout of more than one state
component keeps the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import dispatch
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


def route_signals(readout_E: torch.Tensor, W_out: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The route signals at the top hidden layer, [λ, R·B, n]: w_ρ = E_readout^τ[b, k, c] · W_out[k, :]
    for ρ = (k, c). readout_E: the readout's E^τ [λ, B, n_out, d_r]; W_out [n_out, n]. out: where they
    go, a [λ, R·B, n] tensor whose every step out[t] is contiguous (the lanes after the signal's in
    the P-stage's input), else a new tensor."""
    lam, B, n_out, d_r = readout_E.shape
    n = W_out.shape[1]
    E = readout_E.permute(0, 2, 3, 1)                                     # [λ, n_out, d_r, B]
    if out is None:
        out = readout_E.new_empty(lam, n_out * d_r * B, n)
    torch.mul(E[..., None], W_out[None, :, None, None, :], out=out.view(lam, n_out, d_r, B, n))
    return out


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


def _bias_and_parameter_terms(memory: ReadoutTraces, traces: Traces, route: ChunkSweep, wq: torch.Tensor,
                              phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Δb, Δθ, G_b', G_θ' of a readout with one state component (the small terms of the merges above, in
    torch): wq [R, B, n] weighs the traces of before in the gradient, phi [R, B] decays them."""
    R, B, n = wq.shape
    q0_w, g_w = route.q0.reshape(R, B, n, -1), route.g.reshape(-1, R, B, n)
    b = torch.einsum("rbn,rbn->n", wq, memory.G_b)
    theta = torch.einsum("rbn,rbnp->np", wq, memory.G_theta)
    G_b = phi[..., None] * memory.G_b + torch.einsum("rbnd,bnd->rbn", q0_w, traces.eps_b) + g_w.sum(0)
    G_theta = (phi[..., None, None] * memory.G_theta + torch.einsum("rbnd,bndp->rbnp", q0_w, traces.Theta)
               + route.theta_grad.reshape(R, B, n, -1))
    return b, theta, G_b, G_theta


@torch.no_grad()
def route_merge_cpu(kernels, memory: ReadoutTraces, traces: Traces, route: ChunkSweep, pre: torch.Tensor,
                    wq: torch.Tensor, phi: torch.Tensor, in_place: bool = False
                    ) -> tuple[ChunkGradient, ReadoutTraces]:
    """The merges above for a readout of one state component, in the layer's C kernel (route_merge: ΔW
    and G' in one pass over G, its rank-λ part in register tiles; docs/cpu.md): wq [R, B, n], the weight
    of G in ΔW (q^0_readout[b, ρ], or for the shared trace Σ_k q^0_readout[b, k] W_out[k, i]); phi
    [R, B], the readout's decay over the chunk. in_place: G' is written over memory.G (the learner's way
    when the traces are the call's own: one G-sized buffer at the peak, not two)."""
    R, B, n, m = memory.G.shape
    lam = pre.shape[0]
    G = memory.G.contiguous()
    G_new = G if in_place else dispatch.output(R, B, n, m, like=G, dtype=G.dtype)
    grad_W = dispatch.output(n, m, like=G, dtype=G.dtype)
    g = route.g if route.g[0].is_contiguous() else route.g.contiguous()   # [λ, R·B, n]: a view of more lanes is read as is
    kernels.call("route_merge", G, traces.eps.contiguous(), route.q0.contiguous(), g, pre.contiguous(),
                 phi.contiguous(), wq.contiguous(), G_new, grad_W, R, B, n, m, lam, g.stride(0))
    b, theta, G_b, G_theta = _bias_and_parameter_terms(memory, traces, route, wq, phi)
    return ChunkGradient(W=grad_W, b=b, theta=theta), ReadoutTraces(G=G_new, G_b=G_b, G_theta=G_theta)


def readout_memory_merge_cpu(kernels, memory: ReadoutTraces, traces: Traces, route: ChunkSweep, pre: torch.Tensor,
                             readout_q0: torch.Tensor, readout_Phi: torch.Tensor, in_place: bool = False
                             ) -> tuple[ChunkGradient, ReadoutTraces]:
    """readout_memory_merge_ref on the cpu target. A readout of one state component (an LI readout) takes
    the C kernel; one of more (d_r > 1: its Φ mixes the routes of a readout neuron) takes the reference."""
    R, B = memory.G.shape[:2]
    if readout_q0.shape[-1] != 1 or traces.eps.shape[2] == 0:
        return readout_memory_merge_ref(memory, traces, route, pre, readout_q0, readout_Phi)
    n = memory.G.shape[2]
    wq = readout_q0.reshape(B, R).t()[..., None].expand(R, B, n)        # q^0_readout[b, ρ] for every i
    return route_merge_cpu(kernels, memory, traces, route, pre, wq, readout_Phi.reshape(B, R).t(), in_place)


def shared_readout_merge_cpu(kernels, memory: ReadoutTraces, traces: Traces, route: ChunkSweep, pre: torch.Tensor,
                             weight: torch.Tensor, decay: torch.Tensor, in_place: bool = False
                             ) -> tuple[ChunkGradient, ReadoutTraces]:
    """shared_readout_merge_ref on the cpu target: the route merge with one route (F) and weight [B, n]."""
    if traces.eps.shape[2] == 0:
        return shared_readout_merge_ref(memory, traces, route, pre, weight, decay)
    return route_merge_cpu(kernels, memory, traces, route, pre, weight[None], decay.to(pre.dtype)[None], in_place)
