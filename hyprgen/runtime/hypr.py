"""HYPR: chunked online training (docs/hypr.md §4–5) on the generated torch backend.

Per chunk of λ steps: S-stage (each layer bottom-up over the chunk, keeping r^{τ-1}, I^τ, p^τ),
per-step loss and same-step learning signals top-down, P-stage reverse sweep, merge of the traces.
Memory is independent of the sequence length T: traces ε [B, n, d, m] plus one chunk's transients.

Sequence mode (`step`): gradients of the whole sequence accumulate, then one optimizer step.
Streaming mode (`stream`): an optimizer step after every chunk; state and traces carry over calls.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import losses
from .chunk import Traces, merge, p_stage
from .learners import Learner, StepResult, add_layer_grads
from .local import densify
from .network import Layer, LayerState, RSNN


@dataclass
class _Kept:
    """What the S-stage keeps of one layer for the P-stage (this chunk only)."""

    r_prev: tuple[torch.Tensor, ...]  # d tensors [λ, B, n]: r^{τ-1}
    current: torch.Tensor             # [λ, B, n]: I^τ
    pre: torch.Tensor                 # [λ, B, m]: p^τ = [x^τ ; o^{τ-1}]


class HYPR(Learner):
    """HYPR learner. chunk: λ (any positive int; the last chunk of a sequence may be shorter)."""

    def __init__(self, net: RSNN, chunk: int = 64, loss: str = "ce", backend: str = "torch"):
        super().__init__(net, loss)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
            raise ValueError(f"chunk (λ) must be a positive integer, got {chunk!r}")
        if backend != "torch":
            raise ValueError(f"backend {backend!r} is not available; this build has backend='torch'")
        self.chunk, self.backend = chunk, backend
        self._stream: tuple[list[LayerState], list[Traces]] | None = None

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
        return [Traces.zeros(B, L.n, L.d, L.m, len(L.neuron.META["params"]), L.W_in) for L in self.net.layers]

    def _chunk(self, x, target, mask, state, traces, normalizer):
        """S-stage, loss, P-stage and merge of one chunk x [B, λ, n_in]. Gradients go to .grad."""
        h = x.transpose(0, 1)  # [λ, B, n_in]
        kept, new_state = [], []
        for layer, s in zip(self.net.layers, state):
            h, k, s_out = self._s_stage(layer, h, s)
            kept.append(k)
            new_state.append(s_out)
        y = h.transpose(0, 1)  # [B, λ, n_out]
        loss, dl_dy = losses.learning_signal(self.loss, y, target, mask, normalizer)
        signal = dl_dy.transpose(0, 1)  # [λ, B, n_out]: λ^τ of the readout
        new_traces = [None] * len(traces)
        for i in range(len(self.net.layers) - 1, -1, -1):  # top-down
            layer, k = self.net.layers[i], kept[i]
            _, _, jac = layer.neuron.step_with_jacobians(k.r_prev, k.current, layer.params_tuple())
            J = densify(jac, k.current.shape, k.current.dtype, k.current.device)
            sweep = p_stage(J, signal)
            grad, new_traces[i] = merge(traces[i], sweep, k.pre)
            add_layer_grads(layer, grad.W, grad.b, grad.theta)
            signal = (signal * J.gamma) @ layer.W_in  # ∂l^τ/∂x^τ through same-step paths: [λ, B, n_in]
        return y, loss, new_state, new_traces

    @staticmethod
    def _s_stage(layer: Layer, x: torch.Tensor, s: LayerState):
        """Run one layer over the chunk: x [λ, B, n_in] → outputs [λ, B, n], kept tensors, state."""
        ff, theta = layer.feedforward(x), layer.params_tuple()
        r, o = s.r, s.o
        r_prev, currents, o_prev, outs = [], [], [], []
        for t in range(x.shape[0]):
            current = layer.current(ff[t], o)
            r_prev.append(r)
            o_prev.append(o)
            currents.append(current)
            r, o = layer.neuron.step(r, current, theta)
            outs.append(o)
        r_prev_t = tuple(torch.stack([r_[k] for r_ in r_prev]) for k in range(layer.d))
        pre = torch.cat([x, torch.stack(o_prev)], -1) if layer.recurrent else x
        return torch.stack(outs), _Kept(r_prev_t, torch.stack(currents), pre), LayerState(tuple(r), o)
