"""Local Jacobians of one step (docs/hypr.md §2) as dense blocks: from the generated code, or by autograd.

`densify`: generated `step_with_jacobians` returns nested tuples whose entries are tensors, floats, or
None for structural zeros; the reference stages work on dense [..., d, d] blocks (d is small), while
the generated P-stages keep the zeros out of the arithmetic instead.

`jacobians_by_autograd`: the same blocks by torch.func on the generated step, the independent
reference for the generator. Each neuron is a scalar function of its own (r, I, θ), so
vmap(jacrev(...)) over the flattened batch gives every per-neuron Jacobian without touching the
generated derivative code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import jacrev, vmap


@dataclass
class LocalJacobians:
    A: torch.Tensor      # [..., d, d]  ∂r^t/∂r^{t-1}
    c: torch.Tensor      # [..., d]     ∂r^t/∂I^t
    D: torch.Tensor      # [..., d, p]  ∂r^t/∂θ
    a: torch.Tensor      # [..., d]     ∂o^t/∂r^{t-1}
    gamma: torch.Tensor  # [...]        ∂o^t/∂I^t
    delta: torch.Tensor  # [..., p]     ∂o^t/∂θ


def _fill(entries, out: torch.Tensor) -> torch.Tensor:
    """Write nested entries (tensor | float | None) into out[..., i(, j)] with broadcasting."""
    for i, row in enumerate(entries):
        if isinstance(row, tuple):
            for j, e in enumerate(row):
                if e is not None:
                    out[..., i, j] = e
        elif row is not None:
            out[..., i] = row
    return out


def densify(jac: dict, shape: torch.Size, dtype: torch.dtype, device) -> LocalJacobians:
    """jac from generated step_with_jacobians → LocalJacobians over the batch shape `shape`."""
    d, p = len(jac["a"]), len(jac["delta"])
    zeros = lambda *tail: torch.zeros(*shape, *tail, dtype=dtype, device=device)  # noqa: E731
    gamma = zeros()
    if jac["gamma"] is not None:
        gamma[...] = jac["gamma"]
    return LocalJacobians(A=_fill(jac["A"], zeros(d, d)), c=_fill(jac["c"], zeros(d)),
                          D=_fill(jac["D"], zeros(d, p)), a=_fill(jac["a"], zeros(d)),
                          gamma=gamma, delta=_fill(jac["delta"], zeros(p)))


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
