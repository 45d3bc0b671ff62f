"""Interval arithmetic on SymPy expressions: a Range that holds every value an expression takes.

A Range is lo..hi with each end marked open (not attained) or closed; ±inf are always open. Open
ends are what let the analysis see that exp(x) > 0 and 1/exp(x) is defined for every x, which
closed intervals cannot say. The rules, one per operation (anything else: FULL):

    numbers, symbols    [v, v]; env[symbol], FULL when absent
    +, ·                sums; the four end products (0·∞ = 0: a zero factor stays zero)
    b**n, n integer     monotone pieces (b² ≥ 0); n < 0 only for b away from zero
    b**e, e fractional  b ≥ 0 (b > 0 for e < 0);   b**e, e symbolic: exp(e·log b) for b > 0
    |b|, Max, Min       as their definitions;  Piecewise: the hull of its branches
    exp                 (e^lo, e^hi): > 0 always        log: of the positive part
    cosh                [1, cosh(max |b|)]: 1 exactly when b can be 0
    sinh, tanh, erf, atan   monotone (tanh, erf in (−1, 1))
    sin, cos            [−1, 1];   sign: from the signs of b;   Heaviside [0, 1]

Plain interval arithmetic is sound but not tight when a symbol occurs twice (x − x² on [0, 1] is
seen as [−1, 1]): that is what neuron.assume is for (spec.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Range:
    """The reals from lo to hi; an open end is not attained (±inf never are)."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __post_init__(self):
        object.__setattr__(self, "lo_open", self.lo_open or math.isinf(self.lo))
        object.__setattr__(self, "hi_open", self.hi_open or math.isinf(self.hi))

    def attains(self, v: float) -> bool:
        above = self.lo < v or (self.lo == v and not self.lo_open)
        below = v < self.hi or (v == self.hi and not self.hi_open)
        return above and below

    def reaches_below(self, v: float, strictly: bool = True) -> bool:
        """Whether some value is < v (strictly) or <= v."""
        return self.lo < v or (not strictly and self.attains(v))

    def intersect(self, other: Range) -> Range | None:
        """The common part, None when there is none."""
        lo = max((self.lo, self.lo_open), (other.lo, other.lo_open), key=lambda e: (e[0], e[1]))
        hi = min((self.hi, not self.hi_open), (other.hi, not other.hi_open), key=lambda e: (e[0], e[1]))
        result = Range(lo[0], hi[0], lo[1], not hi[1])
        if result.lo > result.hi or (result.lo == result.hi and (result.lo_open or result.hi_open)):
            return None
        return result

    def __str__(self) -> str:
        # ±inf keep brackets (the notation of every message so far); a parenthesis marks an open finite end
        left = "(" if self.lo_open and math.isfinite(self.lo) else "["
        right = ")" if self.hi_open and math.isfinite(self.hi) else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


FULL = Range(-math.inf, math.inf)
UNIT = Range(0.0, 1.0)          # spikes and Heaviside steps


def point(v: float) -> Range:
    return Range(v, v)


def _hull(ends_lo: list[tuple[float, bool]], ends_hi: list[tuple[float, bool]]) -> Range:
    """The range from the least of ends_lo to the greatest of ends_hi, each (value, open); where two
    ends tie, the closed one wins (the value is attained)."""
    lo = min(ends_lo, key=lambda e: (e[0], e[1]))
    hi = max(ends_hi, key=lambda e: (e[0], not e[1]))
    return Range(lo[0], hi[0], lo[1], hi[1])


def _ends(r: Range) -> list[tuple[float, bool]]:
    return [(r.lo, r.lo_open), (r.hi, r.hi_open)]


def _product(a: tuple[float, bool], b: tuple[float, bool]) -> tuple[float, bool]:
    (x, x_open), (y, y_open) = a, b
    if (x == 0 and not x_open) or (y == 0 and not y_open):
        return (0.0, False)          # an attained zero factor: the product is exactly 0
    if x == 0 or y == 0:
        return (0.0, True)           # 0·∞ = 0 as a limit, not attained
    return (x * y, x_open or y_open or x * y == 0)   # a product that underflows to 0 is not 0


def _call(f, v: float) -> float:
    """f(v) with an overflow as ±inf (math.exp(800) raises instead)."""
    try:
        return f(v)
    except OverflowError:
        return math.inf if f in (math.exp, math.cosh) else math.copysign(math.inf, v)


def _pow(b: float, e: float) -> float:
    """b**e at an end b (possibly ±inf or 0), with IEEE's limits: 0**−1 = inf, 1e200**2 = inf."""
    if b == 0 and e < 0:
        return math.inf
    try:
        return b**e      # (1e300)**-2 underflows to 0.0 and stays a closed end: more hazards, never fewer
    except OverflowError:
        odd = float(e).is_integer() and int(e) % 2 == 1
        return -math.inf if b < 0 and odd else math.inf


def monotone(f, r: Range, increasing: bool = True) -> Range:
    """The image of r under a monotone f (ends map to ends, open to open)."""
    lo, hi = _call(f, r.lo), _call(f, r.hi)
    # exp(−1000) is 0.0 in floating point but positive: an end that underflowed to 0 is not attained
    lo_open, hi_open = r.lo_open or (lo == 0 and f is math.exp), r.hi_open or (hi == 0 and f is math.exp)
    return Range(lo, hi, lo_open, hi_open) if increasing else Range(hi, lo, hi_open, lo_open)


MONOTONE = {sp.sinh: math.sinh, sp.tanh: math.tanh, sp.erf: math.erf, sp.atan: math.atan}  # increasing


def _log(v: float) -> float:
    return math.log(v) if v > 0 else -math.inf


def _power(base: Range, e: sp.Expr) -> Range:
    """base**e for a number e."""
    crosses_zero = base.attains(0) or base.lo < 0 < base.hi
    if e.is_Integer:
        n = int(e)
        ends = [(_pow(v, n), o) for v, o in _ends(base)]
        if n > 0 and n % 2 == 0 and crosses_zero:
            return _hull([(0.0, False)], ends)     # b² ≥ 0, 0 at b = 0
        if n < 0 and crosses_zero:
            return FULL                            # 1/b with b reaching zero (a hazard: domain.py)
        return _hull(ends, ends)                   # monotone on each side of zero
    p = float(e)
    if base.lo < 0 or (p < 0 and base.attains(0)):
        return FULL                                # outside the domain (a hazard)
    return monotone(lambda v: _pow(v, p), base, increasing=p > 0)


def interval(expr: sp.Expr, env: dict[sp.Symbol, Range]) -> Range:
    """A Range that contains every value of expr when each symbol lies in env[symbol]."""
    if expr.is_number:
        try:
            return point(float(expr))
        except TypeError:
            return FULL
    if isinstance(expr, sp.Symbol):
        return env.get(expr, FULL)
    if isinstance(expr, sp.Piecewise):
        branches = [interval(e, env) for e, _ in expr.args]
        return _hull([e for b in branches for e in _ends(b)], [e for b in branches for e in _ends(b)])
    if isinstance(expr, sp.Pow) and not expr.exp.is_number:
        base = interval(expr.base, env)
        if base.lo > 0 or (base.lo == 0 and base.lo_open):   # b**e = exp(e·log b)
            return monotone(math.exp, _mul(interval(expr.exp, env), monotone(_log, base)))
        return FULL
    args = [interval(a, env) for a in expr.args]
    if isinstance(expr, sp.Add):
        return Range(sum(a.lo for a in args), sum(a.hi for a in args),
                     any(a.lo_open for a in args), any(a.hi_open for a in args))
    if isinstance(expr, sp.Mul):
        result = args[0]
        for a in args[1:]:
            result = _mul(result, a)
        return result
    if isinstance(expr, sp.Pow):
        return _power(args[0], expr.exp)
    (a, *_) = args
    if isinstance(expr, sp.Abs):
        if a.attains(0) or a.lo < 0 < a.hi:
            return _hull([(0.0, False)], [(abs(v), o) for v, o in _ends(a)])
        ends = [(abs(v), o) for v, o in _ends(a)]
        return _hull(ends, ends)
    if isinstance(expr, sp.exp):
        return monotone(math.exp, a)
    if isinstance(expr, sp.log):
        positive = a.intersect(Range(0.0, math.inf, True))
        return FULL if positive is None else monotone(_log, positive)   # log of its defined part
    if isinstance(expr, sp.cosh):
        ends = [(_call(math.cosh, abs(v)), o) for v, o in _ends(a)]
        if a.attains(0) or a.lo < 0 < a.hi:
            return _hull([(1.0, False)], ends)
        return _hull(ends, ends)
    if type(expr) in MONOTONE:
        return monotone(MONOTONE[type(expr)], a)
    if isinstance(expr, (sp.sin, sp.cos)):
        return Range(-1.0, 1.0)
    if isinstance(expr, sp.sign):
        return Range(-1.0 if a.lo < 0 else 0.0 if a.attains(0) else 1.0,
                     1.0 if a.hi > 0 else 0.0 if a.attains(0) else -1.0)
    if isinstance(expr, sp.Heaviside):
        return UNIT
    if isinstance(expr, sp.Max):
        return Range(max(r.lo for r in args), max(r.hi for r in args),
                     any(r.lo_open for r in args if r.lo == max(q.lo for q in args)),
                     all(r.hi_open for r in args if r.hi == max(q.hi for q in args)))
    if isinstance(expr, sp.Min):
        return Range(min(r.lo for r in args), min(r.hi for r in args),
                     all(r.lo_open for r in args if r.lo == min(q.lo for q in args)),
                     any(r.hi_open for r in args if r.hi == min(q.hi for q in args)))
    return FULL


def _mul(a: Range, b: Range) -> Range:
    ends = [_product(p, q) for p in _ends(a) for q in _ends(b)]
    return _hull(ends, ends)
