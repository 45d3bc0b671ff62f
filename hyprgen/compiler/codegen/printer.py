"""What the torch and Triton printers share: a StrPrinter for elementwise tensor code.

Names print as they are (after a check that a symbol does not shadow a name the target's code uses),
relations and &, | are elementwise operators, and anything a printer has no rule for is a BuildError
that names the target. Numeric literals are exact doubles (`float_literal`); `mul_factors` flattens
the nested products that parse_expr(evaluate=False) makes, so numeric factors can be folded.
"""
from __future__ import annotations

import math

import sympy as sp
from sympy.printing.str import StrPrinter

from ...errors import BuildError

_RELATIONS = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "==": "==", "!=": "!="}


def float_literal(value) -> str:
    v = float(value)
    if math.isfinite(v):
        return repr(v)
    return f"float('{v}')"


def mul_factors(expr: sp.Expr):
    """Factors of a product, flattening the nested products that parse_expr(evaluate=False) makes."""
    for a in expr.args:
        if isinstance(a, sp.Mul):
            yield from mul_factors(a)
        else:
            yield a


class ElementwisePrinter(StrPrinter):
    """The base of every target's printer. TARGET names it in errors; RESERVED are the names its code
    reads besides the expression's own symbols (a symbol may not shadow them)."""

    TARGET = "?"
    RESERVED: frozenset[str] = frozenset()

    def __init__(self):
        super().__init__({"order": "none"})

    # Relations and &, | as elementwise operators on tensors: always parenthesised, since & and |
    # bind tighter than comparisons in Python.
    def _print_Relational(self, expr):
        return f"({self._print(expr.lhs)} {_RELATIONS[expr.rel_op]} {self._print(expr.rhs)})"

    def _print_And(self, expr):
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    def _print_Symbol(self, expr):
        if expr.name in self.RESERVED:
            raise BuildError(f"symbol '{expr.name}' would shadow a name the {self.TARGET} code uses "
                             f"({', '.join(sorted(self.RESERVED))}); rename it")
        return expr.name

    def emptyPrinter(self, expr):
        raise BuildError(f"no {self.TARGET} printer for {type(expr).__name__}: {expr}")
