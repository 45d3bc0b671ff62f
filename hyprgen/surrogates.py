"""Surrogate derivatives ψ(x) for the Heaviside spike, x = distance above threshold (neurons.md).

Each constructor returns a `Surrogate`: a SymPy expression in the real symbol `x`. Any SymPy
expression in `x` may be passed to `Neuron.spike` instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

x = sp.Symbol("x", real=True)


@dataclass(frozen=True)
class Surrogate:
    name: str
    expr: sp.Expr  # ψ(x)

    def __call__(self, h: sp.Expr) -> sp.Expr:
        return self.expr.xreplace({x: h})


def _gauss(v: sp.Expr, sigma: float) -> sp.Expr:
    s = sp.Float(sigma)
    return sp.exp(-v**2 / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s)


def double_gaussian(p: float = 0.15, sigma1: float = 0.5, sigma2: float = 3.0, gamma: float = 0.5) -> Surrogate:
    """BRF: γ[(1+p)·N(x; 0, σ1) − 2p·N(x; 0, σ2)]."""
    p_ = sp.Float(p)
    expr = sp.Float(gamma) * ((1 + p_) * _gauss(x, sigma1) - 2 * p_ * _gauss(x, sigma2))
    return Surrogate("double_gaussian", expr)


def slayer(a: float = 5.0, c: float = 0.2) -> Surrogate:
    """SLAYER / exponential: c·a/2 · exp(−a|x|)."""
    return Surrogate("slayer", sp.Float(c) * sp.Float(a) / 2 * sp.exp(-sp.Float(a) * sp.Abs(x)))


def fast_sigmoid(k: float = 25.0) -> Surrogate:
    """SuperSpike / fast sigmoid: 1/(1 + k|x|)²."""
    return Surrogate("fast_sigmoid", 1 / (1 + sp.Float(k) * sp.Abs(x)) ** 2)


def arctan(alpha: float = 2.0) -> Surrogate:
    """arctan: α/2 / (1 + (π α x / 2)²)."""
    a = sp.Float(alpha)
    return Surrogate("arctan", a / 2 / (1 + (sp.pi * a * x / 2) ** 2))


def boxcar(width: float = 1.0, height: float | None = None) -> Surrogate:
    """Boxcar: height on |x| < width/2 (default height 1/width, unit area)."""
    w = sp.Float(width)
    hgt = sp.Float(1.0 / width if height is None else height)
    return Surrogate("boxcar", sp.Piecewise((hgt, sp.Abs(x) < w / 2), (0, True)))


def straight_through() -> Surrogate:
    """ψ(x) = 1."""
    return Surrogate("straight_through", sp.Integer(1))


LIBRARY = {
    "double_gaussian": double_gaussian,
    "slayer": slayer,
    "exponential": slayer,
    "fast_sigmoid": fast_sigmoid,
    "arctan": arctan,
    "boxcar": boxcar,
    "straight_through": straight_through,
}
