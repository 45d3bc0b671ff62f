"""SymPy → Triton expression printer (the maths of the Triton target; templates hold the kernels).

Mirrors torch_printer (both build on printer.ElementwisePrinter): every sub-expression without free
symbols is folded to one float literal (exact repr of the double), so functions are only ever applied
to tensors, and the printed text is plain Python that @triton.jit parses. What differs, and why:

- Every number prints as a float literal (1 → 1.0): Triton types a Python int as int32, and no integer
  literal may take part in the arithmetic (`/`, comparisons, tl.where branches).
- Integer powers are expanded (x**3 → x*x*x, x**-2 → 1.0/(x*x)) up to |n| = MAX_EXPANDED_POWER for any
  base; `**`, `//` and `%` are never emitted (Triton tensors have no `**`; `%` and `//` follow C, not
  Python: `%` on floats is fmod, with the dividend's sign); division is always float true division.
  sqrt → tl.sqrt, x**-1/2 → tl.rsqrt, a**x with a number a > 0 → tl.exp(log(a)*x); every other power
  → libdevice.pow.
- Functions without a tl op (tan, tanh, sinh, cosh, atan, asin, acos, pow) call `libdevice.<name>`;
  `libdevice` is the name TRITON_PRELUDE binds (hyprgen/ops/libdevice.py: the backend's libdevice when
  compiled, NumPy when interpreted: Triton 3.x cannot interpret libdevice).
- Heaviside and sign are tl.where expressions in the operand's dtype: H(0) = 0 as the torch backend's
  heaviside, sign(0) = sign(nan) = 0 as torch.sign. Their operand's text appears 2 (H) or 3 (sign)
  times: the compiler's CSE computes it once (the interpreter more often); do not nest them deeply.
- Max/Min → tl.maximum/tl.minimum with propagate_nan=ALL (NaN in, NaN out, as torch.maximum/clamp);
  Piecewise → nested tl.where; relations are always parenthesised, & | ~ join them.
Unary minus is safe to print anywhere: without `**` it binds tighter than every emitted operator, and
IEEE negation is exact, so -a*b == (-a)*b == -(a*b).

An expression without free symbols prints as a bare float literal: a template that needs a tensor must
broadcast it (tl.full). Literals are Python floats, so Triton creates them in the kernel's float dtype
(fp32 kernels round them once; fp64 kernels keep the double). A literal beyond the fp32 range becomes inf
(or 0/denormal) in an fp32 kernel: fp32_literal_hazards() lists them.
"""
from __future__ import annotations

import math

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import BooleanAtom

from ...contract import TRITON_NAMES
from ...errors import BuildError
from .arithmetic import _ATOM, MAX_EXPANDED_POWER, PowerFreePrinter, _number  # noqa: F401 (MAX_EXPANDED_POWER: tests)
from .functions import calls
from .printer import float_literal, mul_factors

# SymPy function → Triton callable (codegen/functions.py): tl builtins, and libdevice where Triton has
# none; the rest (sign, Heaviside as tl.where; Max, Min, Piecewise) by methods of the printer.
NATIVE_FUNCTIONS = {name: call for name, call in calls("triton").items() if call.startswith("tl.")}
LIBDEVICE_FUNCTIONS = {name: call for name, call in calls("triton").items() if call.startswith("libdevice.")}
WHERE_FUNCTIONS = ("sign", "Heaviside")  # printed as tl.where expressions
STRUCTURAL = ("Max", "Min", "Piecewise")  # printed by their own methods
PRINTED_FUNCTIONS = frozenset(NATIVE_FUNCTIONS) | frozenset(LIBDEVICE_FUNCTIONS) | frozenset(WHERE_FUNCTIONS) \
    | frozenset(STRUCTURAL)

# Names the printed code reads besides the expression's own symbols (a symbol may not shadow them).
RESERVED_NAMES = TRITON_NAMES  # the Triton module's own names: a symbol may not shadow them

FP32_MAX = float.fromhex("0x1.fffffep+127")
FP32_MIN_NORMAL = 2.0 ** -126

# Module text that printed expressions need in scope: the template puts it at the top of the generated
# Triton module. Only tl builtins and libdevice are called: no @triton.jit helper (a kernel made into an
# InterpretedFunction cannot call a JITFunction, and tl's own @jit functions such as tl.zeros are one or
# the other depending on TRITON_INTERPRET when triton was first imported).
TRITON_PRELUDE = """\
import triton
import triton.language as tl

from hyprgen.ops.libdevice import libdevice  # compiled: the backend's; interpreted: NumPy
"""

_NAN_ALL = "propagate_nan=tl.PropagateNan.ALL"


class TritonPrinter(PowerFreePrinter):
    """Prints expressions over Triton tensors (names are printed as they are)."""

    TARGET = "Triton"
    RESERVED = RESERVED_NAMES

    # -- dispatch and precedence -------------------------------------------------------------------

    def literal(self, value: float) -> str:
        return float_literal(value)

    def call(self, function: str, *args: str) -> str:
        return f"{'libdevice.pow' if function == 'pow' else 'tl.' + function}({', '.join(args)})"

    # -- functions -------------------------------------------------------------------------------------

    def _print_function(self, expr):
        name = type(expr).__name__
        args = ", ".join(self._print(a) for a in expr.args)
        if name in NATIVE_FUNCTIONS:
            return f"{NATIVE_FUNCTIONS[name]}({args})"
        if name in LIBDEVICE_FUNCTIONS:
            return f"{LIBDEVICE_FUNCTIONS[name]}({args})"
        if name == "sign":
            a = self._operand(expr.args[0], _ATOM)
            return f"tl.where({a} > 0.0, 1.0, tl.where({a} < 0.0, -1.0, 0.0)).to({a}.dtype)"
        if name == "Heaviside":
            # H(0) = 0 whatever SymPy's second argument says (the torch printer does the same).
            a = self._operand(expr.args[0], _ATOM)
            return f"tl.where({a} > 0.0, 1.0, 0.0).to({a}.dtype)"
        raise BuildError(f"function '{name}' has no Triton printer (in {expr})")

    def min_max(self, function: str, a: str, b: str) -> str:
        return f"tl.{function}imum({a}, {b}, {_NAN_ALL})"

    def _print_Piecewise(self, expr):
        *pieces, (last, last_cond) = expr.args
        if last_cond != sp.true:
            raise BuildError(f"Piecewise without a default (True) branch: {expr}")
        out = self._print(last)
        if last.is_number:
            # tl.where of two Python floats is fp32: anchor the default to a tensor's dtype (as torch.full_like)
            like = self._print(min(expr.free_symbols, key=sp.default_sort_key))
            out = f"tl.full({like}.shape, {out}, {like}.dtype)"
        for value, cond in reversed(pieces):
            out = f"tl.where({self._print(cond)}, {self._print(value)}, {out})"
        return out

    # -- relations and logic ---------------------------------------------------------------------------

    def _print_Not(self, expr):
        (arg,) = expr.args
        if isinstance(arg, BooleanAtom):  # ~True is -2 in Python
            return "False" if arg == sp.true else "True"
        return f"(~{self._print(arg)})"



def triton_code(expr: sp.Basic) -> str:
    return TritonPrinter().doprint(expr)


def fp32_literal_hazards(expr: sp.Basic) -> list[float]:
    """The literals of the printed expression that fp32 cannot hold: beyond ±FP32_MAX (they become inf)
    or nonzero below FP32_MIN_NORMAL (denormal, or 0 where the GPU flushes denormals)."""
    out = []
    for lit in _literals(expr):
        a = abs(lit)
        if not math.isfinite(a) or a > FP32_MAX or 0.0 < a < FP32_MIN_NORMAL:
            out.append(lit)
    return out


def _literals(expr: sp.Basic):
    """The float values the printer folds (each maximal numeric sub-expression, each Mul coefficient)."""
    if isinstance(expr, sp.Expr) and expr.is_number:
        yield _number(expr)
        return
    if isinstance(expr, sp.Mul):
        numbers = [a for a in mul_factors(expr) if a.is_number]
        if numbers:
            yield _number(sp.Mul(*numbers))
        for a in mul_factors(expr):
            if not a.is_number:
                yield from _literals(a)
        return
    if isinstance(expr, ExprCondPair):
        yield from _literals(expr.expr)
        yield from _literals(expr.cond)
        return
    for a in expr.args:
        yield from _literals(a)
