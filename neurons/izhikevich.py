"""Izhikevich neuron (Izhikevich, IEEE Trans. Neural Netw. 2003), one explicit Euler step of dt = 0.5 ms:

    ṽ = v^{t-1} + dt (0.04 v² + 5 v + 140 − w + R I^t)       (v, w at t−1; v in mV, t in ms)
    w̃ = w^{t-1} + dt a (b v^{t-1} − w^{t-1})
    z^t = H(ṽ − 30)          v^t = ṽ (1 − z^t) + c z^t   (v ← c)          w^t = w̃ + d z^t   (w ← w + d)

Input scale: R = 10, so I^t = 1 is 10 in Izhikevich's units (his 2003 network drives neurons with
5·N(0, 1)); a regular-spiking cell (b = 0.2) fires for I above about 0.4. Trainable a, b, c, d; the
inits span the ranges of the 2003 network's two populations (excitatory a = 0.02, b = 0.2,
c ∈ [−65, −50], d ∈ [2, 8]; inhibitory a ∈ [0.02, 0.1], b ∈ [0.2, 0.25]), the clamps keep dt·a < 1.
The spike variable is measured in units of the spike amplitude, h = (ṽ − 30)/95 mV, so that the
library surrogates (made for a unit threshold) see a sensible width. v^t ≤ 30 after every step.
Both after-spike resets are `reset` terms and gradient-stopped (detach_reset=True), so the state
Jacobian is the exact (almost-everywhere) derivative, with the surrogate only in the output row.
Kept, the surrogate path through the reset does not contract what the expanding upswing builds up
(∂ṽ/∂v = 3.5 + 0.04 v > 1 above −62.5 mV): traces then grow by e^{0.05…0.2} per step under tonic
firing; stopped, they shrink in most neurons and grow by at most about e^{0.01} per step.
Like Izhikevich's own code, the Euler step is unstable below v ≈ −112 mV, reached only under strong
hyperpolarising input: for a constant I ≲ −11 (RS cell) v alternates every step, for I ≲ −25 it
overshoots past 30 mV and fires spuriously every other step.
"""
from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import slayer

DT, V_PEAK, V_SCALE = 0.5, 30.0, 95.0
neuron = Neuron("izhikevich", doc="Izhikevich quadratic neuron with reset (Euler, dt = 0.5 ms)",
                detach_reset=True)
v = neuron.state("v", init=-65.0, doc="membrane potential (mV)")
w = neuron.state("w", init=-13.0, doc="recovery variable (b·v at rest)")
a = neuron.param("a", init=uniform(0.02, 0.1), clamp=(0.001, 1.0), doc="recovery rate (1/ms)")
b = neuron.param("b", init=uniform(0.2, 0.25), clamp=(0.0, 1.0), doc="recovery sensitivity to v")
c = neuron.param("c", init=uniform(-65.0, -50.0), clamp=(-90.0, -30.0), doc="reset potential (mV)")
d = neuron.param("d", init=uniform(2.0, 8.0), clamp=(0.0, 20.0), doc="recovery jump at a spike")
dt = neuron.const("dt", DT)
v_peak = neuron.const("v_peak", V_PEAK)
r_in = neuron.const("r_in", 10.0)

v_tilde = neuron.let("v_tilde", v + dt * (0.04 * v**2 + 5 * v + 140 - w + r_in * neuron.input))
w_tilde = neuron.let("w_tilde", w + dt * a * (b * v - w))
z = neuron.spike((v_tilde - v_peak) / V_SCALE, surrogate=slayer())
fired = neuron.reset(z)
neuron.update(v, v_tilde * (1 - fired) + c * fired)
neuron.update(w, w_tilde + d * fired)
