"""The functions a spec may use, with each target's spelling: the one list the validation and every
printer read.

A name maps to the call each printer writes, or to None where the printer writes the function with a
method of its own (Heaviside as a comparison, Max/Min with clamps or propagate_nan, Piecewise as
nested where, sign in Triton as where). Anything else, and any unevaluated operation (Derivative,
Integral, Sum, ...), is rejected with a located error before code generation (compiler/validate.py).
"""
from __future__ import annotations

TARGETS = ("torch", "triton", "c")

FUNCTIONS: dict[str, dict[str, str | None]] = {
    "exp":  {"torch": "torch.exp",  "triton": "tl.exp", "c": "exp"},
    "log":  {"torch": "torch.log",  "triton": "tl.log", "c": "log"},
    "sin":  {"torch": "torch.sin",  "triton": "tl.sin", "c": "sin"},
    "cos":  {"torch": "torch.cos",  "triton": "tl.cos", "c": "cos"},
    "erf":  {"torch": "torch.erf",  "triton": "tl.erf", "c": "erf"},
    "Abs":  {"torch": "torch.abs",  "triton": "tl.abs", "c": "fabs"},
    # Triton has no builtin for these: libdevice (CUDA's __nv_*, NumPy in the interpreter: ops/libdevice.py).
    # C: the double spelling of <math.h>; the generated code's HG_F macro picks the float one (expf, ...)
    "tan":  {"torch": "torch.tan",  "triton": "libdevice.tan", "c": "tan"},
    "tanh": {"torch": "torch.tanh", "triton": "libdevice.tanh", "c": "tanh"},
    "sinh": {"torch": "torch.sinh", "triton": "libdevice.sinh", "c": "sinh"},
    "cosh": {"torch": "torch.cosh", "triton": "libdevice.cosh", "c": "cosh"},
    "atan": {"torch": "torch.atan", "triton": "libdevice.atan", "c": "atan"},
    "asin": {"torch": "torch.asin", "triton": "libdevice.asin", "c": "asin"},
    "acos": {"torch": "torch.acos", "triton": "libdevice.acos", "c": "acos"},
    "sign": {"torch": "torch.sign", "triton": None, "c": None},
    "Heaviside": {"torch": None, "triton": None, "c": None},
    "Max":  {"torch": None, "triton": None, "c": None},
    "Min":  {"torch": None, "triton": None, "c": None},
    "Piecewise": {"torch": None, "triton": None, "c": None},
}

SUPPORTED_FUNCTIONS = frozenset(FUNCTIONS)


def calls(target: str) -> dict[str, str]:
    """SymPy function name → the call `target` prints (functions printed by a method of their own omitted)."""
    return {name: spelled[target] for name, spelled in FUNCTIONS.items() if spelled[target] is not None}
