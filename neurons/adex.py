"""AdEx: adaptive exponential integrate-and-fire (Brette & Gerstner, J. Neurophysiol. 2005),
one explicit Euler step of dt = 0.5 ms, with w in mV (w/g_L) and R I in mV:

    ṽ = v + dt/τ (−(v − E_L) + Δ_T exp((v − v_T)/Δ_T) − w + R I^t)      (v, w at t−1)
    w̃ = w + dt/τ_w (a (v − E_L) − w)
    z^t = H(ṽ − v_peak)      v^t = ṽ (1 − z^t) + v_r z^t  (v ← v_r)      w^t = w̃ + b z^t  (w ← w + b)

Constants from Brette & Gerstner (C = 281 pF, g_L = 30 nS: τ = 9.37 ms; E_L = v_r = −70.6 mV,
v_T = −50.4 mV, Δ_T = 2 mV). The spike is cut at v_peak = v_T + 5Δ_T (as in Brian's AdEx example):
v^{t-1} ≤ v_peak after every step, so the exponential reads at most e^5. A state set above that by
hand (or by an initial state) would overflow it in float32 from v ≈ 127 mV (exp(25.2 + v/2) > 3.4e38)
and turn the step into NaN: the argument is capped at 20 (v = v_T + 20Δ_T = −10.4 mV, 30 mV above
v_peak), which no step reaches, so the cap changes nothing for v ≤ v_peak; above it such a neuron
fires and resets either way.
Input scale: R = 30 mV per unit of I (g_L = 30 nS: I = 1 is 1 nA); rheobase is about I = 0.7.
Trainable: a = a_nS/g_L (B&G: 4/30), b in mV (B&G: 0.0805 nA/g_L = 2.7 mV) and τ_w (B&G: 144 ms),
with clamps (τ_w ≥ 1 ms keeps the Euler step stable). The spike variable is measured in units of
v_peak − v_r, h = (ṽ − v_peak)/30.2 mV, so that the library surrogates see a sensible width.
"""
import sympy as sp

from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import slayer

E_L, V_T, DELTA_T = -70.6, -50.4, 2.0
V_PEAK, V_RESET = V_T + 5 * DELTA_T, E_L
EXP_ARG_MAX = 20.0  # the cap of (v − v_T)/Δ_T: e^20 ≈ 4.9e8, far from float32's e^88.7
neuron = Neuron("adex", doc="adaptive exponential integrate-and-fire (Euler, dt = 0.5 ms)")
v = neuron.state("v", init=E_L, doc="membrane potential (mV)")
w = neuron.state("w", init=0.0, doc="adaptation (mV)")
a = neuron.param("a", init=uniform(0.05, 0.25), clamp=(0.0, 2.0), doc="subthreshold adaptation a/g_L")
b = neuron.param("b", init=uniform(1.0, 4.0), clamp=(0.0, 20.0), doc="spike-triggered adaptation (mV)")
tau_w = neuron.param("tau_w", init=uniform(100.0, 200.0), clamp=(1.0, None), doc="adaptation time constant (ms)")
dt = neuron.const("dt", 0.5)
tau = neuron.const("tau", 281.0 / 30.0)
e_l = neuron.const("E_L", E_L)
v_t = neuron.const("v_T", V_T)
delta_t = neuron.const("delta_T", DELTA_T)
v_peak = neuron.const("v_peak", V_PEAK)
v_r = neuron.const("v_r", V_RESET)
r_in = neuron.const("R", 30.0)

# A named argument: written inline, SymPy would split exp(0.5·v + 25.2) into 8.8e10·exp(0.5·v).
exp_arg = neuron.let("exp_arg", sp.Min((v - v_t) / delta_t, EXP_ARG_MAX))
v_tilde = neuron.let("v_tilde", v + dt / tau * (-(v - e_l) + delta_t * sp.exp(exp_arg) - w + r_in * neuron.input))
w_tilde = neuron.let("w_tilde", w + dt / tau_w * (a * (v - e_l) - w))
z = neuron.spike((v_tilde - v_peak) / (V_PEAK - V_RESET), surrogate=slayer())
fired = neuron.reset(z)
neuron.update(v, v_tilde * (1 - fired) + v_r * fired)
neuron.update(w, w_tilde + b * z)
