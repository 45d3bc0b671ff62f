"""ALIF: adaptive-threshold LIF (Bellec et al., NeurIPS 2018), in the form of Yin, Corradi & Bohté,
Nat. Mach. Intell. 2021 (their released `mem_update_adp`):

    a^t = ρ a^{t-1} + (1−ρ) z^{t-1}          A^t = b0 + β a^t
    u^t = α u^{t-1} + (1−α) I^t − A^t z^{t-1}   z^t = H(u^t − A^t)

α = exp(−1/τ_u), ρ = exp(−1/τ_a). The reset subtracts the adaptive threshold, so the previous spike
z^{t-1} is read (and carried). The adaptation path through the neuron's own spike is kept exactly.
Surrogate: Yin et al.'s multi-Gaussian. Clamps keep τ ≥ 1 step, so that exp(−1/τ) stays in [e^-1, 1).
"""
import sympy as sp

from hyprgen.spec import Neuron, normal
from hyprgen.surrogates import x

B0, BETA = 0.01, 1.8


def multi_gaussian(sigma=0.5, height=0.15, scale=6.0, gamma=0.5):
    """Yin et al. 2021: γ[(1+h)·N(x; 0, σ) − h·N(x; σ, sσ) − h·N(x; −σ, sσ)]."""
    def gauss(mu, s):
        return sp.exp(-(x - mu) ** 2 / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s)
    s, h = sp.Float(sigma), sp.Float(height)
    return sp.Float(gamma) * ((1 + h) * gauss(0, s) - h * gauss(s, scale * s) - h * gauss(-s, scale * s))


neuron = Neuron("alif", doc="adaptive-threshold LIF (Bellec 2018, Yin 2021 form)")
u = neuron.state("u", doc="membrane potential")
a = neuron.state("a", init=B0, doc="threshold adaptation (starts at b0, as in the authors' code)")
tau_u = neuron.param("tau_u", init=normal(20, 5), clamp=(1.0, None), doc="membrane time constant (steps)")
tau_a = neuron.param("tau_a", init=normal(150, 10), clamp=(1.0, None), doc="adaptation time constant (steps)")
b0 = neuron.const("b0", B0)
beta = neuron.const("beta", BETA)
z_prev = neuron.prev_spike

alpha = sp.exp(-1 / tau_u)
rho = sp.exp(-1 / tau_a)
a_new = neuron.let("a_new", rho * a + (1 - rho) * z_prev)
threshold = neuron.let("threshold", b0 + beta * a_new)
u_new = neuron.let("u_new", alpha * u + (1 - alpha) * neuron.input - neuron.reset(threshold * z_prev))
neuron.spike(u_new - threshold, surrogate=multi_gaussian())
neuron.update(u, u_new)
neuron.update(a, a_new)
