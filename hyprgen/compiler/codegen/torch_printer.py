"""SymPy → PyTorch expression printer.

Every sub-expression without free symbols is folded to one float literal (exact repr of the double),
so functions are only ever applied to tensors. Integer powers of symbols are expanded into products.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from ...errors import BuildError
from .functions import calls
from .printer import ElementwisePrinter, float_literal, mul_factors

_FUNCTIONS = calls("torch")
class TorchPrinter(ElementwisePrinter):
    """Prints expressions over tensors (names are printed as they are)."""

    TARGET = "torch"

    def _print(self, expr, **kwargs):
        if isinstance(expr, sp.Expr) and expr.is_number and not expr.is_Integer:
            return float_literal(expr.evalf(30))
        return super()._print(expr, **kwargs)

    def _print_Mul(self, expr):
        # Fold every numeric factor (0.5, sqrt(2), 1/sqrt(pi), ...) into one literal.
        factors = list(mul_factors(expr))
        numbers = [a for a in factors if a.is_number]
        if len(numbers) <= 1 or all(a.is_Integer for a in numbers):
            return super()._print_Mul(expr)
        coeff = sp.Mul(*numbers).evalf(30)
        rest = sp.Mul(*[a for a in factors if not a.is_number], evaluate=False)
        text = self.parenthesize(rest, PRECEDENCE["Mul"])
        if coeff == 1:
            return text
        if coeff == -1:
            return f"-{text}"
        return f"{float_literal(coeff)}*{text}"

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Pow(self, expr, rational=False):
        base, e = expr.base, expr.exp
        if e == sp.Rational(1, 2):
            return f"torch.sqrt({self._print(base)})"
        if e == sp.Rational(-1, 2):
            return f"torch.rsqrt({self._print(base)})"
        if e.is_Integer and isinstance(base, sp.Symbol) and 1 <= abs(int(e)) <= 4:
            product = "*".join([self._print(base)] * abs(int(e)))
            if abs(int(e)) > 1:
                product = f"({product})"  # a power is one operand: x/tau**2 must not print as x/tau*tau
            return product if e > 0 else f"1/{product}"
        if e == -1:
            return f"1/{self.parenthesize(base, PRECEDENCE['Pow'])}"
        return f"{self.parenthesize(base, PRECEDENCE['Pow'])}**{self.parenthesize(e, PRECEDENCE['Pow'])}"

    def _print_Function(self, expr):
        name = expr.func.__name__
        if name not in _FUNCTIONS:
            raise BuildError(f"function '{name}' has no torch printer (in {expr})")
        return f"{_FUNCTIONS[name]}({', '.join(self._print(a) for a in expr.args)})"

    _print_Abs = _print_sign = _print_exp = _print_log = _print_Function

    def _print_Heaviside(self, expr):
        return f"heaviside({self._print(expr.args[0])})"

    def _print_MinMax(self, expr, fn: str, clamp: str):
        numbers = [a for a in expr.args if a.is_number]
        tensors = [a for a in expr.args if not a.is_number]
        out = self._print(tensors[0])
        for a in tensors[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        for a in numbers:  # at most one after SymPy's own folding
            out = f"torch.clamp({out}, {clamp}={self._print(a)})"
        return out

    def _print_Max(self, expr):
        return self._print_MinMax(expr, "torch.maximum", "min")

    def _print_Min(self, expr):
        return self._print_MinMax(expr, "torch.minimum", "max")

    def _print_Not(self, expr):
        return f"(~{self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        *pieces, (last, last_cond) = expr.args
        if last_cond != sp.true:
            raise BuildError(f"Piecewise without a default (True) branch: {expr}")
        like = self._print(min(expr.free_symbols, key=sp.default_sort_key))
        out = self._branch(last, like)
        for value, cond in reversed(pieces):
            out = f"torch.where({self._print(cond)}, {self._branch(value, like)}, {out})"
        return out

    def _branch(self, value, like: str) -> str:
        # torch.where of two Python numbers would give the default dtype: anchor numbers to a tensor.
        return f"torch.full_like({like}, {self._print(value)})" if value.is_number else self._print(value)



def torch_code(expr: sp.Expr) -> str:
    return TorchPrinter().doprint(expr)
