"""BRF: balanced resonate-and-fire (Higuchi et al., ICML 2024).

No membrane reset: the refractory variable q deepens the damping and raises the threshold.
The clamp keeps δω < 1 so that p(ω) = (−1 + sqrt(1 − (δω)²))/δ stays real.
"""
import sympy as sp

from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import double_gaussian

DELTA = 0.01
neuron = Neuron("brf", doc="balanced resonate-and-fire")
u, v, q = neuron.state("u"), neuron.state("v"), neuron.state("q", doc="refractory / adaptive threshold")
I = neuron.input
omega = neuron.param("omega", init=uniform(3, 5), transform="abs", clamp=(-0.999 / DELTA, 0.999 / DELTA),
                     doc="angular frequency ω = |ω_p|")
b_offset = neuron.param("b_offset", init=uniform(0.1, 1.0), transform="abs", doc="damping offset b' = |b'_p|")
delta = neuron.const("delta", DELTA)
theta = neuron.const("theta", 1.0)
gamma = neuron.const("gamma", 0.9)

# p(ω) = (−1 + sqrt(1 − (δω)²))/δ, written without the cancellation that costs float32 ~4e-4 relative
p_omega = neuron.let("p_omega", -delta * omega**2 / (1 + sp.sqrt(1 - (delta * omega) ** 2)))
b = neuron.let("b", p_omega - b_offset - q)
u_new = neuron.let("u_new", u + delta * (b * u - omega * v + I))
v_new = neuron.let("v_new", v + delta * (omega * u + b * v))
z = neuron.spike(u_new - theta - q, surrogate=double_gaussian())
neuron.update(u, u_new)
neuron.update(v, v_new)
neuron.update(q, gamma * q + z)
