"""Per-step losses and their same-step learning signals ∂l^t/∂y^t (docs/hypr.md §3).

Reductions (every learner uses the same ones, so their gradients compare):
- "ce": cross-entropy at every step whose target is not `ignore_index` (-100); the sum over
  labelled (b, t) divided by `normalizer` (by default the number of labelled steps in the call).
- "mse": squared error at every step where `mask` is true (all steps without a mask), summed over
  outputs and (b, t), divided by `normalizer` (default: the number of counted (b, t) times n_out).
HYPR's sequence mode passes the normalizer of the whole sequence to every chunk, so its gradient
is that of the mean over the sequence; streaming mode normalizes each chunk on its own.
`mean_loss` is loss_sum over the default normalizer with the count kept a tensor: no host sync and,
under torch.compile, one graph (counted_terms' float is a .item(), where the graph would break).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..contract import IGNORE_INDEX
from ..errors import ShapeError

LOSSES = ("ce", "mse")


def check_target(kind: str, shape: tuple[int, int, int], target: torch.Tensor, mask: torch.Tensor | None) -> None:
    """Check a target (and mask) for outputs of shape [B, T, n_out]."""
    B, T, n_out = shape
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
    if not isinstance(target, torch.Tensor):
        raise ShapeError(f"target must be a tensor, got {type(target).__name__}")
    if kind == "ce":
        if target.shape != (B, T) or target.dtype != torch.long:
            raise ShapeError(f"cross-entropy target must be a long tensor [B={B}, T={T}] of class indices "
                             f"(ignore_index={IGNORE_INDEX}), got {target.dtype} {tuple(target.shape)}")
        bad = (target != IGNORE_INDEX) & ((target < 0) | (target >= n_out))
        if bad.any():
            raise ShapeError(f"cross-entropy target has class indices outside [0, {n_out}) "
                             f"(e.g. {target[bad][0].item()})")
    else:
        if target.shape != (B, T, n_out):
            raise ShapeError(f"MSE target must be [B={B}, T={T}, n_out={n_out}], got {tuple(target.shape)}")
        if not torch.isfinite(target).all():
            raise ValueError("MSE target contains NaN or inf values")
    if mask is not None and mask.shape != (B, T):
        raise ShapeError(f"mask must be [B={B}, T={T}], got {tuple(mask.shape)}")


def counted_terms(kind: str, target: torch.Tensor, mask: torch.Tensor | None, n_out: int) -> float:
    """How many terms the loss sums: labelled (b, t) for "ce", counted (b, t) × n_out for "mse"."""
    if kind == "ce":
        return float((target != IGNORE_INDEX).sum())
    count = target.shape[0] * target.shape[1] if mask is None else int(mask.sum())
    return float(count * n_out)


def default_normalizer(kind: str, target: torch.Tensor, mask: torch.Tensor | None, n_out: int) -> float:
    """counted_terms, at least 1 (a call without any counted term has loss 0)."""
    return max(counted_terms(kind, target, mask, n_out), 1.0)


def loss_sum(kind: str, y: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Σ over counted (b, t) of the per-step loss (not normalized). y: [B, T, n_out]."""
    if kind == "ce":
        return F.cross_entropy(y.reshape(-1, y.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX,
                               reduction="sum")
    err = (y - target) ** 2
    if mask is not None:
        err = err * mask[..., None].to(err.dtype)
    return err.sum()


def mean_loss(kind: str, y: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """loss_sum / default_normalizer, the count a tensor: the same value (a float32 loss divides by the
    count in float32 either way; a bfloat16/float16 one in float32, rounded after). y: [B, T, n_out]."""
    if kind == "ce":
        count = (target != IGNORE_INDEX).sum()
    else:
        count = target.shape[0] * target.shape[1] if mask is None else mask.sum()
        count = count * y.shape[-1]
    total = loss_sum(kind, y, target, mask)
    count = torch.as_tensor(count, device=y.device).clamp(min=1).to(torch.promote_types(total.dtype, torch.float32))
    return (total / count).to(total.dtype)


def learning_signal(kind: str, y: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
                    normalizer: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, ∂loss/∂y^t for every t) with loss = loss_sum / normalizer. y: [B, T, n_out] (any dtype).
    In closed form, which tests/runtime/test_losses.py holds to autograd of loss_sum: HYPR calls this
    once a chunk, and building and running autograd's graph took 0.4 ms of a 9 ms chunk (cue suite,
    λ = 16, 2 threads).
    - ce: ∂/∂y = (softmax(y) - onehot(target)) / normalizer at labelled (b, t), 0 elsewhere;
    - mse: ∂/∂y = 2 (y - target) / normalizer where counted, 0 elsewhere."""
    y = y.detach()
    if kind == "ce":
        labelled = (target != IGNORE_INDEX)[..., None]                          # [B, T, 1]
        index = target.clamp(min=0)[..., None]                                  # an ignored step reads class 0
        log_p = torch.log_softmax(y, -1)                                        # [B, T, n_out]
        loss = -torch.where(labelled, log_p.gather(-1, index), 0).sum() / normalizer
        grad = log_p.exp().scatter_add_(-1, index, torch.full_like(index, -1, dtype=y.dtype))
        return loss, torch.where(labelled, grad / normalizer, 0)
    err = y - target
    if mask is not None:
        err = err * mask[..., None].to(err.dtype)
    return (err ** 2).sum() / normalizer, err * (2 / normalizer)
