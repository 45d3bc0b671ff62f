"""Arithmetic for targets without a power operator (Triton, C): what their printers share.

Every sub-expression without free symbols is folded to one literal (`literal`: the exact double, in
the target's spelling), integer powers are expanded (x**3 → x*x*x, x**-2 → 1/(x*x)) up to |n| =
MAX_EXPANDED_POWER for any base, x * b**-e prints as x / b**e, and division is always true division.
sqrt, 1/sqrt, a**x (a number a > 0: exp(log(a)·x)) and every other power are calls the target
spells (`call`). Unary minus is safe to print anywhere: it binds tighter than every emitted operator
in Python and in C, and IEEE negation is exact, so -a*b == (-a)*b == -(a*b).
"""
from __future__ import annotations

import math

import sympy as sp
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom
from sympy.printing.precedence import PRECEDENCE

from ...errors import BuildError
from .printer import ElementwisePrinter, mul_factors

MAX_EXPANDED_POWER = 8  # |n| up to this: x**n as a product; beyond it a pow call

_ATOM = PRECEDENCE["Atom"]
_MUL = PRECEDENCE["Mul"]
_ADD = PRECEDENCE["Add"]


def _number(expr: sp.Expr) -> float:
    return float(expr.evalf(30))


def _integer_exponent(e: sp.Expr) -> int | None:
    """n when the exponent is a number with an integer value (2, 2.0, 4/2), else None."""
    if not e.is_number:
        return None
    v = _number(e)
    return int(v) if math.isfinite(v) and v.is_integer() else None


class PowerFreePrinter(ElementwisePrinter):
    """Add, Mul and Pow without `**`. A target defines `literal` (a float as it spells one) and `call`
    (sqrt, rsqrt, exp or pow applied to printed arguments)."""

    def _print(self, expr, **kwargs):
        """Numbers fold to one literal, functions go to _print_function; anything else unprintable is a
        BuildError naming the target."""
        if isinstance(expr, sp.Expr) and expr.is_number:
            return self.literal(_number(expr))
        if isinstance(expr, sp.Function) and not isinstance(expr, sp.Piecewise):
            return self._print_function(expr)
        if not isinstance(expr, (sp.Symbol, sp.Add, sp.Mul, sp.Pow, sp.Max, sp.Min, sp.Piecewise, Relational,
                                 sp.And, sp.Or, sp.Not, BooleanAtom)):
            raise BuildError(f"no {self.TARGET} printer for {type(expr).__name__}: {expr}")
        return super()._print(expr, **kwargs)

    def literal(self, value: float) -> str:
        raise NotImplementedError

    def min_max(self, function: str, a: str, b: str) -> str:
        """max or min ("max", "min") of two printed operands, NaN propagated (as torch.maximum)."""
        raise NotImplementedError

    def _print_MinMax(self, expr, function: str):
        numbers = [a for a in expr.args if a.is_number]
        tensors = [a for a in expr.args if not a.is_number]
        out = self._print(tensors[0])
        for a in tensors[1:] + numbers:  # numbers last (at most one after SymPy's own folding)
            out = self.min_max(function, out, self._print(a))
        return out

    def _print_Max(self, expr):
        return self._print_MinMax(expr, "max")

    def _print_Min(self, expr):
        return self._print_MinMax(expr, "min")

    def call(self, function: str, *args: str) -> str:
        raise NotImplementedError

    def _prec(self, expr, text: str) -> int:
        """Precedence of the printed text (Python's; C agrees on what is printed) (expanded powers are products, not `**`)."""
        if text.startswith("-"):
            return _ADD
        if isinstance(expr, sp.Add):
            return _ADD
        if isinstance(expr, sp.Mul):
            return _MUL
        if isinstance(expr, sp.Pow) and not expr.is_number:
            n = _integer_exponent(expr.exp)
            if n == 1:
                return self._prec(expr.base, text)
            if n is not None and n != 0 and abs(n) <= MAX_EXPANDED_POWER:
                return _MUL  # x*x*x or 1.0/(x*x)
        return _ATOM  # names, literals >= 0, calls, parenthesised relations and logic

    def _operand(self, expr, level: int, strict: bool = False) -> str:
        text = self._print(expr)
        prec = self._prec(expr, text)
        return f"({text})" if prec < level or (strict and prec <= level) else text

    # -- arithmetic ------------------------------------------------------------------------------------

    def _print_Add(self, expr, order=None):
        out = []
        for term in self._as_ordered_terms(expr, order=None):
            text = self._print(term)
            if text.startswith("-") and not isinstance(term, sp.Add):
                sign, text = "-", text[1:]  # "-a*b" as a term: a - a*b parses as a - (a*b)
            else:
                sign = "+"
            if isinstance(term, sp.Add) or self._prec(term, text) < _ADD:
                text = f"({text})"
            out.append((sign, text))
        first_sign, first = out[0]
        head = f"-{first}" if first_sign == "-" else first
        return head + "".join(f" {sign} {text}" for sign, text in out[1:])

    def _print_Mul(self, expr):
        factors = list(mul_factors(expr))
        numbers = [a for a in factors if a.is_number]
        coeff = _number(sp.Mul(*numbers)) if numbers else 1.0
        numerator, denominator = [], []
        for f in factors:
            if f.is_number:
                continue
            if isinstance(f, sp.Pow) and f.exp.is_number and _number(f.exp) < 0:
                # x * b**-e → x / b**e (as the torch printer); the denominator is always parenthesised
                # unless it is a name or a call, so x/(tau*tau) never becomes x/tau*tau.
                denominator.append(f.base if _number(f.exp) == -1 else sp.Pow(f.base, -f.exp, evaluate=False))
            else:
                numerator.append(f)
        num = "*".join(self._operand(f, _MUL) for f in numerator)
        if len(denominator) == 1:
            den = self._operand(denominator[0], _MUL, strict=True)
        elif denominator:
            den = "(" + "*".join(self._operand(f, _MUL) for f in denominator) + ")"
        if not numerator:
            return f"{self.literal(coeff)}/{den}"
        text = num if not denominator else f"{num}/{den}"
        if coeff == 1.0:
            return text
        if coeff == -1.0:
            return f"-{text}"
        return f"{self.literal(coeff)}*{text}"

    def _print_Pow(self, expr, rational=False):
        base, e = expr.base, expr.exp
        n = _integer_exponent(e)
        if n is not None and abs(n) <= MAX_EXPANDED_POWER:
            if n == 0:
                return self.literal(1.0)
            if n == 1:
                return self._print(base)
            if n == -1:
                return f"{self.literal(1.0)}/{self._operand(base, _MUL, strict=True)}"
            product = "*".join([self._operand(base, _MUL)] * abs(n))
            return product if n > 0 else f"{self.literal(1.0)}/({product})"
        if e.is_number and _number(e) == 0.5:
            return self.call("sqrt", self._print(base))
        if e.is_number and _number(e) == -0.5:
            return self.call("rsqrt", self._print(base))
        if base.is_number and _number(base) > 0:
            # a**x = exp(log(a)*x) for a number a > 0 (exp(x) for a = E)
            log_a = sp.log(base).evalf(30)
            if _number(log_a) == 1.0:
                return self.call("exp", self._print(e))
            return self.call("exp", f"{self.literal(_number(log_a))}*{self._operand(e, _MUL)}")
        return self.call("pow", self._print(base), self._print(e))
