"""EProp: the naive per-step forward-eligibility form of HYPR's gradient (docs/hypr.md §3).

Every step updates every trace ε^t = A^t ε^{t-1} + c^t p^t and adds λ^t (a^t ε^{t-1} + γ^t p^t) to
the gradient: O(B·n·m·d²) memory traffic per step, the "slow online" baseline. With
jacobians="autograd" the local Jacobians come from torch.func on the generated step rather than
from the generator, which makes this class the test oracle for HYPR.
"""
from __future__ import annotations

import torch

from ..ops.jacobians import densify, jacobians_by_autograd
from ..ops.merge import Traces
from . import losses
from .finite import GRADIENT_NAMES, check_sequence
from .learner import Learner, StepResult, add_layer_grads
from .network import RSNN


class EProp(Learner):
    def __init__(self, net: RSNN, loss: str = "ce", jacobians: str = "generated", readout_memory: bool | None = None,
                 check_finite: bool = True, process_group=None):
        super().__init__(net, loss, check_finite, process_group)
        if jacobians not in ("generated", "autograd"):
            raise ValueError(f"jacobians must be 'generated' or 'autograd', got {jacobians!r}")
        if readout_memory not in (None, True, False):
            raise ValueError(f"readout_memory must be True, False or None (the default), got {readout_memory!r}")
        self.jacobians = jacobians
        self.readout_memory = net.layers[-1].d > 0 if readout_memory is None else readout_memory

    def _local(self, layer, r_prev, current):
        if self.jacobians == "autograd":
            nxt, out = layer.neuron.step(r_prev, current, layer.params_tuple())
            with torch.enable_grad():
                J = jacobians_by_autograd(layer.neuron, r_prev, current, layer.params_tuple())
            return nxt, out, J
        nxt, out, jac = layer.neuron.step_with_jacobians(r_prev, current, layer.params_tuple())
        return nxt, out, densify(jac, current.shape, current.dtype, current.device)

    @torch.no_grad()
    def step(self, x: torch.Tensor, target: torch.Tensor, optimizer=None, mask: torch.Tensor | None = None) -> StepResult:
        """Gradient of the whole sequence x [B, T, n_in] into .grad, then (if given) one optimizer step."""
        self._prepare(x, target, mask, optimizer)
        B, T, _ = x.shape
        net = self.net
        normalizer = self._normalizer(target, mask, x)
        state = net.init_state(B)
        traces = [Traces.zeros(B, L.n, L.d, L.m, len(L.neuron.META["params"]), L.W_in) for L in net.layers]
        grads = [[L.W_in.new_zeros(L.n, L.m), L.W_in.new_zeros(L.n),
                  L.W_in.new_zeros(L.n, len(L.neuron.META["params"]))] for L in net.layers]
        readout = net.layers[-1]
        # §3a: per hidden layer, ∂(readout state r_kc)/∂(W, b, θ) along the kept paths: [n_out, d_r, B, ...]
        memory = [None if L is readout or not self.readout_memory else
                  [L.W_in.new_zeros(readout.n, readout.d, B, *s) for s in ((L.n, L.m), (L.n,),
                                                                           (L.n, len(L.neuron.META["params"])))]
                  for L in net.layers]
        outputs, total = [], x.new_zeros(())
        for t in range(T):
            h, local = x[:, t], []
            for i, layer in enumerate(net.layers):  # forward, bottom-up
                pre = torch.cat([h, state[i].o], -1) if layer.recurrent else h           # p^t [B, m]
                current = layer.current(layer.feedforward(h[None])[0], state[i].o)       # I^t [B, n]
                r, o, J = self._local(layer, state[i].r, current)
                local.append((pre, J))
                state[i].r, state[i].o = tuple(r), o
                h = o
            y = h[:, None]                                                               # [B, 1, n_out]
            m_t = None if mask is None else mask[:, t:t + 1]
            loss, dl_dy = losses.learning_signal(self.loss, y, target[:, t:t + 1], m_t, normalizer)
            total += loss
            outputs.append(h)
            signal = dl_dy[:, 0]                                                         # λ^t [B, n_out]
            error, J_r = signal, local[-1][1]                  # e^t and the readout's Jacobians at step t
            route = readout.W_in.expand(B, *readout.W_in.shape)  # M^t [B, n_out, n]: readout input ← this layer
            for i in range(len(net.layers) - 1, -1, -1):  # learning signals top-down, same step
                layer, (pre, J), tr = net.layers[i], local[i], traces[i]
                # gradient with ε^{t-1}: λ (a ε^{t-1} + γ p)
                a_eps = (J.a.unsqueeze(-2) @ tr.eps).squeeze(-2)                        # [B, n, m]
                h = (a_eps + J.gamma[..., None] * pre[:, None],                         # ∂o^t/∂(W, b, θ), §3
                     (J.a * tr.eps_b).sum(-1) + J.gamma, (J.a.unsqueeze(-2) @ tr.Theta).squeeze(-2) + J.delta)
                grads[i][0] += torch.einsum("bn,bnm->nm", signal, h[0])
                grads[i][1] += (signal * h[1]).sum(0)
                grads[i][2] += torch.einsum("bn,bnp->np", signal, h[2])
                if memory[i] is not None:  # §3a: e_k (a_r G^{t-1}); G^t = A_r G^{t-1} + c_r M h
                    for g, (G, h_x) in enumerate(zip(memory[i], h)):
                        grads[i][g] += torch.einsum("bk,bkc,kcb...->...", error, J_r.a, G)
                        memory[i][g] = (torch.einsum("bkce,keb...->kcb...", J_r.A, G)
                                        + torch.einsum("bkc,bkn,bn...->kcbn...", J_r.c, route, h_x))
                    route = (route * J.gamma[:, None, :]) @ layer.W_in          # M^t of the layer below
                # traces: ε^t = A ε^{t-1} + c p
                tr.eps = J.A @ tr.eps + J.c[..., None] * pre[:, None, None, :]
                tr.eps_b = (J.A @ tr.eps_b[..., None]).squeeze(-1) + J.c
                tr.Theta = J.A @ tr.Theta + J.D
                signal = (signal * J.gamma) @ layer.W_in
        y = torch.stack(outputs, 1)
        if self.check_finite:
            check_sequence(net, x, y, total, state, [(i, name, g) for i, layer_grads in enumerate(grads)
                                                      for name, g in zip(GRADIENT_NAMES, layer_grads)])
        kept = self._set_aside_grads() if self.parallel.active else None
        for layer, (W, b, theta) in zip(net.layers, grads):
            add_layer_grads(layer, W, b, theta)
        total = self._sum_over_processes(total, kept)
        self._finish(optimizer)
        return StepResult(total, y)
