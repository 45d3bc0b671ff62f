"""SymPy → C expression printer (the maths of the cpu target; templates/c holds the kernels).

The generated C file holds every kernel twice, in float and in double (templates/c/kernels.c.j2), so
printed code never names a type or a math function directly: it goes through the macros that
`precision_prelude` defines for each precision section:

    HG_R(x)   a literal in the section's type: ((float)(x)) or ((double)(x)); a bare double literal
              would promote a float expression to double (slower, and not torch's float32 arithmetic)
    HG_F(f)   the math function for the section's type: expf / exp, sqrtf / sqrt, ...
    HG_MAX, HG_MIN, HG_SIGN   inline helpers of the section's type

Semantics follow the torch backend, as the Triton printer's do: Heaviside(x) = (x > 0), so H(0) =
H(NaN) = 0; sign(0) = sign(NaN) = 0; Max/Min propagate NaN (as torch.maximum/clamp; C's fmax would
drop it); Piecewise → nested conditional expressions; relations are parenthesised and joined with
&&, ||, !. Integer powers are expanded and numbers folded (codegen/arithmetic.py). The derivative
conventions at kinks (compiler/kinks.py) are in the IR already: the printer only spells values.
"""
from __future__ import annotations

import math

import sympy as sp

from ...errors import BuildError
from .arithmetic import _ATOM, PowerFreePrinter
from .functions import calls

# C keywords and the names the generated C code defines or calls: a spec symbol may not take them.
C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary""".split())
C_NAMES = frozenset({"HG_R", "HG_F", "HG_MAX", "HG_MIN", "HG_SIGN", "hg_real", "hg_max_f32", "hg_min_f32", "hg_sign_f32", "hg_max_f64", "hg_min_f64",
                     "hg_sign_f64", "int64_t", "NAN", "INFINITY",
                     "omp_get_thread_num"})
MATH_NAMES = frozenset(f for name in calls("c").values() for f in (name, name + "f")) | {
    "sqrt", "sqrtf", "exp", "expf", "pow", "powf"}
RESERVED_NAMES = C_KEYWORDS | C_NAMES | MATH_NAMES

# The functions glibc's libmvec (x86_64, glibc >= 2.35) has vector variants of: the generated file
# declares those it calls `#pragma omp declare simd` under HG_VECTOR_MATH, which ops/native.py
# defines when the compiler links against libmvec (else the lane loops stay scalar where they call one).
VECTOR_MATH = ("exp", "log", "sin", "cos", "pow", "tan", "tanh", "sinh", "cosh", "atan", "asin", "acos", "erf")


def precision_prelude(real: str) -> str:
    """What printed code needs in scope, for one precision section ("float" or "double"): the type, the
    literal and function macros, and the select helpers (written as single selects and comparisons,
    no nested branches, so that the loops calling them vectorize). PRECISION_EPILOGUE undefines it."""
    sfx = {"float": "f32", "double": "f64"}[real]
    return f"""\
#define hg_real {real}
#define HG_R(x) (({real})(x))
#define HG_F(name) {'name##f' if real == 'float' else 'name'}
#define HG_MAX hg_max_{sfx}
#define HG_MIN hg_min_{sfx}
#define HG_SIGN hg_sign_{sfx}
/* NaN in, NaN out (as torch.maximum / torch.clamp; C's fmax would drop it): a NaN a is taken, a NaN b loses a > b */
static inline hg_real hg_max_{sfx}(hg_real a, hg_real b) {{ return (a > b || a != a) ? a : b; }}
static inline hg_real hg_min_{sfx}(hg_real a, hg_real b) {{ return (a < b || a != a) ? a : b; }}
/* sign(0) = sign(NaN) = 0, as the Triton target */
static inline hg_real hg_sign_{sfx}(hg_real a) {{ return (hg_real)(a > 0) - (hg_real)(a < 0); }}"""


PRECISION_EPILOGUE = "\n".join(f"#undef {name}" for name in ("hg_real", "HG_R", "HG_F", "HG_MAX", "HG_MIN", "HG_SIGN"))


def c_literal(value: float) -> str:
    """A double in C source, exact (repr round-trips), inside HG_R so it takes the section's type."""
    if math.isnan(value):
        return "HG_R(NAN)"
    if math.isinf(value):
        return "HG_R(INFINITY)" if value > 0 else "HG_R(-INFINITY)"
    return f"HG_R({value!r})"


class CPrinter(PowerFreePrinter):
    """Prints expressions over scalars of the section's type `hg_real`."""

    TARGET = "C"
    RESERVED = RESERVED_NAMES
    FUNCTIONS = calls("c")   # SymPy name → C math function (double spelling; HG_F picks the type's)

    def literal(self, value: float) -> str:
        return c_literal(value)

    def call(self, function: str, *args: str) -> str:
        if function == "rsqrt":
            return f"({self.literal(1.0)}/HG_F(sqrt)({args[0]}))"
        return f"HG_F({function})({', '.join(args)})"

    # -- functions -------------------------------------------------------------------------------------

    def _print_function(self, expr):
        name = type(expr).__name__
        args = [self._print(a) for a in expr.args]
        if name in self.FUNCTIONS:
            return self.call(self.FUNCTIONS[name], *args)
        if name == "sign":
            return f"HG_SIGN({args[0]})"
        if name == "Heaviside":
            # H(0) = 0 whatever SymPy's second argument says (as the torch and Triton printers)
            return f"((hg_real)(({args[0]}) > {self.literal(0.0)}))"   # a comparison, not a branch: vectorizes
        raise BuildError(f"function '{name}' has no C printer (in {expr})")

    def min_max(self, function: str, a: str, b: str) -> str:
        return f"HG_{function.upper()}({a}, {b})"

    def _print_Piecewise(self, expr):
        *pieces, (last, last_cond) = expr.args
        if last_cond != sp.true:
            raise BuildError(f"Piecewise without a default (True) branch: {expr}")
        out = self._print(last)
        for value, cond in reversed(pieces):
            out = f"({self._print(cond)} ? {self._print(value)} : {out})"
        return out

    # -- relations and logic ---------------------------------------------------------------------------

    def _print_And(self, expr):
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr):
        (arg,) = expr.args
        return f"(!{self._print(arg)})"

    def _print_BooleanTrue(self, expr):
        return "1"

    def _print_BooleanFalse(self, expr):
        return "0"


def c_code(expr: sp.Basic) -> str:
    return CPrinter().doprint(expr)


def c_operand(expr: sp.Basic) -> str:
    """c_code, parenthesised unless it is an atom (for a template that embeds it in a larger expression)."""
    printer = CPrinter()
    text = printer.doprint(expr)
    return text if printer._prec(expr, text) >= _ATOM and not text.startswith("-") else f"({text})"
