"""Interval analysis of a step: find sqrt/log/fractional powers whose argument can leave the domain.

Ranges are conservative (plain interval arithmetic): states and the input current are unbounded,
spikes lie in [0, 1], raw parameters in their clamp interval (unbounded without one, since training
moves them). A hazard is reported when the argument's range reaches below zero (log: zero).
"""
from __future__ import annotations

import math

import sympy as sp

Interval = tuple[float, float]
FULL: Interval = (-math.inf, math.inf)


def _mul(a: float, b: float) -> float:
    return 0.0 if a == 0 or b == 0 else a * b  # 0·∞ = 0: a zero factor stays zero


def interval(expr: sp.Expr, env: dict[sp.Symbol, Interval]) -> Interval:
    """A range that contains every value of expr when each symbol lies in env[symbol]."""
    if expr.is_number:
        try:
            v = float(expr)
        except TypeError:
            return FULL
        return (v, v)
    if isinstance(expr, sp.Symbol):
        return env.get(expr, FULL)
    args = [interval(a, env) for a in expr.args] if not isinstance(expr, sp.Piecewise) else []
    if isinstance(expr, sp.Add):
        return (sum(a[0] for a in args), sum(a[1] for a in args))
    if isinstance(expr, sp.Mul):
        lo, hi = args[0]
        for a_lo, a_hi in args[1:]:
            products = [_mul(p, q) for p in (lo, hi) for q in (a_lo, a_hi)]
            lo, hi = min(products), max(products)
        return (lo, hi)
    if isinstance(expr, sp.Pow):
        (b_lo, b_hi), e = args[0], expr.exp
        if e.is_Integer:
            n = int(e)
            if n > 0:
                cands = [b_lo**n, b_hi**n]
                if n % 2 == 0 and b_lo <= 0 <= b_hi:
                    return (0.0, max(cands))
                return (min(cands), max(cands))
            if b_lo > 0 or b_hi < 0:  # 1/b^|n| with b away from zero
                cands = [b_lo**n, b_hi**n]
                return (min(cands), max(cands))
            return FULL
        if e.is_number and b_lo >= 0:
            v = [b_lo ** float(e) if b_lo > 0 or float(e) > 0 else math.inf, b_hi ** float(e)]
            return (min(v), max(v))
        return FULL
    if isinstance(expr, sp.Abs):
        lo, hi = args[0]
        return (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
    if isinstance(expr, sp.exp):
        lo, hi = args[0]
        return (math.exp(lo) if lo < 700 else math.inf, math.exp(hi) if hi < 700 else math.inf)
    if isinstance(expr, sp.log):
        lo, hi = args[0]
        return (math.log(lo) if lo > 0 else -math.inf, math.log(hi) if hi > 0 else -math.inf)
    if isinstance(expr, (sp.sin, sp.cos, sp.tanh, sp.sign)):
        return (-1.0, 1.0)
    if isinstance(expr, sp.Heaviside):
        return (0.0, 1.0)
    if isinstance(expr, sp.Max):
        return (max(a[0] for a in args), max(a[1] for a in args))
    if isinstance(expr, sp.Min):
        return (min(a[0] for a in args), min(a[1] for a in args))
    if isinstance(expr, sp.Piecewise):
        vals = [interval(e, env) for e, _ in expr.args]
        return (min(v[0] for v in vals), max(v[1] for v in vals))
    return FULL


def hazards(expr: sp.Expr, env: dict[sp.Symbol, Interval]) -> list[tuple[sp.Expr, sp.Expr, Interval, str]]:
    """Every (sub-expression, argument, argument range, condition) in expr whose argument can leave the
    domain; the condition says where it is undefined ('< 0', '<= 0' or '= 0'). Inner calls come first:
    an outer hazard is often only the consequence of an inner one (1/(1 + sqrt(b)) with b < 0)."""
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
        lo, hi = interval(arg, env)
        if (cond == "< 0" and lo < 0) or (cond == "<= 0" and lo <= 0) or (cond == "= 0" and lo <= 0 <= hi):
            found.append((sub, arg, (lo, hi), cond))
    return found
