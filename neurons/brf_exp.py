"""BRF with the exact exponential step (Higuchi et al., ICML 2024).

With b^t = −b' − q^{t-1}, the oscillator (u + i v) advances by exp(δ(b + iω)) instead of an Euler
step; in real arithmetic, with ρ = exp(δ b^t):

    u^t = ρ (u^{t-1} cos δω − v^{t-1} sin δω) + δ I^t
    v^t = ρ (u^{t-1} sin δω + v^{t-1} cos δω)
    z^t = H(u^t − θ − q^{t-1})          q^t = γ q^{t-1} + z^t

The exact step is stable for every ω and b' ≥ 0, so no p(ω) term and no clamp on δω are needed.
ω = |ω_p|, b' = exp(b'_p) (init b' ∈ [0.1, 1], as BRF on ECG); δ = 0.01, θ = 1, γ = 0.9.
q^t = γ q^{t-1} + z^t stays in [0, 1/(1 − γ)] = [0, 10] (declared, so that the build sees ρ ≤ 1).
The clamp b'_p ≤ 20 keeps b' = exp(b'_p) finite in float32 (it overflows above b'_p = 88.7); it
binds only in a neuron long dead: from b' ≈ 1e4 (b'_p ≈ 9.2) ρ = exp(−δ b') is 0 in float32.
"""
import math

import sympy as sp

from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import double_gaussian

neuron = Neuron("brf_exp", doc="balanced resonate-and-fire, exact exponential step")
u, v = neuron.state("u", doc="real part"), neuron.state("v", doc="imaginary part")
q = neuron.state("q", doc="refractory / adaptive threshold", bounds=(0.0, 1 / (1 - 0.9)))
I = neuron.input
omega = neuron.param("omega", init=uniform(3, 5), transform="abs", doc="angular frequency ω = |ω_p|")
b_offset = neuron.param("b_offset", init=uniform(math.log(0.1), math.log(1.0)), transform="exp",
                        clamp=(None, 20.0), doc="damping offset b' = exp(b'_p)")
delta = neuron.const("delta", 0.01)
theta = neuron.const("theta", 1.0)
gamma = neuron.const("gamma", 0.9)

b = neuron.let("b", -b_offset - q)
rho = neuron.let("rho", sp.exp(delta * b))
cos_w = neuron.let("cos_w", sp.cos(delta * omega))
sin_w = neuron.let("sin_w", sp.sin(delta * omega))
u_new = neuron.let("u_new", rho * (u * cos_w - v * sin_w) + delta * I)
v_new = neuron.let("v_new", rho * (u * sin_w + v * cos_w))
z = neuron.spike(u_new - theta - q, surrogate=double_gaussian())
neuron.update(u, u_new)
neuron.update(v, v_new)
neuron.update(q, gamma * q + z)
