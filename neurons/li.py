"""LI: leaky-integrator readout, a non-spiking output layer (docs/hypr.md §5):

    y^t = κ y^{t-1} + (1−κ) I^t        κ = exp(−1/τ_out)

with I^t = W_out z^t + b_out; the output (the logits at step t) is y^t itself.
τ_out is trainable (init U[15, 25]); the clamp keeps τ_out ≥ 1 step.
"""
import sympy as sp

from hyprgen.spec import Neuron, uniform

neuron = Neuron("li", doc="leaky-integrator readout")
y = neuron.state("y", doc="output potential (logit)")
tau_out = neuron.param("tau_out", init=uniform(15, 25), clamp=(1.0, None), doc="output time constant (steps)")

kappa = sp.exp(-1 / tau_out)
y_new = neuron.let("y_new", kappa * y + (1 - kappa) * neuron.input)
neuron.update(y, y_new)
neuron.output(y_new)
