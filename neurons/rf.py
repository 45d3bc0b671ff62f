"""RF: resonate-and-fire (Izhikevich, Neural Networks 2001).

The damped oscillator z' = (b + iω) z + I, Euler step δ, as in BRF but with a trainable damping
b = −|b_p| and no refractory variable q; no reset:

    u^t = u^{t-1} + δ (b u^{t-1} − ω v^{t-1} + I^t)
    v^t = v^{t-1} + δ (ω u^{t-1} + b v^{t-1})          z^t = H(u^t − θ)

δ = 0.01, θ = 1. The Euler step is stable only while |b| > δ(b² + ω²)/2; the init (ω ∈ [3, 5],
|b| ∈ [0.2, 1]) lies inside that region, training may leave it (which is what BRF's p(ω) fixes).
"""
from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import double_gaussian

neuron = Neuron("rf", doc="resonate-and-fire (Izhikevich 2001)")
u, v = neuron.state("u", doc="real part"), neuron.state("v", doc="imaginary part")
I = neuron.input
omega = neuron.param("omega", init=uniform(3, 5), transform="abs", doc="angular frequency ω = |ω_p|")
damping = neuron.param("damping", init=uniform(0.2, 1.0), transform="abs", doc="damping |b| = |b_p| (b = −|b_p|)")
delta = neuron.const("delta", 0.01)
theta = neuron.const("theta", 1.0)

b = -damping
u_new = neuron.let("u_new", u + delta * (b * u - omega * v + I))
v_new = neuron.let("v_new", v + delta * (omega * u + b * v))
neuron.spike(u_new - theta, surrogate=double_gaussian())
neuron.update(u, u_new)
neuron.update(v, v_new)
