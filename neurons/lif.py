"""LIF: leaky integrate-and-fire with reset by subtraction."""
import sympy as sp

from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import slayer

neuron = Neuron("lif", doc="leaky integrate-and-fire, reset by subtraction")
u = neuron.state("u", doc="membrane potential")
tau_u = neuron.param("tau_u", init=uniform(5, 25), clamp=(1.0, None), doc="membrane time constant (steps)")
theta = neuron.const("theta", 1.0)

alpha = sp.exp(-1 / tau_u)
u_new = neuron.let("u_new", alpha * u + (1 - alpha) * neuron.input - neuron.reset(theta * neuron.prev_spike))
neuron.spike(u_new - theta, surrogate=slayer())
neuron.update(u, u_new)
