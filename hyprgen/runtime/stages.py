"""The per-layer stages of one HYPR chunk (docs/hypr.md §5), one implementation per backend.

`TorchStages` is the reference: the generated torch step in a loop (S-stage), the generated
`chunk_sweep` (P-stage; with drop_spike_paths, densified Jacobians through `chunk.p_stage`, the plain
form both are tested against), `chunk.merge`. `TritonStages` runs the neuron's generated kernels
(hyprgen.kernels.layer) and the merge kernel; it is tested against `TorchStages` output by output.

    s_stage(layer, x [λ, B, n_in], state) -> (o^τ [λ, B, n], Kept, state after the chunk)
    p_stage(layer, kept, signal λ^τ [λ, B, n]) -> (ChunkSweep, λ^τ γ^τ [λ, B, n])
    merge(traces, sweep, pre) -> (ChunkGradient, traces after the chunk)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..spec import PREV_SPIKE
from .chunk import ChunkSweep, merge, p_stage
from .local import densify
from .network import Layer, LayerState


@dataclass
class Kept:
    """What the S-stage keeps of one layer for the P-stage and the merge (this chunk only)."""

    r_prev: torch.Tensor   # [λ, d, B, n]  r^{τ-1}
    current: torch.Tensor  # [λ, B, n]     I^τ
    pre: torch.Tensor      # [λ, B, m]     p^τ = [x^τ ; o^{τ-1}]


def presynaptic(layer: Layer, x: torch.Tensor, o_prev: torch.Tensor) -> torch.Tensor:
    """p^τ = [x^τ ; o^{τ-1}] ([λ, B, m]); o_prev holds o^0..o^{λ-1} ([λ, B, n])."""
    return torch.cat([x, o_prev], -1) if layer.recurrent else x


class TorchStages:
    """drop_spike_paths: leave out every path through a neuron's own previous spike z^{t-1} (the
    carried component named z): A's column z and a_z are zeroed. This is what the authors' HYPR
    release computes (docs/hypr.md §7); hyprgen keeps those paths by default."""

    name = "torch"

    def __init__(self, drop_spike_paths: bool = False):
        self.drop_spike_paths = drop_spike_paths

    @staticmethod
    def s_stage(layer: Layer, x: torch.Tensor, s: LayerState):
        ff, theta = layer.feedforward(x), layer.params_tuple()
        r, o = s.r, s.o
        r_prev, currents, outs = [], [], [o]
        for t in range(x.shape[0]):
            current = layer.current(ff[t], o)
            r_prev.append(torch.stack(r) if r else ff.new_zeros(0, *o.shape))
            currents.append(current)
            r, o = layer.neuron.step(r, current, theta)
            outs.append(o)
        outs = torch.stack(outs)                                           # o^0..o^λ: [λ+1, B, n]
        kept = Kept(torch.stack(r_prev), torch.stack(currents), presynaptic(layer, x, outs[:-1]))
        return outs[1:], kept, LayerState(tuple(r), o)

    def p_stage(self, layer: Layer, kept: Kept, signal: torch.Tensor):
        r_prev, theta = tuple(kept.r_prev.unbind(1)), layer.params_tuple()
        if not self.drop_spike_paths:  # the generated sweep: unrolled algebra, structural zeros skipped
            q0, g, signal_gamma, E, Phi, theta_grad, Theta_in = layer.neuron.chunk_sweep(r_prev, kept.current,
                                                                                          signal, theta)
            return ChunkSweep(q0, g, E, Phi, theta_grad, Theta_in), signal_gamma
        _, _, jac = layer.neuron.step_with_jacobians(r_prev, kept.current, theta)
        J = densify(jac, kept.current.shape, kept.current.dtype, kept.current.device)
        if self.drop_spike_paths and PREV_SPIKE in layer.neuron.META["carried"]:
            z = layer.neuron.META["carried"].index(PREV_SPIKE)
            J.A[..., z] = 0
            J.a[..., z] = 0
        return p_stage(J, signal), signal * J.gamma

    merge = staticmethod(merge)


class TritonStages:
    """The generated Triton kernels of one neuron (kernels: its <name>_triton module)."""

    name = "triton"

    def __init__(self, kernels):
        from ..kernels import layer as launch

        self.kernels, self._launch = kernels, launch

    def _theta(self, layer: Layer) -> torch.Tensor:
        """[p, n] raw parameters (a one-element stand-in when p = 0: the kernel never reads it)."""
        params = layer.params_tuple()
        return torch.stack(params) if params else layer.W_in.new_zeros(1)

    def s_stage(self, layer: Layer, x: torch.Tensor, s: LayerState):
        r0 = torch.stack(s.r)
        outs, r_prev, cur, r_out = self._launch.s_stage(self.kernels, layer.feedforward(x), layer.W_rec, r0, s.o,
                                                        self._theta(layer))   # outs: o^0..o^λ
        kept = Kept(r_prev, cur, presynaptic(layer, x, outs[:-1]))
        return outs[1:], kept, LayerState(tuple(r_out.unbind(0)), outs[-1])

    def p_stage(self, layer: Layer, kept: Kept, signal: torch.Tensor):
        return self._launch.p_stage(self.kernels, kept.r_prev, kept.current, signal, self._theta(layer))

    @staticmethod
    def merge(traces, sweep: ChunkSweep, pre: torch.Tensor):
        from ..kernels.merge import merge_triton

        return merge_triton(traces, sweep, pre)
