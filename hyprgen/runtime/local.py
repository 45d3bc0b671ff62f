"""Dense local Jacobians from a generated module's sparse ones (docs/hypr.md §2).

Generated `step_with_jacobians` returns nested tuples whose entries are tensors, floats, or None for
structural zeros. The torch backend works on dense [..., d, d] blocks (d is small); the Triton
target keeps the zeros out of the arithmetic instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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
