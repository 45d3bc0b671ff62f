"""SE-adLIF: adaptive LIF discretised with symplectic Euler (Baronig, Ferrand, Sabathiel, Legenstein,
Nat. Commun. 2025; release github.com/IGITUGraz/SE-adlif):

    ũ^t = α u^{t-1} + (1−α)(I^t − w^{t-1})      z^t = H(ũ^t − θ)
    u^t = ũ^t (1 − z^t)                          (reset to 0)
    w^t = β w^{t-1} + (1−β) q_a (a u^t + b z^t)

α = exp(−1/τ_u), β = exp(−1/τ_w). τ_u ∈ [5, 25] and τ_w ∈ [60, 300] are trained as interpolation
coefficients clamped to [0, 1] (init U[0, 1]); a ∈ [0, 1], b ∈ [0, 2] (init uniform over the range,
clamped); q_a = 120, θ = 1; SLAYER surrogate with a = 5, c = 0.4 (the authors' SHD setting).
As in the release, the spike in the reset factor (1 − z^t) is gradient-stopped (detach_reset=True):
u^t passes (1 − z^t)·dũ^t back; z^t keeps its full path into w^t and the output.
"""
import sympy as sp

from hyprgen.spec import Neuron, interp, uniform
from hyprgen.surrogates import slayer

neuron = Neuron("se_adlif", doc="adaptive LIF, symplectic Euler (Baronig et al. 2025)",
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
u_new = neuron.let("u_new", u_tilde * (1 - neuron.reset(z)))
neuron.update(u, u_new)
neuron.update(w, beta * w + (1 - beta) * q_a * (a * u_new + b * z))
