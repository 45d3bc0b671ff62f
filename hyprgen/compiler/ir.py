"""The KernelIR: what derivation hands to code generation, as plain data (JSON-able, snapshot-tested).

Expressions are strings in SymPy's syntax with floats printed exactly (`expr_str`), so they parse back
to the same expression (codegen/render.py).
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter


class _ExactStrPrinter(StrPrinter):
    """str() with floats printed exactly (repr of the double), so IR strings round-trip."""

    def _print_Float(self, expr):
        return repr(float(expr))


def expr_str(expr) -> str:
    return _ExactStrPrinter({"order": "none"}).doprint(sp.sympify(expr))
