"""The SymPy → Triton printer (hyprgen/codegen/triton_printer.py).

Every supported construct, and every expression of the shipped neurons' KernelIR, is printed into a
small elementwise @triton.jit kernel (source written to a file and imported: @triton.jit needs source),
run on the CPU by Triton's interpreter, and compared with the torch printer's output evaluated by torch
(IR expressions) or with SymPy's float64 evaluation (constructs). A last test compiles the same kernels
for sm_90 without a GPU, so the libdevice path that the interpreter cannot run is type-checked too.

TRITON_INTERPRET: Triton 3.x reads it (triton.knobs.runtime.interpret → getenv, not cached) at two
moments: when @triton.jit decorates a function (InterpretedFunction or JITFunction; a launch does not
read it again), and when triton.language is first imported (its own @jit functions, tl.zeros, tl.sum, ...,
become one or the other for the whole process). So it has to be set while this file's kernel modules are
imported: the module-scoped fixture `interpret` sets it with a MonkeyPatch for this file's tests only and
restores the environment after the last one, so other test files never see it. That triton was imported
earlier without it does not matter, because printed code calls tl builtins only
(test_printed_tl_names_are_builtins). test_interpreted_form_of_a_compiled_kernel also runs the other
way hyprgen/kernels launch on CPU: InterpretedFunction(kernel.fn) of a module imported without the variable.
"""
import importlib.util
import io
import itertools
import math
import re
import tokenize

import pytest
import sympy as sp
import torch

from hyprgen.compiler.build import generate
from hyprgen.paths import shipped_specs
from hyprgen.compiler.codegen.render import parser as _parser
from hyprgen.compiler.codegen.torch_printer import torch_code
from hyprgen.compiler.codegen.triton_printer import (
    PRINTED_FUNCTIONS, RESERVED_NAMES, TRITON_PRELUDE, fp32_literal_hazards, triton_code)
from hyprgen.compiler.codegen.functions import SUPPORTED_FUNCTIONS

from .printer_cases import (CONSTRUCTS, DOMAINS, N, SYMBOLS, X, W, Y, Z, assert_close, construct_exprs,  # noqa: F401
                            construct_inputs, parse, sympy_reference)
from hyprgen.errors import BuildError

triton = pytest.importorskip("triton")

BLOCK = 2048
RTOL = 1e-5    # float32: elementwise relative error, with an absolute floor of RTOL * max|reference|

_counter = itertools.count()


# ----------------------------------------------------------------------------------------------
# Kernels from printed expressions


def kernel_source(symbols: list[str], outputs: list[tuple[str, bool]]) -> str:
    """One elementwise kernel: symbol i is row i of `_inp` [len(symbols), n], output k row k of `_out`.
    outputs: (Triton code, whether it is a bare number that needs broadcasting)."""
    lines = [TRITON_PRELUDE, "", "@triton.jit", "def printed_kernel(_inp, _out, _n, _BLOCK: tl.constexpr):",
             "    _offs = tl.program_id(0) * _BLOCK + tl.arange(0, _BLOCK)",
             "    _mask = _offs < _n",
             "    _zero = tl.full([_BLOCK], 0.0, _inp.dtype.element_ty)"]
    lines += [f"    {s} = tl.load(_inp + {i} * _n + _offs, mask=_mask, other=0.5)" for i, s in enumerate(symbols)]
    for k, (code, constant) in enumerate(outputs):
        value = f"_zero + {code}" if constant else code
        lines.append(f"    tl.store(_out + {k} * _n + _offs, {value}, mask=_mask)")
    return "\n".join(lines) + "\n"


def import_kernel(folder, source: str):
    """Write the source to a fresh file and import it (decorating its kernels as the environment says)."""
    path = folder / f"printed_kernel_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_kernel(module, inputs: torch.Tensor, n_out: int, kernel=None) -> torch.Tensor:
    out = torch.full((n_out, inputs.shape[1]), float("nan"), dtype=inputs.dtype)
    n = inputs.shape[1]
    kernel = module.printed_kernel if kernel is None else kernel
    kernel[(triton.cdiv(n, BLOCK),)](inputs, out, n, _BLOCK=BLOCK)
    return out


@pytest.fixture(scope="module")
def interpret():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        yield


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("triton-printer-kernels")


# ----------------------------------------------------------------------------------------------
# Constructs: every supported function and operator, against SymPy evaluated in float64

@pytest.fixture(scope="module")
def construct_kernel(interpret, kernel_dir):
    exprs = construct_exprs()
    outputs = [(triton_code(e), e.is_number) for e in exprs]
    return exprs, import_kernel(kernel_dir, kernel_source(list(SYMBOLS), outputs))


@pytest.mark.parametrize("dtype,rtol", [(torch.float32, RTOL), (torch.float64, 1e-12)])
def test_constructs_match_sympy(construct_kernel, dtype, rtol):
    """float64 too: a literal, tl.where branch or Heaviside/sign that went through fp32 would show there."""
    exprs, module = construct_kernel
    inputs = construct_inputs(dtype)
    got = run_kernel(module, inputs, len(exprs))
    for k, e in enumerate(exprs):
        want = sympy_reference(e, inputs).to(dtype)
        assert_close(got[k], want, rtol, f"{e} printed as {triton_code(e)}")


def test_constructs_match_torch_printer(construct_kernel):
    exprs, module = construct_kernel
    inputs = construct_inputs(torch.float32)
    got = run_kernel(module, inputs, len(exprs))
    env = torch_env(list(SYMBOLS), inputs)
    for k, e in enumerate(exprs):
        want = torch_eval(torch_code(e), env, inputs)
        assert_close(got[k], want, RTOL, f"{e}: Triton {triton_code(e)} vs torch {torch_code(e)}")


def test_interpreted_form_of_a_compiled_kernel(construct_kernel, kernel_dir):
    """The launcher convention of hyprgen/kernels: a module imported without TRITON_INTERPRET holds
    JITFunctions, and CPU launches run InterpretedFunction(kernel.fn). Printed code works so too (tl
    builtins only, and the libdevice stand-in serves both forms), with the same results."""
    from triton.runtime.interpreter import InterpretedFunction

    exprs, interpreted = construct_kernel
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TRITON_INTERPRET", raising=False)
        module = import_kernel(kernel_dir, kernel_source(list(SYMBOLS), [(triton_code(e), e.is_number) for e in exprs]))
    assert isinstance(module.printed_kernel, triton.runtime.JITFunction)
    inputs = construct_inputs(torch.float32)
    got = run_kernel(module, inputs, len(exprs), kernel=InterpretedFunction(module.printed_kernel.fn))
    assert torch.equal(got, run_kernel(interpreted, inputs, len(exprs)))


def test_heaviside_and_sign_at_zero(construct_kernel):
    exprs, module = construct_kernel
    inputs = construct_inputs(torch.float32)
    got = run_kernel(module, inputs, len(exprs))
    zero = inputs[0] == 0.0
    assert zero.any()
    assert (got[exprs.index(parse("Heaviside(x)"))][zero] == 0.0).all()
    assert (got[exprs.index(parse("sign(x)"))][zero] == 0.0).all()


# ----------------------------------------------------------------------------------------------
# Every expression of the shipped neurons' KernelIR, against the torch printer evaluated by torch


def ir_expressions(ir) -> list[str]:
    """Every expression string the renderers print: definitions, update, output, surrogate, Jacobians."""
    jac = ir.jacobians
    texts = [d.expr for d in ir.definitions] + list(ir.next_state) + [ir.output.expr]
    if ir.output.surrogate is not None:
        texts.append(ir.output.surrogate.expr)
    texts += [e for _, e in jac.cse] + [e for row in jac.A for e in row] + list(jac.c)
    texts += [e for row in jac.D for e in row] + list(jac.a) + [jac.gamma] + list(jac.delta)
    return [t for t in texts if t is not None]


@pytest.fixture(scope="module")
def shipped_irs():
    return {p.stem: generate(p)[0] for p in shipped_specs()}


def torch_env(symbols: list[str], inputs: torch.Tensor) -> dict:
    env = {"torch": torch, "heaviside": lambda x: (x > 0).to(x.dtype)}  # as the generated torch modules
    env.update({s: inputs[i] for i, s in enumerate(symbols)})
    return env


def torch_eval(code: str, env: dict, inputs: torch.Tensor) -> torch.Tensor:
    value = eval(code, dict(env))  # noqa: S307 - printer output over our own tensors
    return torch.as_tensor(value, dtype=inputs.dtype).expand(inputs.shape[1])


def ir_inputs(symbols: list[str]) -> torch.Tensor:
    """Every symbol uniform in ±[0.5, 2] (random sign): away from the zeros of the denominators."""
    g = torch.Generator().manual_seed(2)
    magnitude = 0.5 + 1.5 * torch.rand(len(symbols), N, generator=g)
    sign = torch.where(torch.rand(len(symbols), N, generator=g) < 0.5, -1.0, 1.0)
    return (magnitude * sign).float()


def neuron_kernel_parts(ir: dict):
    parse_ir = _parser(ir)
    exprs = [parse_ir(t) for t in ir_expressions(ir)]
    symbols = sorted({s.name for e in exprs for s in e.free_symbols})
    return exprs, symbols


@pytest.mark.parametrize("name", [p.stem for p in shipped_specs()])
def test_shipped_ir_matches_torch_printer(interpret, kernel_dir, shipped_irs, name):
    """float32: within RTOL of torch, plus twice the expression's own fp32 rounding noise (torch float32 vs
    float64), which only matters where the maths cancels: BRF's p_omega = 100*sqrt(1 - 1e-4*ω²) - 100
    loses about 4e-4 (relative) in float32 in both backends. float64: within 1e-10 of torch."""
    exprs, symbols = neuron_kernel_parts(shipped_irs[name])
    module = import_kernel(kernel_dir, kernel_source(symbols, [(triton_code(e), e.is_number) for e in exprs]))
    inputs32 = ir_inputs(symbols)
    inputs64 = inputs32.double()
    got32 = run_kernel(module, inputs32, len(exprs))
    got64 = run_kernel(module, inputs64, len(exprs))
    env32, env64 = torch_env(symbols, inputs32), torch_env(symbols, inputs64)
    for k, e in enumerate(exprs):
        what = f"{name}: {e}: Triton {triton_code(e)} vs torch {torch_code(e)}"
        want32 = torch_eval(torch_code(e), env32, inputs32)
        want64 = torch_eval(torch_code(e), env64, inputs64)
        noise = (want32.double() - want64).abs().max().item()
        assert_close(got32[k], want32, RTOL, what, slack=2 * noise)
        assert_close(got64[k], want64, 1e-10, what + " (float64)")


def test_shipped_ir_has_no_fp32_hazards(shipped_irs):
    """No literal of a shipped neuron overflows fp32 or falls below its normal range."""
    for name, ir in shipped_irs.items():
        parse_ir = _parser(ir)
        for text in ir_expressions(ir):
            assert fp32_literal_hazards(parse_ir(text)) == [], (name, text)


# ----------------------------------------------------------------------------------------------
# The printed text: Triton-safe Python


def python_tokens(code: str):
    return [t for t in tokenize.generate_tokens(io.StringIO(code).readline)
            if t.type not in (tokenize.NEWLINE, tokenize.ENDMARKER)]


ALLOWED_NAMES = {"tl", "libdevice", "float", "True", "False"}


def check_text(code: str, symbols: set[str]) -> None:
    previous = None
    for tok in python_tokens(code):
        if tok.type == tokenize.NUMBER:
            assert any(c in tok.string for c in ".eE"), f"integer literal {tok.string} in {code}"
        elif tok.type == tokenize.OP:
            assert tok.string not in ("**", "//", "%", "@"), f"{tok.string} in {code}"
        elif tok.type == tokenize.NAME and not (previous is not None and previous.string == "."):
            if tok.string not in ("propagate_nan",):
                assert tok.string in ALLOWED_NAMES | symbols, f"unexpected name {tok.string} in {code}"
        previous = tok


def test_printed_text_is_triton_safe(shipped_irs):
    """Float literals only, no **, // or %, and no name besides the symbols and the prelude's."""
    for e in construct_exprs():
        check_text(triton_code(e), {s.name for s in e.free_symbols})
    for ir in shipped_irs.values():
        parse_ir = _parser(ir)
        for text in ir_expressions(ir):
            e = parse_ir(text)
            check_text(triton_code(e), {s.name for s in e.free_symbols})


@pytest.mark.parametrize("text,code", [
    ("x**3", "x*x*x"),
    ("x**-2", "1.0/(x*x)"),
    ("x*y**-1", "x/y"),
    ("-0.5*(x + w)/y**2", "-0.5*(x + w)/(y*y)"),
    ("1/(x + w)", "1.0/(x + w)"),
    ("(x + 1)**2", "(x + 1.0)*(x + 1.0)"),
    ("1 - x", "1.0 - x"),
    ("sqrt(y)", "tl.sqrt(y)"),
    ("1/sqrt(y)", "1.0/tl.sqrt(y)"),
    ("y**(-0.5)", "tl.rsqrt(y)"),
    ("y**2.5", "libdevice.pow(y, 2.5)"),
    ("x**9", "libdevice.pow(x, 9.0)"),
    ("2**x", "tl.exp(0.6931471805599453*x)"),
    ("tanh(x)", "libdevice.tanh(x)"),
    ("0.5*exp(-5.0*Abs(x))", "0.5*tl.exp(-5.0*tl.abs(x))"),
    ("sqrt(2)*x/sqrt(pi)", "0.7978845608028654*x"),
    ("Heaviside(x)", "tl.where(x > 0.0, 1.0, 0.0).to(x.dtype)"),
    ("Heaviside(x - w)", "tl.where((x - w) > 0.0, 1.0, 0.0).to((x - w).dtype)"),
    ("sign(x)", "tl.where(x > 0.0, 1.0, tl.where(x < 0.0, -1.0, 0.0)).to(x.dtype)"),
    ("Max(x, 1)", "tl.maximum(x, 1.0, propagate_nan=tl.PropagateNan.ALL)"),
    ("Piecewise((x, (x < 1) & (w > 2)), (0, True))",
     "tl.where(((w > 2.0) & (x < 1.0)), x, tl.full(w.shape, 0.0, w.dtype))"),  # SymPy orders And's arguments
    ("Piecewise((x, (x < 1) | (w > 2)), (w, True))", "tl.where(((w > 2.0) | (x < 1.0)), x, w)"),
])
def test_printed_text(text, code):
    assert triton_code(parse(text)) == code


def test_not_and_booleans():
    assert triton_code(sp.Not(sp.Lt(X, 1), evaluate=False)) == "(~(x < 1.0))"
    assert triton_code(sp.Not(sp.true, evaluate=False)) == "False"


def test_printer_covers_exactly_the_supported_functions():
    assert PRINTED_FUNCTIONS == SUPPORTED_FUNCTIONS


@pytest.mark.parametrize("expr", [sp.floor(X), sp.atanh(X), sp.Function("f")(X), sp.Derivative(X * W, X),
                                  sp.Symbol("tl", real=True) + X, sp.Xor(X < 1, W < 1)])
def test_unsupported_raises_build_error(expr):
    with pytest.raises(BuildError):
        triton_code(expr)


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_reserved_names_cannot_be_symbols(name):
    with pytest.raises(BuildError, match="shadow"):
        triton_code(sp.Symbol(name, real=True) * X)


def test_printed_tl_names_are_builtins():
    """Kernels run by the interpreter may only call tl builtins: tl functions written in Triton (tl.zeros,
    tl.sum, tl.sigmoid, ...) are @triton.jit functions decorated when triton.language is first imported, so
    unless TRITON_INTERPRET=1 was set before that, calling them in an interpreted kernel raises."""
    names = set()
    for e in construct_exprs():
        toks = python_tokens(triton_code(e))
        names |= {b.string for a, dot, b in zip(toks, toks[1:], toks[2:]) if a.string == "tl" and dot.string == "."}
    import triton.language as tl

    assert {"exp", "where", "maximum", "full", "sqrt", "rsqrt", "abs"} <= names
    for n in names:
        assert not isinstance(getattr(tl, n), triton.runtime.JITFunction), n


def test_libdevice_stand_in():
    """Every name the printer calls on libdevice exists in Triton's libdevice and in the stand-in, which the
    compiler maps to the backend's libdevice by its module name."""
    from triton.language.extra import libdevice as triton_libdevice

    from hyprgen.ops.libdevice import NUMPY_UFUNCS, libdevice
    from hyprgen.compiler.codegen.triton_printer import LIBDEVICE_FUNCTIONS

    names = {code.split(".")[1] for code in LIBDEVICE_FUNCTIONS.values()} | {"pow"}
    assert names == set(NUMPY_UFUNCS)
    for n in names:
        assert callable(getattr(triton_libdevice, n)) and callable(getattr(libdevice, n)), n
    assert libdevice.__name__ == triton_libdevice.__name__


def test_fp32_literal_hazards():
    assert fp32_literal_hazards(parse("exp(100)*x")) == [math.exp(100)]
    assert fp32_literal_hazards(parse("1e-40*x + 2")) == [1e-40]
    assert fp32_literal_hazards(parse("0.5*exp(-5.0*Abs(x))")) == []


# ----------------------------------------------------------------------------------------------
# The compiled path (libdevice, fp32 typing) without a GPU


def test_kernels_compile_for_sm90(kernel_dir, shipped_irs, monkeypatch):
    """The same kernels, decorated for compilation, lower to PTX for sm_90: the libdevice calls resolve,
    and the fp32 kernel has no float64 value and no integer division or remainder."""
    pytest.importorskip("triton.backends.nvidia.compiler")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(kernel_dir / "triton-cache"))  # compile for real, write nowhere else
    monkeypatch.setenv("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning
    outputs = [(triton_code(e), e.is_number) for e in construct_exprs()]
    symbols = list(SYMBOLS)
    for name, ir in shipped_irs.items():  # one kernel for everything: each neuron's symbols renamed apart
        exprs, syms = neuron_kernel_parts(ir)
        rename = {s: f"{name}_{s}" for s in syms}
        pattern = re.compile(r"(?<![.\w])(" + "|".join(map(re.escape, syms)) + r")(?!\w)") if syms else None
        for e in exprs:
            code = triton_code(e)
            outputs.append((pattern.sub(lambda m: rename[m.group(1)], code) if pattern else code, e.is_number))
        symbols += [rename[s] for s in syms]
    module = import_kernel(kernel_dir, kernel_source(symbols, outputs))
    assert isinstance(module.printed_kernel, triton.runtime.JITFunction)
    src = ASTSource(fn=module.printed_kernel, signature={"_inp": "*fp32", "_out": "*fp32", "_n": "i32",
                                                        "_BLOCK": "constexpr"}, constexprs={"_BLOCK": 256})
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
    ttir = compiled.asm["ttir"]
    assert "f64" not in ttir
    for op in ("arith.divsi", "arith.divui", "arith.remsi", "arith.remui", "arith.remf", "arith.floordivsi"):
        assert op not in ttir, op
    for fn in ("tanh", "atan", "asin", "acos", "sinh", "cosh", "tan", "pow"):
        assert f'symbol = "__nv_{fn}f"' in ttir, fn
    assert compiled.asm["ptx"]
