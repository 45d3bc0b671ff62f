"""The SymPy → C printer (hyprgen/compiler/codegen/c_printer.py), the maths of the cpu target.

Every supported construct (printer_cases.py) is printed into one C function per precision section,
with the prelude the generated files use, compiled by ops/native.py like a neuron's kernels, and
compared with SymPy's float64 evaluation; then the torch backend's semantics where C's own differ:
NaN through Max/Min (C's fmax drops it), Heaviside and sign at 0 and at NaN.
"""
import ctypes

import pytest
import sympy as sp
import torch

from hyprgen.compiler.codegen.c_printer import PRECISION_EPILOGUE, c_code, precision_prelude
from hyprgen.errors import BuildError
from hyprgen.ops import native

from .printer_cases import SYMBOLS, X, W, assert_close, construct_exprs, construct_inputs, parse, sympy_reference

pytestmark = pytest.mark.skipif(native.compiler_problem() is not None, reason="no C compiler")

C_TYPES = {torch.float32: "float", torch.float64: "double"}


def c_source(exprs: list[sp.Expr]) -> str:
    """printed_f32 / printed_f64(in [len(SYMBOLS), n], out [len(exprs), n], n): one output row per expression."""
    parts = ["#include <math.h>", "#include <stdint.h>"]
    for dtype, real in C_TYPES.items():
        sfx = {"float": "f32", "double": "f64"}[real]
        parts += [precision_prelude(real),
                  f"void printed_{sfx}(const hg_real *in, hg_real *out, int64_t n) {{",
                  "    for (int64_t e = 0; e < n; ++e) {"]
        parts += [f"        const hg_real {name} = in[{i} * n + e];" for i, name in enumerate(SYMBOLS)]
        parts += [f"        out[{k} * n + e] = {c_code(expr)};" for k, expr in enumerate(exprs)]
        parts += ["    }", "}", PRECISION_EPILOGUE]
    return "\n".join(parts) + "\n"


def evaluate(exprs: list[sp.Expr], inputs: torch.Tensor) -> torch.Tensor:
    library = native.load_library(c_source(exprs), "printed")
    fn = getattr(library, f"printed_{'f32' if inputs.dtype == torch.float32 else 'f64'}")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    inputs = inputs.contiguous()
    out = torch.full((len(exprs), inputs.shape[1]), float("nan"), dtype=inputs.dtype)
    fn(inputs.data_ptr(), out.data_ptr(), inputs.shape[1])
    return out


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_constructs_match_sympy(dtype, rtol):
    """float64 too: a literal or a function that went through float would show there (HG_R, HG_F)."""
    exprs = construct_exprs()
    inputs = construct_inputs(dtype)
    got = evaluate(exprs, inputs)
    for k, e in enumerate(exprs):
        assert_close(got[k], sympy_reference(e, inputs).to(dtype), rtol, f"{e} printed as {c_code(e)}")


def test_nan_propagates_and_edges_follow_torch():
    """Max/Min keep a NaN from either side (torch.maximum, torch.clamp), Heaviside(0) = Heaviside(NaN) = 0
    (the generated modules' heaviside), sign(0) = sign(NaN) = 0."""
    nan = float("nan")
    x = torch.tensor([nan, 1.0, nan, 0.0, -2.0], dtype=torch.float64)
    w = torch.tensor([1.0, nan, nan, 0.0, 3.0], dtype=torch.float64)
    inputs = torch.stack([x, w, torch.ones_like(x), torch.zeros_like(x)])
    exprs = [sp.Max(X, W), sp.Min(X, W), sp.Max(X, 0.5), sp.Heaviside(X), sp.sign(X)]
    got = evaluate(exprs, inputs)
    torch.testing.assert_close(got[0], torch.maximum(x, w), equal_nan=True)
    torch.testing.assert_close(got[1], torch.minimum(x, w), equal_nan=True)
    torch.testing.assert_close(got[2], torch.clamp(x, min=0.5), equal_nan=True)
    torch.testing.assert_close(got[3], (x > 0).double())
    torch.testing.assert_close(got[4], torch.tensor([0.0, 1.0, 0.0, 0.0, -1.0], dtype=torch.float64))


def test_literals_take_the_sections_type():
    """A bare double literal would make float code compute in double: every literal is in HG_R."""
    text = c_code(parse("0.1*x + 2*exp(-x/3)"))
    assert "HG_R(0.1)" in text and "HG_F(exp)" in text
    assert all(piece.startswith("HG_R(") for piece in text.replace("HG_R(", "\0HG_R(").split("\0")[1:])


@pytest.mark.parametrize("name", ["int", "double", "HG_R", "expf", "hg_real"])
def test_a_symbol_named_like_c_code_is_refused(name):
    with pytest.raises(BuildError, match=f"symbol '{name}' would shadow a name the C code uses"):
        c_code(sp.Symbol(name, real=True) * X)
