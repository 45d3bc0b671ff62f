"""The one mapping between hyprgen's discrete-time layers and NIR's continuous-time nodes (docs/nir.md).

A hyprgen step is dt of NIR time, and NIR's ODEs are read with forward Euler, the discretisation
snnTorch and Norse use when they export to and import from NIR:

    NIR LIF / LI:   τ v̇ = (v_leak − v) + r I
    forward Euler:  v^t = v^{t-1} + (dt/τ) ((v_leak − v^{t-1}) + r I^t)
    hyprgen:        u^t = α u^{t-1} + (1 − α) I^t,        α = exp(−1/τ_steps)

agree exactly when dt/τ = 1 − α, r = 1 and v_leak = 0, so τ = dt / (1 − exp(−1/τ_steps)) and back
τ_steps = −1 / ln(1 − dt/τ). LIF adds z^t = H(v^t − v_threshold) (strict, as H(0) = 0) and hyprgen's
reset: the spike of step t−1 subtracts v_threshold − v_reset at step t (v_reset = 0). In NIR's
continuous time, where v never passes the threshold, that subtraction and NIR's "v ← v_reset" are
the same reset; a time-stepped reader must subtract (snnTorch's Leaky(reset_mechanism="subtract"))
to reproduce hyprgen, which the graph's metadata says (reset = "subtract").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from ..errors import HyprgenError

DISCRETIZATION = "forward-euler"
RESET = "subtract"


def require_nir() -> ModuleType:
    """The nir package, imported only here: hyprgen itself never needs it."""
    try:
        import nir
    except ImportError:
        raise HyprgenError("NIR export and import need the nir package: pip install hyprgen[nir]") from None
    return nir


def check_dt(dt, where: str) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)) or not math.isfinite(dt) or dt <= 0:
        raise HyprgenError(f"{where}: dt (the NIR time of one hyprgen step) must be a positive number, got {dt!r}")
    return float(dt)


def nir_tau(tau_steps: np.ndarray, dt: float) -> np.ndarray:
    """NIR's τ (in dt's unit) of the per-step decay α = exp(−1/τ_steps): dt / (1 − α); [n] float64."""
    return dt / -np.expm1(-1.0 / np.asarray(tau_steps, dtype=np.float64))


def steps_tau(tau: np.ndarray, dt: float) -> np.ndarray:
    """hyprgen's τ (in steps) of NIR's τ: α = 1 − dt/τ, τ_steps = −1/ln α; [n] float64. Needs τ > dt."""
    return -1.0 / np.log1p(-dt / np.asarray(tau, dtype=np.float64))


@dataclass(frozen=True)
class NeuronForm:
    """A shipped neuron that one NIR node expresses: the node, the parameter holding τ in steps, and
    the META it must have (carried states, parameters, output) for the name to be trusted."""

    name: str                   # META["name"]
    node: str                   # the NIR node type: "LIF" or "LI"
    tau_param: str              # its only parameter, τ in steps, identity transform
    carried: tuple[str, ...]    # META["carried"]
    output: str                 # META["output"]


THRESHOLD = 1.0   # lif's θ (a spec constant, so not in META: checked by the probe in `form_of`)
FORMS = {"lif": NeuronForm("lif", "LIF", "tau_u", ("u", "z"), "spike"),
         "li": NeuronForm("li", "LI", "tau_out", ("y",), "continuous")}

# Why each other shipped neuron has no NIR node (NIR's neurons are linear between spikes, one state
# per neuron plus CubaLIF's synaptic current, with a fixed threshold and a reset to a constant).
NOT_EXPRESSIBLE = {
    "alif": "an adaptive-threshold LIF: its threshold rises with a second state a, NIR's LIF has a fixed v_threshold",
    "brf": "a balanced resonate-and-fire neuron (complex state u + iv, threshold raised by q) has no NIR primitive",
    "brf_exp": "a balanced resonate-and-fire neuron (complex state u + iv, threshold raised by q) has no NIR primitive",
    "rf": "a resonate-and-fire neuron (complex state u + iv) has no NIR primitive",
    "se_adlif": "an adaptive LIF: its adaptation current w feeds back into u, no NIR primitive has that coupling",
    "ef_adlif": "an adaptive LIF: its adaptation current w feeds back into u, no NIR primitive has that coupling",
    "adex": "an exponential integrate-and-fire neuron: its ODE is nonlinear in v, NIR's neurons are linear",
    "izhikevich": "a quadratic integrate-and-fire neuron: its ODE is nonlinear in v, NIR's neurons are linear",
}


def form_of(neuron: ModuleType) -> NeuronForm:
    """The NIR form of a layer's neuron module, or a HyprgenError '<name>: <why not>'."""
    meta = neuron.META
    name = meta["name"]
    if name not in FORMS:
        why = NOT_EXPRESSIBLE.get(name, "a user neuron: NIR nodes exist only for the linear neurons hyprgen "
                                        "ships as 'lif' and 'li' (and the linear readout)")
        raise HyprgenError(f"{name}: {why}")
    form = FORMS[name]
    params = meta["params"]
    if (tuple(meta["carried"]) != form.carried or meta["output"] != form.output or len(params) != 1
            or params[0]["name"] != form.tau_param or params[0]["transform"]["kind"] != "identity"):
        raise HyprgenError(f"{name}: not the shipped '{name}' (carried {meta['carried']}, parameters "
                           f"{[p['name'] for p in params]}, output {meta['output']}): a user neuron of that name")
    if not steps_as(form, neuron):
        update = "u = αu + (1−α)I − z, z = H(u − 1)" if form.node == "LIF" else "y = κy + (1−κ)I"
        raise HyprgenError(f"{name}: not the shipped '{name}': its step differs from {update} on a probe: "
                           "a user neuron of that name")
    return form


def steps_as(form: NeuronForm, neuron: ModuleType) -> bool:
    """Whether the module's step is the form's update on a float64 probe of 64 neurons (τ from 1 to 40
    steps, states and currents on both sides of the threshold, z both 0 and 1)."""
    gen = torch.Generator().manual_seed(0)
    n = 64
    tau = torch.linspace(1.0, 40.0, n, dtype=torch.float64)
    alpha = torch.exp(-1.0 / tau)
    I = 3.0 * torch.randn(1, n, generator=gen, dtype=torch.float64)
    v = 2.0 * torch.randn(1, n, generator=gen, dtype=torch.float64)
    if form.node == "LIF":
        z = (torch.arange(n) % 2).to(torch.float64)[None]
        (u_new, z_new), out = neuron.step((v, z), I, (tau,))
        want = alpha * v + (1 - alpha) * I - THRESHOLD * z
        spikes = (want > THRESHOLD).to(torch.float64)
        return bool(torch.allclose(u_new, want, rtol=1e-12, atol=1e-12) and torch.equal(z_new, spikes)
                    and torch.equal(out, spikes))
    (y_new,), out = neuron.step((v,), I, (tau,))
    want = alpha * v + (1 - alpha) * I
    return bool(torch.allclose(y_new, want, rtol=1e-12, atol=1e-12)
                and torch.allclose(out, want, rtol=1e-12, atol=1e-12))
