"""What can go wrong inside a step for values the step can reach: domain hazards and float32 overflow.

Both walk one expression with the ranges of the symbols it reads (intervals.py; compiler/reach.py
gives those of a whole model):

- a hazard is a call whose argument can leave the domain: sqrt/log/fractional powers of a negative
  number, log or a negative power of zero, 1/0. The build fails on it (validate.py).
- an overflow is an exp, cosh, sinh or power whose value can exceed float32's largest finite number
  (3.4e38), the precision every kernel computes in. The build warns (a SpecWarning); the step would
  read inf and, one product later, NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .intervals import Range, interval

FLOAT32_MAX = float(np.finfo(np.float32).max)   # 3.4028235e38
# exp(x) overflows above log(FLOAT32_MAX) = 88.72, cosh(x) and |sinh(x)| above acosh(FLOAT32_MAX) = 89.42


@dataclass(frozen=True)
class Hazard:
    call: sp.Expr        # the sub-expression that is undefined somewhere, e.g. sqrt(b)
    arg: sp.Expr         # its argument, b
    reach: Range         # the argument's range
    condition: str       # where the call is undefined: '< 0', '<= 0' or '= 0'


def hazards(expr: sp.Expr, env: dict[sp.Symbol, Range]) -> list[Hazard]:
    """Every call in expr whose argument can leave the domain. Inner calls come first: an outer
    hazard is often only the consequence of an inner one (1/(1 + sqrt(b)) with b < 0)."""
    found = []
    for sub in sp.postorder_traversal(expr):
        if isinstance(sub, sp.Pow) and sub.exp.is_number and not sub.exp.is_Integer:
            arg, cond = sub.base, ("<= 0" if sub.exp.is_negative else "< 0")   # sqrt(b), b**-0.5
        elif isinstance(sub, sp.Pow) and sub.exp.is_Integer and sub.exp.is_negative:
            arg, cond = sub.base, "= 0"                                          # 1/b
        elif isinstance(sub, sp.log):
            arg, cond = sub.args[0], "<= 0"
        else:
            continue
        if arg.is_number:
            continue  # a constant: SymPy folds it, and the 'is not finite' check catches 1/0
        r = interval(arg, env)
        if {"< 0": r.lo < 0, "<= 0": r.reaches_below(0, strictly=False), "= 0": r.attains(0)}[cond]:
            found.append(Hazard(sub, arg, r, cond))
    return found


@dataclass(frozen=True)
class Overflow:
    call: sp.Expr            # exp(a), cosh(a), sinh(a), b**e, or c·call with SymPy's folded coefficient c
    arg: sp.Expr             # what decides the overflow: a, or b for a constant exponent, e for b**e
    reach: Range             # the range of arg
    relation: str            # where it overflows: arg '>' threshold, '|>|': |arg| > threshold, '|<|'
    threshold: float


def _limit(call: sp.Expr, scale: float) -> tuple[sp.Expr, str, float] | None:
    """(argument, relation, threshold): scale·call overflows float32 where the argument passes it."""
    room = FLOAT32_MAX / scale
    if isinstance(call, sp.exp):
        return call.args[0], ">", math.log(room)
    if isinstance(call, (sp.cosh, sp.sinh)):
        return call.args[0], "|>|", math.acosh(room) if room >= 1 else 0.0
    if isinstance(call, sp.Pow) and call.exp.is_number and call.exp != 0:
        p = float(call.exp)
        return call.base, ("|>|" if p > 0 else "|<|"), room ** (1 / p)
    if isinstance(call, sp.Pow) and call.base.is_number and float(call.base) > 1:
        return call.exp, ">", math.log(room) / math.log(float(call.base))
    return None


def _coefficients(expr: sp.Expr) -> dict[sp.Expr, float]:
    """For each factor of a product with a numeric coefficient c, |c|: SymPy folds exp(a + 25.2) into
    8.8e10·exp(a), and the product overflows before the exponential does."""
    out: dict[sp.Expr, float] = {}
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Mul):
            coeff, rest = node.as_coeff_Mul()
            for factor in sp.Mul.make_args(rest):
                out[factor] = max(out.get(factor, 1.0), abs(float(coeff)))
    return out


def overflows(expr: sp.Expr, env: dict[sp.Symbol, Range]) -> list[Overflow]:
    """Every exp, cosh, sinh and power in expr (with the numeric coefficient it is multiplied by, if
    above 1) that can exceed float32's range, inner ones first."""
    found, coefficients = [], _coefficients(expr)
    for sub in sp.postorder_traversal(expr):
        if sub.is_number or not isinstance(sub, (sp.exp, sp.cosh, sp.sinh, sp.Pow)):
            continue
        scale = max(1.0, coefficients.get(sub, 1.0))
        limit = _limit(sub, scale)
        if limit is None:
            continue
        value = interval(sub, env)
        if scale * max(abs(value.lo), abs(value.hi)) > FLOAT32_MAX:
            arg, relation, threshold = limit
            call = sub if scale == 1.0 else sp.Mul(sp.Float(scale), sub, evaluate=False)
            found.append(Overflow(call, arg, interval(arg, env), relation, threshold))
    return found


def linear_threshold(arg: sp.Expr, relation: str, threshold: float) -> tuple[sp.Symbol, str] | None:
    """Where a limit on arg falls in the one symbol arg is linear in: (symbol, 'v > 127.05') or
    (symbol, 'v < -190 or v > 150'); None when arg is not a linear function of one symbol."""
    if len(arg.free_symbols) != 1:
        return None
    (s,) = arg.free_symbols
    poly = sp.Poly(arg, s) if arg.is_polynomial(s) else None
    if poly is None or poly.degree() != 1:
        return None
    slope, offset = (float(c) for c in poly.all_coeffs())
    at = lambda target: (target - offset) / slope  # noqa: E731  the symbol's value where arg = target
    if relation == ">":
        return s, f"{s} {'>' if slope > 0 else '<'} {at(threshold):.6g}"
    if relation == "|>|":
        lo, hi = sorted((at(-threshold), at(threshold)))
        return s, f"{s} < {lo:.6g} or {s} > {hi:.6g}"
    lo, hi = sorted((at(-threshold), at(threshold)))
    return s, f"{lo:.6g} < {s} < {hi:.6g}"
