"""The learning signals of runtime/losses.py in closed form against autograd of the loss they derive
from (loss_sum / normalizer): cross-entropy with unlabelled steps, MSE with and without a mask, in
float64 and float32."""
import pytest
import torch

from hyprgen.contract import IGNORE_INDEX
from hyprgen.runtime import losses

B, T, N_OUT = 3, 11, 4


def autograd_signal(kind, y, target, mask, normalizer):
    y = y.detach().requires_grad_(True)
    loss = losses.loss_sum(kind, y, target, mask) / normalizer
    (grad,) = torch.autograd.grad(loss, y)
    return loss.detach(), grad


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)], ids=["f64", "f32"])
@pytest.mark.parametrize("kind, masked", [("ce", False), ("mse", False), ("mse", True)],
                         ids=["ce", "mse", "mse_masked"])
def test_learning_signal_equals_autograd_of_the_loss(kind, masked, dtype, tol):
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(B, T, N_OUT, generator=gen, dtype=dtype) * 3
    if kind == "ce":
        target = torch.randint(0, N_OUT, (B, T), generator=gen)
        target[:, : T // 2] = IGNORE_INDEX          # unlabelled steps, as the delayed cue task has
        target[0, -1] = IGNORE_INDEX
        mask = None
    else:
        target = torch.randn(B, T, N_OUT, generator=gen, dtype=dtype)
        mask = torch.rand(B, T, generator=gen) > 0.4 if masked else None
    normalizer = losses.default_normalizer(kind, target, mask, N_OUT)
    loss, grad = losses.learning_signal(kind, y, target, mask, normalizer)
    ref_loss, ref_grad = autograd_signal(kind, y, target, mask, normalizer)
    assert grad.dtype == y.dtype and grad.shape == y.shape
    assert abs(float(loss - ref_loss)) <= tol * abs(float(ref_loss))
    assert float((grad - ref_grad).abs().max()) <= tol * float(ref_grad.abs().max())
    if kind == "ce":
        assert torch.equal(grad[:, : T // 2], torch.zeros_like(grad[:, : T // 2])), "unlabelled steps carry no signal"
