"""The expressions every expression printer is tested on (test_triton_printer.py, test_c_printer.py):
every supported construct, inputs that hit its edges (x = 0, ties), and SymPy's float64 evaluation."""
import math

import numpy as np
import sympy as sp
import torch
from sympy.parsing.sympy_parser import parse_expr

from hyprgen.compiler.codegen.render import _PARSE_GLOBALS

N = 1500       # elements per input

X, W, Y, Z = (sp.Symbol(n, real=True) for n in "xwyz")
SYMBOLS = {"x": X, "w": W, "y": Y, "z": Z}
DOMAINS = {"x": (-3.0, 3.0), "w": (-3.0, 3.0), "y": (0.5, 3.0), "z": (-0.9, 0.9)}  # y > 0, |z| < 1


def parse(text: str) -> sp.Expr:
    return parse_expr(text, local_dict=dict(SYMBOLS), global_dict=_PARSE_GLOBALS, evaluate=False)


CONSTRUCTS = [
    # arithmetic, signs and precedence
    "x + w", "x - w", "-x", "x*w", "x/y", "-x/y", "2*x/3", "x - 2", "-(x + w)*2", "y - (w - x)", "x - (-w)",
    "(x + 1)/(y*(w + 4))", "x/(w*y)", "x/y/y", "1/(x + 4)", "-1/y", "3/y",
    # powers: expanded, reciprocal, sqrt/rsqrt, libdevice.pow, exp for a number base
    "x**2", "x**3", "x**4", "x**8", "y**-1", "y**-3", "(x + w)**2", "(x*w)**3", "(x/y)**2", "(-x)**3",
    "x**2.0", "x**9", "y**-9", "x/y**2", "1/(y + 1)**2", "exp(x)**2", "sqrt(y)**3", "exp(-x)**-2",
    "y**2.5", "y**(1/3)", "y**Rational(3, 2)", "sqrt(y)", "1/sqrt(y)", "y**(-0.5)", "y**0.5",
    "sqrt(1 - 0.01*x**2)",
    "2**x", "E**x", "y**w",
    # numbers folded into one literal
    "pi*x", "sqrt(2)*exp(-2.0*x**2)/sqrt(pi)", "exp(1)*x + log(2)", "0.575*sqrt(2)*exp(-x**2)/sqrt(pi) - 0.025*w",
    # functions
    "exp(x)", "log(y)", "sin(x)", "cos(x)", "tan(z)", "tanh(x)", "sinh(x)", "cosh(x)", "atan(x)", "asin(z)",
    "acos(z)", "erf(x)", "Abs(x)", "sign(x)", "Heaviside(x)", "sign(x)*Heaviside(-x)", "Heaviside(x - w)",
    "exp(-5.0*Abs(x))", "tanh(sin(x)*y)", "Max(x, -exp(1000))",  # the last prints float('-inf')
    # Max/Min (with numbers too)
    "Max(x, w)", "Min(x, w)", "Max(x, 1)", "Min(x, 0.5)", "Max(x, w, y)", "Min(x, w, 0.5)", "2*Max(x, 0)",
    # Piecewise, relations, logic
    "Piecewise((x, x < 0), (w, True))", "Piecewise((1, x < 0), (2, True))", "Piecewise((x, x <= 0), (2, True))",
    "Piecewise((1, x > 0), (-1, x < 0), (0, True))",
    "Piecewise((x*w, (x < 0) & (w > 0)), (y, (x > 1) | (w < -1)), (0, True))",
    "Piecewise((1, Eq(x, 0)), (x, True))", "Piecewise((w, Ne(x, 0)), (y, True))",
    "Piecewise((x, x >= w), (w, True))",
    "1 + Piecewise((x**2, x < 1), (1/y, True))",
]
# built directly (the parser would simplify them away)
CONSTRUCTS_SYMPY = [
    sp.Piecewise((1, sp.Not(sp.Lt(X, 0), evaluate=False)), (X, True)),
    sp.Piecewise((W, sp.And(sp.Not(sp.Gt(X, 1), evaluate=False), sp.Gt(W, 0))), (Y, True)),
    sp.Mul(X, sp.Pow(Y, -2, evaluate=False), evaluate=False),  # x*y**-2: the torch printer prints x/y*y
    sp.Pow(sp.Pow(X, 2, evaluate=False), 2, evaluate=False),
    sp.Pow(X, 1, evaluate=False),
]


def construct_exprs() -> list[sp.Expr]:
    return [parse(t) for t in CONSTRUCTS] + CONSTRUCTS_SYMPY


def construct_inputs(dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    rows = []
    for name in SYMBOLS:
        lo, hi = DOMAINS[name]
        rows.append(lo + (hi - lo) * torch.rand(N, generator=g, dtype=torch.float64))
    inputs = torch.stack(rows).to(dtype)
    inputs[0, ::7] = 0.0   # x = 0 exactly: H(0) = 0, sign(0) = 0, Eq/Ne
    inputs[0, 3::7] = inputs[1, 3::7]  # x == w: Max/Min ties, x >= w
    return inputs


def sympy_reference(expr: sp.Expr, inputs: torch.Tensor) -> torch.Tensor:
    modules = [{"Heaviside": lambda a, h0=None: np.heaviside(a, 0.0), "sign": np.sign,
                "erf": np.vectorize(math.erf)}, "numpy"]
    f = sp.lambdify(list(SYMBOLS.values()), expr, modules=modules)
    with np.errstate(all="ignore"):
        value = f(*[r.numpy() for r in inputs.double()])
    return torch.as_tensor(np.broadcast_to(np.asarray(value, dtype=np.float64), (inputs.shape[1],)).copy())



def assert_close(got: torch.Tensor, want: torch.Tensor, rtol: float, what: str, slack: float = 0.0) -> None:
    """Elementwise |got - want| <= rtol*|want| + rtol*max|want| + slack; both NaN-free."""
    assert not torch.isnan(want).any(), f"{what}: the reference has NaN"
    assert not torch.isnan(got).any(), f"{what}: the printed code gave NaN"
    err = (got - want).abs()
    bound = rtol * want.abs() + rtol * want.abs().max() + slack
    worst = int(torch.argmax(err - bound))
    assert (err <= bound).all(), (f"{what}: printed {got[worst].item()!r} vs {want[worst].item()!r} "
                                  f"(error {err[worst].item():.3g}, bound {bound[worst].item():.3g})")
