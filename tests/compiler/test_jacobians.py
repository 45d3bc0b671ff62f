"""Generated local Jacobians (docs/hypr.md §2) equal autograd (torch.func) of the generated step."""
import pytest
import torch

from hyprgen.contract import JACOBIAN_BLOCKS
from hyprgen.ops.jacobians import densify, jacobians_by_autograd
from hyprgen.runtime.neuron import clamp_param_, resolve, sample_param

from ..conftest import SHIPPED

B, N = 6, 9


def random_point(mod, generator):
    """Random state, current and raw parameters in float64; spikes in {0, 1}.

    States are drawn around their init with unit scale; states whose init is large (models in mV,
    e.g. v = -65) with scale |init|/4 instead (about ±16 mV around rest: the subthreshold range,
    where the surrogate is small but far from negligible).
    """
    meta = mod.META
    state = []
    for name in meta["carried"]:
        if name == "z":
            state.append(torch.randint(0, 2, (B, N), generator=generator).double())
        else:
            init = meta["state_init"][name]
            scale = meta["state_scale"].get(name, 1.0) if "state_scale" in meta else max(1.0, abs(init) / 4)
            state.append(init + scale * torch.randn(B, N, generator=generator, dtype=torch.float64))
    params = []
    for p in meta["params"]:
        value = sample_param(p["init"], N, generator, torch.float64)
        clamp_param_(value, p["clamp"])
        params.append(value)
    current = 2 * torch.randn(B, N, generator=generator, dtype=torch.float64)
    return tuple(state), current, tuple(params)


def near_threshold_current(mod, state, params):
    """Per element, the current at which the spike flips, found by bisection on the generated step."""
    lo = torch.full((B, N), -1e4, dtype=torch.float64)
    hi = torch.full((B, N), 1e4, dtype=torch.float64)
    spikes_hi = mod.step(state, hi, params)[1]
    for _ in range(80):
        mid = (lo + hi) / 2
        same = mod.step(state, mid, params)[1] == spikes_hi
        hi, lo = torch.where(same, mid, hi), torch.where(same, lo, mid)
    return hi


SPIKING = [name for name in SHIPPED if resolve(name).META["output"] == "spike"]
CASES = [(name, False) for name in SHIPPED] + [(name, True) for name in SPIKING]  # threshold: spiking only


@pytest.mark.parametrize("name, near_threshold", CASES)
def test_generated_jacobians_match_autograd(name, near_threshold):
    mod = resolve(name)
    gen = torch.Generator().manual_seed(1234)
    state, current, params = random_point(mod, gen)
    if near_threshold:
        current = near_threshold_current(mod, state, params)
        current = current + 1e-6 * torch.randn(B, N, generator=gen, dtype=torch.float64)
    nxt, out, jac = mod.step_with_jacobians(state, current, params)
    ref_next, ref_out = mod.step(state, current, params)
    for x, y in zip(nxt, ref_next):
        torch.testing.assert_close(torch.as_tensor(x).expand(B, N), y.expand(B, N), rtol=0, atol=0)
    dense = densify(jac, torch.Size([B, N]), torch.float64, "cpu")
    ref = jacobians_by_autograd(mod, state, current, params)   # torch.func on step_autograd: independent of the generator
    for key in JACOBIAN_BLOCKS:
        torch.testing.assert_close(getattr(dense, key), getattr(ref, key), rtol=1e-10, atol=1e-10, msg=f"{name}: {key}")
    if mod.META["output"] == "spike":
        # the comparison must exercise the surrogate: some spike rows are far from zero
        assert dense.gamma.abs().max() > 1e-3 or dense.a.abs().max() > 1e-3
