"""The per-layer stages of one HYPR chunk (docs/hypr.md §5), one implementation per backend.

A layer's view of the tensor functions in ops/: it computes the feed-forward GEMM, hands the
layer's weights, state and parameters to the stage and packs what the P-stage and merge read.
`TorchStages` is the reference: ops.s_stage_ref (the generated torch step in a loop), ops.p_stage_torch
(the generated `p_stage`; with drop_spike_paths, densified Jacobians through ops.p_stage_ref, the plain
form both are tested against), ops.merge_ref. `TritonStages` runs the neuron's generated kernels and
the merge kernel, `CpuStages` the neuron's generated C kernels (cpu target); both are tested against
`TorchStages` output by output.

    s_stage(layer, x [λ, B, n_in], state) -> (o^τ [λ, B, n], Kept, state after the chunk)
    p_stage(layer, kept, signal λ^τ [λ, k·B, n], signal_gamma=True, e_lanes=None) -> (ChunkSweep, λ^τ γ^τ
        [λ, k·B, n]; the layer below's signal: with signal_gamma=False the cpu stages skip it and give
        None, the others compute it anyway). k > 1: k signals over the same states (lane b at sample
        b mod B: the readout's memory's route signals), which the cpu stages sweep without copying the
        states k times. e_lanes: the sweep's E^τ covers the first e_lanes lanes only (the cpu stages
        compute no more; the route lanes' E is never read)
    merge(traces, sweep, pre, out=None) -> (ChunkGradient, traces after the chunk; ε^λ in out when given,
        which may be traces.eps itself where MERGES_IN_PLACE)
    readout_memory_merge(memory, traces, route, pre, readout_q0, readout_Phi, in_place=False) and
    shared_readout_merge(memory, traces, route, pre, weight, decay, in_place=False) -> (ChunkGradient,
        ReadoutTraces after the chunk): the readout's memory (ops/readout_memory.py); in_place (honoured
        where MERGES_IN_PLACE): G' over memory.G
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .. import loader
from ..contract import PREV_SPIKE
from ..ops.cpu_kernels import CpuKernels
from ..ops.dispatch import ChunkBuffers, chunk_output
from ..ops.jacobians import densify
from ..ops.merge import merge_cpu, merge_ref, merge_triton
from ..ops.p_stage import ChunkSweep, p_stage_cpu, p_stage_ref, p_stage_torch, p_stage_triton
from ..ops.readout_memory import (readout_memory_merge_cpu, readout_memory_merge_ref, shared_readout_merge_cpu,
                                  shared_readout_merge_ref, stacked)
from ..ops.s_stage import s_stage_cpu, s_stage_ref, s_stage_triton
from .network import Layer, LayerState


@dataclass
class Kept:
    """What the S-stage keeps of one layer for the P-stage and the merge (this chunk only)."""

    r_prev: torch.Tensor   # [λ, d, B, n]  r^{τ-1}
    current: torch.Tensor  # [λ, B, n]     I^τ
    pre: torch.Tensor      # [λ, B, m]     p^τ = [x^τ ; o^{τ-1}]


def presynaptic(layer: Layer, x: torch.Tensor, o_prev: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """p^τ = [x^τ ; o^{τ-1}] ([λ, B, m]); o_prev holds o^0..o^{λ-1} ([λ, B, n]); out: where it goes."""
    if not layer.recurrent:
        return x
    return torch.cat([x, o_prev], -1, out=out) if out is not None else torch.cat([x, o_prev], -1)


def readout_memory_merge_torch(memory, traces, route, pre, readout_q0, readout_Phi, in_place: bool = False):
    """The torch and Triton stages' readout-memory merge: the reference (never in place)."""
    return readout_memory_merge_ref(memory, traces, route, pre, readout_q0, readout_Phi)


def shared_readout_merge_torch(memory, traces, route, pre, weight, decay, in_place: bool = False):
    return shared_readout_merge_ref(memory, traces, route, pre, weight, decay)


def first_E(sweep: ChunkSweep, e_lanes: int | None) -> ChunkSweep:
    """sweep with E^τ of its first e_lanes lanes only (a view), as the cpu P-stage computes it."""
    return sweep if e_lanes is None else replace(sweep, E=sweep.E[:, :e_lanes])


def lanes_of(kept: Kept, signal: torch.Tensor) -> Kept:
    """kept with its states and currents stacked k times along the batch when the signal has k·B lanes
    ([λ, k·B, n]: block j of B lanes over the same samples), for the P-stages that need them stacked."""
    k = signal.shape[1] // kept.current.shape[1]
    return kept if k == 1 else Kept(stacked(kept.r_prev, k, 2), stacked(kept.current, k, 1), kept.pre)


class TorchStages:
    """drop_spike_paths: leave out every path through a neuron's own previous spike z^{t-1} (the
    carried component named z): A's column z and a_z are zeroed. This is what the authors' HYPR
    release computes (docs/hypr.md §7); hyprgen keeps those paths by default."""

    name = "torch"
    MERGES_IN_PLACE = False   # merge(..., out=) may not be traces.eps (merge_ref reads ε^0 while writing)

    def __init__(self, drop_spike_paths: bool = False):
        self.drop_spike_paths = drop_spike_paths

    @staticmethod
    def s_stage(layer: Layer, x: torch.Tensor, s: LayerState):
        outs, r_prev, current, r_out, o_out = s_stage_ref(layer.neuron, layer.feedforward(x), layer.W_rec, s.r, s.o,
                                                          layer.params_tuple())     # outs: o^0..o^λ
        return outs[1:], Kept(r_prev, current, presynaptic(layer, x, outs[:-1])), LayerState(r_out, o_out)

    def p_stage(self, layer: Layer, kept: Kept, signal: torch.Tensor, signal_gamma: bool = True,
                e_lanes: int | None = None):
        sweep, signal_gamma = self._p_stage(layer, lanes_of(kept, signal), signal)
        return first_E(sweep, e_lanes), signal_gamma

    def _p_stage(self, layer: Layer, kept: Kept, signal: torch.Tensor):
        r_prev, theta = tuple(kept.r_prev.unbind(1)), layer.params_tuple()
        if not self.drop_spike_paths:  # the generated sweep: unrolled algebra, structural zeros skipped
            return p_stage_torch(layer.neuron, r_prev, kept.current, signal, theta)
        _, _, jac = layer.neuron.step_with_jacobians(r_prev, kept.current, theta)
        J = densify(jac, kept.current.shape, kept.current.dtype, kept.current.device)
        if PREV_SPIKE in layer.neuron.META["carried"]:
            z = layer.neuron.META["carried"].index(PREV_SPIKE)
            J.A[..., z] = 0
            J.a[..., z] = 0
        return p_stage_ref(J, signal)

    merge = staticmethod(merge_ref)
    readout_memory_merge = staticmethod(readout_memory_merge_torch)
    shared_readout_merge = staticmethod(shared_readout_merge_torch)


def stacked_params(layer: Layer) -> torch.Tensor:
    """[p, n] raw parameters (a one-element stand-in when p = 0: the kernels never read it)."""
    params = layer.params_tuple()
    return torch.stack(params) if params else layer.W_in.new_zeros(1)


class CompiledStages:
    """A neuron's generated kernels behind the stage interface; a subclass names its launchers."""

    name = "?"
    S_STAGE = P_STAGE = None   # the launchers (ops/s_stage.py, ops/p_stage.py), staticmethods

    def __init__(self, kernels):
        self.kernels = kernels

    def s_stage(self, layer: Layer, x: torch.Tensor, s: LayerState):
        outs, r_prev, cur, r_out, o_out = self.S_STAGE(self.kernels, layer.feedforward(x), layer.W_rec,
                                                       torch.stack(s.r), s.o, stacked_params(layer))   # outs: o^0..o^λ
        return outs[1:], Kept(r_prev, cur, presynaptic(layer, x, outs[:-1])), LayerState(r_out, o_out)

    def p_stage(self, layer: Layer, kept: Kept, signal: torch.Tensor, signal_gamma: bool = True,
                e_lanes: int | None = None):
        kept = lanes_of(kept, signal)
        sweep, signal_gamma = self.P_STAGE(self.kernels, kept.r_prev, kept.current, signal, stacked_params(layer))
        return first_E(sweep, e_lanes), signal_gamma


class TritonStages(CompiledStages):
    """The generated Triton kernels of one neuron (kernels: its <name>_triton module)."""

    name = "triton"
    MERGES_IN_PLACE = False
    S_STAGE, P_STAGE = staticmethod(s_stage_triton), staticmethod(p_stage_triton)
    merge = staticmethod(merge_triton)
    readout_memory_merge = staticmethod(readout_memory_merge_torch)
    shared_readout_merge = staticmethod(shared_readout_merge_torch)


def load_cpu_kernels(neuron) -> CpuKernels:
    """The compiled C kernels of a generated torch module (loader.cpu_source, then ops.cpu_kernels)."""
    return CpuKernels.load(neuron.META["name"], loader.cpu_source(neuron), neuron.META["spec_hash"])


class CpuStages(CompiledStages):
    """The generated C kernels of one neuron (kernels: its ops.cpu_kernels.CpuKernels), float32 or float64."""

    name = "cpu"
    S_STAGE, P_STAGE = staticmethod(s_stage_cpu), staticmethod(p_stage_cpu)
    MERGES_IN_PLACE = True    # merge(..., out=traces.eps) writes ε^λ over ε^0 (ops/merge.py merge_cpu)

    def __init__(self, kernels):
        super().__init__(kernels)
        self.buffers: ChunkBuffers | None = None   # set by the learner within a call (runtime/hypr.py)

    def s_stage(self, layer: Layer, x: torch.Tensor, s: LayerState):
        ff = layer.feedforward(x)
        outs, r_prev, cur, r_out, o_out = s_stage_cpu(self.kernels, ff, layer.W_rec, torch.stack(s.r), s.o,
                                                      stacked_params(layer), self.buffers)   # outs: o^0..o^λ
        pre = chunk_output(self.buffers, "pre", *x.shape[:2], layer.m, like=ff, dtype=ff.dtype) \
            if layer.recurrent else None                                                   # [λ, B, m]
        return outs[1:], Kept(r_prev, cur, presynaptic(layer, x, outs[:-1], pre)), LayerState(r_out, o_out)

    def p_stage(self, layer: Layer, kept: Kept, signal: torch.Tensor, signal_gamma: bool = True,
                e_lanes: int | None = None):
        return p_stage_cpu(self.kernels, kept.r_prev, kept.current, signal, stacked_params(layer), signal_gamma,
                           self.buffers, e_lanes)

    def merge(self, traces, sweep, pre, out=None):
        return merge_cpu(self.kernels, traces, sweep, pre, out)

    def readout_memory_merge(self, memory, traces, route, pre, readout_q0, readout_Phi, in_place: bool = False):
        return readout_memory_merge_cpu(self.kernels, memory, traces, route, pre, readout_q0, readout_Phi, in_place)

    def shared_readout_merge(self, memory, traces, route, pre, weight, decay, in_place: bool = False):
        return shared_readout_merge_cpu(self.kernels, memory, traces, route, pre, weight, decay, in_place)
