"""Local Jacobians by torch.func on a generated step: the independent reference for the generator.

Each neuron is a scalar function of its own (r, I, θ), so vmap(jacrev(...)) over the flattened
batch gives every per-neuron Jacobian without touching the generated derivative code.
"""
from __future__ import annotations

import torch
from torch.func import jacrev, vmap

from .local import LocalJacobians


def jacobians_by_autograd(neuron, state: tuple[torch.Tensor, ...], current: torch.Tensor,
                          params: tuple[torch.Tensor, ...]) -> LocalJacobians:
    """state: d tensors [*S]; current [*S]; params: p tensors broadcastable to [*S] → fields over [*S]."""
    shape, d, p = current.shape, len(state), len(params)
    N = current.numel()
    flat = lambda ts, k: (torch.stack([t.expand(shape).reshape(-1) for t in ts], -1) if ts  # noqa: E731
                          else current.new_zeros(N, 0))
    r, theta = flat(state, d), flat(params, p)

    def f(r_, i_, theta_):
        nxt, out = neuron.step_autograd(tuple(r_.unbind(-1)), i_, tuple(theta_.unbind(-1)))
        # `+ 0 * i_` gives constant outputs the batch dimension vmap expects
        nxt = torch.stack([x + 0 * i_ for x in nxt]) if nxt else i_.new_zeros(0)
        return nxt, out + 0 * i_

    (A, c, D), (a, g, dl) = vmap(jacrev(f, argnums=(0, 1, 2)))(r, current.reshape(-1), theta)
    return LocalJacobians(A=A.reshape(*shape, d, d), c=c.reshape(*shape, d), D=D.reshape(*shape, d, p),
                          a=a.reshape(*shape, d), gamma=g.reshape(shape), delta=dl.reshape(*shape, p))
