"""EF-adLIF: adaptive LIF discretised with explicit Euler (Bittar & Garner, Front. Neurosci. 2022;
as in the release of Baronig et al., github.com/IGITUGraz/SE-adlif):

    ũ^t = α u^{t-1} + (1−α)(I^t − w^{t-1})      z^t = H(ũ^t − θ)
    u^t = ũ^t (1 − z^t)                          (reset to 0)
    w^t = β w^{t-1} + (1−β) q_a (a u^{t-1} + b z^{t-1})

The same model as SE-adLIF except that w reads the previous (reset) u and spike, so z^{t-1} is
carried. (The release stores ũ and resets it at the start of the next step; that is the same map.)
Parameters, ranges, surrogate and the gradient-stopped reset factor as in se_adlif.py.
"""
import sympy as sp

from hyprgen.spec import Neuron, interp, uniform
from hyprgen.surrogates import slayer

neuron = Neuron("ef_adlif", doc="adaptive LIF, explicit Euler (Bittar & Garner 2022)",
                detach_reset=True)
u = neuron.state("u", doc="membrane potential (after reset)")
w = neuron.state("w", doc="adaptation current")
tau_u = neuron.param("tau_u", init=uniform(0, 1), transform=interp(5, 25), clamp=(0, 1),
                     doc="membrane time constant τ_u = 5 + 20·raw (steps)")
tau_w = neuron.param("tau_w", init=uniform(0, 1), transform=interp(60, 300), clamp=(0, 1),
                     doc="adaptation time constant τ_w = 60 + 240·raw (steps)")
a = neuron.param("a", init=uniform(0, 1), clamp=(0, 1), doc="subthreshold coupling of w to u")
b = neuron.param("b", init=uniform(0, 2), clamp=(0, 2), doc="spike-triggered adaptation")
q_a = neuron.const("q_a", 120.0)
theta = neuron.const("theta", 1.0)

alpha = sp.exp(-1 / tau_u)
beta = sp.exp(-1 / tau_w)
u_tilde = neuron.let("u_tilde", alpha * u + (1 - alpha) * (neuron.input - w))
z = neuron.spike(u_tilde - theta, surrogate=slayer(a=5.0, c=0.4))
neuron.update(u, u_tilde * (1 - neuron.reset(z)))
neuron.update(w, beta * w + (1 - beta) * q_a * (a * u + b * neuron.prev_spike))
