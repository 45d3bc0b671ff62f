"""The functions a spec may use, with each target's spelling: the one list the validation and every
printer read.

A name maps to the call each printer writes, or to None where the printer writes the function with a
method of its own (Heaviside as a comparison, Max/Min with clamps or propagate_nan, Piecewise as
nested where, sign in Triton as where). Anything else, and any unevaluated operation (Derivative,
Integral, Sum, ...), is rejected with a located error before code generation (compiler/validate.py).
"""
from __future__ import annotations

TARGETS = ("torch", "triton")

FUNCTIONS: dict[str, dict[str, str | None]] = {
    "exp":  {"torch": "torch.exp",  "triton": "tl.exp"},
    "log":  {"torch": "torch.log",  "triton": "tl.log"},
    "sin":  {"torch": "torch.sin",  "triton": "tl.sin"},
    "cos":  {"torch": "torch.cos",  "triton": "tl.cos"},
    "erf":  {"torch": "torch.erf",  "triton": "tl.erf"},
    "Abs":  {"torch": "torch.abs",  "triton": "tl.abs"},
    # Triton has no builtin for these: libdevice (CUDA's __nv_*, NumPy in the interpreter: ops/libdevice.py)
    "tan":  {"torch": "torch.tan",  "triton": "libdevice.tan"},
    "tanh": {"torch": "torch.tanh", "triton": "libdevice.tanh"},
    "sinh": {"torch": "torch.sinh", "triton": "libdevice.sinh"},
    "cosh": {"torch": "torch.cosh", "triton": "libdevice.cosh"},
    "atan": {"torch": "torch.atan", "triton": "libdevice.atan"},
    "asin": {"torch": "torch.asin", "triton": "libdevice.asin"},
    "acos": {"torch": "torch.acos", "triton": "libdevice.acos"},
    "sign": {"torch": "torch.sign", "triton": None},
    "Heaviside": {"torch": None, "triton": None},
    "Max":  {"torch": None, "triton": None},
    "Min":  {"torch": None, "triton": None},
    "Piecewise": {"torch": None, "triton": None},
}

SUPPORTED_FUNCTIONS = frozenset(FUNCTIONS)


def calls(target: str) -> dict[str, str]:
    """SymPy function name → the call `target` prints (functions printed by a method of their own omitted)."""
    return {name: spelled[target] for name, spelled in FUNCTIONS.items() if spelled[target] is not None}
