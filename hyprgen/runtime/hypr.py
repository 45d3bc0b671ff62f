"""HYPR: chunked online training (docs/hypr.md §4–5) on the torch or the Triton backend.

Per chunk of λ steps: S-stage (each layer bottom-up over the chunk, keeping r^{τ-1}, I^τ, p^τ),
per-step loss and same-step learning signals top-down, P-stage reverse sweep, merge of the traces
(each stage per layer from runtime/stages.py: TorchStages or TritonStages).
Memory is independent of the sequence length T: traces ε [B, n, d, m] plus one chunk's transients.

Sequence mode (`step`): gradients of the whole sequence accumulate, then one optimizer step.
Streaming mode (`stream`): an optimizer step after every chunk; state and traces carry over calls.
"""
from __future__ import annotations

import torch

from . import losses
from .chunk import Traces
from .learners import Learner, StepResult, add_layer_grads
from .network import LayerState, LinearNeuron, RSNN
from .stages import TorchStages, TritonStages

BACKENDS = ("torch", "triton")
MAX_TRITON_D = 4  # carried components the merge kernel handles


class HYPR(Learner):
    """HYPR learner. chunk: λ (any positive int; the last chunk of a sequence may be shorter).

    backend="torch": the generated torch step and the reference P-stage/merge (any dtype, any device).
    backend="triton": every spiking layer runs its neuron's generated Triton kernels (S-stage, P-stage)
    and the merge kernel; float32 only; compiled on CUDA, interpreted on the CPU (slow: for tests).
    A readout="linear" layer has no dynamics and no kernels (y = I is the GEMM itself): it always runs
    the torch stages. trace_dtype: storage of the weight traces ε, torch.float32 or (triton backend)
    torch.bfloat16 (half the memory; arithmetic stays float32, docs/kernels.md bounds the drift).
    drop_spike_paths (torch backend): leave out the paths through each neuron's own previous spike,
    as the authors' release does (docs/hypr.md §7), for comparisons; hyprgen keeps them by default.
    The backend never changes silently: anything a backend cannot run raises.
    """

    def __init__(self, net: RSNN, chunk: int = 64, loss: str = "ce", backend: str = "torch",
                 trace_dtype: torch.dtype | None = None, drop_spike_paths: bool = False):
        super().__init__(net, loss)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
            raise ValueError(f"chunk (λ) must be a positive integer, got {chunk!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        if trace_dtype not in (None, torch.float32) and not (backend == "triton" and trace_dtype == torch.bfloat16):
            raise ValueError(f"trace_dtype {trace_dtype} is not supported with backend={backend!r} "
                             "(float32; bfloat16 with backend='triton')")
        if drop_spike_paths and backend != "torch":
            raise ValueError("drop_spike_paths is a comparison option of backend='torch'")
        self.chunk, self.backend, self.trace_dtype = chunk, backend, trace_dtype
        self.drop_spike_paths = drop_spike_paths
        self.stages = [self._stages_for(i, layer) for i, layer in enumerate(net.layers)]
        self._stream: tuple[list[LayerState], list[Traces]] | None = None

    def _stages_for(self, index: int, layer):
        if self.backend == "torch" or isinstance(layer.neuron, LinearNeuron):
            return TorchStages(self.drop_spike_paths)
        from ..builder import load_triton

        if layer.d > MAX_TRITON_D:
            raise ValueError(f"layer {index} ({layer.neuron.META['name']}) carries d = {layer.d} state components; "
                             f"backend='triton' handles d <= {MAX_TRITON_D}: use backend='torch'")
        return TritonStages(load_triton(layer.neuron))

    # -- public API ----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, x: torch.Tensor, target: torch.Tensor, optimizer=None, mask: torch.Tensor | None = None) -> StepResult:
        """Sequence mode: accumulate the gradient of the whole sequence x [B, T, n_in] into .grad,
        then (if given) one optimizer step. State and traces start from zero."""
        self._prepare(x, target, mask, optimizer)
        normalizer = losses.default_normalizer(self.loss, target, mask, self.net.n_out)
        state, traces = self.net.init_state(x.shape[0]), self._zero_traces(x.shape[0])
        outputs, total = [], x.new_zeros(())
        for s in range(0, x.shape[1], self.chunk):
            sl = slice(s, s + self.chunk)
            y, loss, state, traces = self._chunk(x[:, sl], target[:, sl], None if mask is None else mask[:, sl],
                                                 state, traces, normalizer)
            outputs.append(y)
            total += loss
        self._finish(optimizer)
        return StepResult(total, torch.cat(outputs, 1))

    @torch.no_grad()
    def stream(self, x: torch.Tensor, target: torch.Tensor, optimizer, mask: torch.Tensor | None = None) -> StepResult:
        """Streaming mode: x [B, T, n_in] is the next piece of an endless input. Each chunk of λ steps
        gets its own loss (normalized within the chunk) and an optimizer step; state and traces carry
        over to the next call (reset with `reset_stream`). Returns the mean of the chunk losses."""
        self.net.check_input(x)
        losses.check_target(self.loss, (x.shape[0], x.shape[1], self.net.n_out), target, mask)
        if self._stream is None or self._stream[0][0].o.shape[0] != x.shape[0]:
            if self._stream is not None:
                raise ValueError(f"the stream carries batch size {self._stream[0][0].o.shape[0]}, got {x.shape[0]}; "
                                 "call reset_stream() to start a new stream")
            self._stream = (self.net.init_state(x.shape[0]), self._zero_traces(x.shape[0]))
        state, traces = self._stream
        outputs, chunk_losses = [], []
        for s in range(0, x.shape[1], self.chunk):
            sl = slice(s, s + self.chunk)
            t_c, m_c = target[:, sl], None if mask is None else mask[:, sl]
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            normalizer = losses.default_normalizer(self.loss, t_c, m_c, self.net.n_out)
            y, loss, state, traces = self._chunk(x[:, sl], t_c, m_c, state, traces, normalizer)
            self._finish(optimizer)
            outputs.append(y)
            chunk_losses.append(loss)
        self._stream = (state, traces)
        return StepResult(torch.stack(chunk_losses).mean(), torch.cat(outputs, 1))

    def carried_bytes(self, batch: int) -> int:
        """Bytes carried from one chunk to the next for this batch size (docs/hypr.md §6): the traces
        ε, ε_b, Θ and every layer's state, as this learner allocates them (trace_dtype included)."""
        traces, states = self._zero_traces(batch), self.net.init_state(batch)
        tensors = [x for t in traces for x in (t.eps, t.eps_b, t.Theta)] + [x for s in states for x in (*s.r, s.o)]
        return sum(x.numel() * x.element_size() for x in tensors)

    def reset_stream(self) -> None:
        self._stream = None

    def stream_state(self) -> dict:
        """The carried stream (states and traces) as tensors, for checkpoints."""
        if self._stream is None:
            return {}
        states, traces = self._stream
        return {"states": [(s.r, s.o) for s in states],
                "traces": [(t.eps, t.eps_b, t.Theta) for t in traces]}

    def load_stream_state(self, saved: dict) -> None:
        if not saved:
            self._stream = None
            return
        self._stream = ([LayerState(tuple(r), o) for r, o in saved["states"]],
                        [Traces(*t) for t in saved["traces"]])

    # -- one chunk -----------------------------------------------------------------------------

    def _zero_traces(self, B: int) -> list[Traces]:
        traces = []
        for layer, stages in zip(self.net.layers, self.stages):
            t = Traces.zeros(B, layer.n, layer.d, layer.m, len(layer.neuron.META["params"]), layer.W_in)
            if self.trace_dtype is not None and isinstance(stages, TritonStages):  # only ε is stored narrower
                t = Traces(t.eps.to(self.trace_dtype), t.eps_b, t.Theta)
            traces.append(t)
        return traces

    def _check_backend(self, x: torch.Tensor) -> None:
        if self.backend == "triton" and x.dtype != torch.float32:
            raise ValueError(f"backend='triton' computes in float32; the network and input are {x.dtype} "
                             "(use backend='torch')")

    def _chunk(self, x, target, mask, state, traces, normalizer):
        """S-stage, loss, P-stage and merge of one chunk x [B, λ, n_in]. Gradients go to .grad."""
        self._check_backend(x)
        h = x.transpose(0, 1)  # [λ, B, n_in]
        kept, new_state = [], []
        for layer, stages, s in zip(self.net.layers, self.stages, state):
            h, k, s_out = stages.s_stage(layer, h, s)
            kept.append(k)
            new_state.append(s_out)
        y = h.transpose(0, 1)  # [B, λ, n_out]
        loss, dl_dy = losses.learning_signal(self.loss, y, target, mask, normalizer)
        signal = dl_dy.transpose(0, 1)  # [λ, B, n_out]: λ^τ of the readout
        new_traces = [None] * len(traces)
        for i in range(len(self.net.layers) - 1, -1, -1):  # top-down
            layer, stages, k = self.net.layers[i], self.stages[i], kept[i]
            sweep, signal_gamma = stages.p_stage(layer, k, signal)
            grad, new_traces[i] = stages.merge(traces[i], sweep, k.pre)
            add_layer_grads(layer, grad.W, grad.b, grad.theta)
            if i > 0:
                signal = signal_gamma @ layer.W_in  # ∂l^τ/∂x^τ through same-step paths: [λ, B, n_in]
        return y, loss, new_state, new_traces
