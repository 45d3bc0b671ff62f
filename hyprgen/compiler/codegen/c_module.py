"""The cpu target: a KernelIR → generated/<name>_cpu.c (templates/c/kernels.c.j2).

Three kernels per neuron, each in float and in double: the S-stage's neuron step (the recurrent
product stays a BLAS GEMM, in the launcher), the P-stage's reverse sweep with the Jacobians
recomputed in registers (the statements of the Triton kernel: codegen/unrolled.py), and the merge's
ε-sized part (Φ ε and q^0 ε, unrolled over the d components). Launchers and references:
hyprgen/ops/s_stage.py, p_stage.py, merge.py; compiling and loading: hyprgen/ops/native.py.
Every statement is a declaration `const hg_real x = ...;` except the sweep's carried variables,
which are assigned (their blocks' arrays hold them between steps).
"""
from __future__ import annotations

import sympy as sp

from ... import __version__
from ..ir import KernelIR
from .c_printer import PRECISION_EPILOGUE, VECTOR_MATH, c_code, precision_prelude
from .render import jacobian_variables, live_definitions, parser, render, sweep_context


def render_c(ir: KernelIR, sympy_version: str) -> str:
    """The generated C kernels (S-stage step, P-stage, merge) of one neuron, as file text."""
    parse = parser(ir)
    code = lambda text: c_code(parse(text))  # noqa: E731
    const = lambda name, value: f"const hg_real {name} = {value};"  # noqa: E731

    def forward(live: set[str], theta_only: bool) -> list[tuple[str, str]]:
        """(name, value) of the live definitions that read only θ (hoisted), or of the others."""
        out = []
        for definition in ir.definitions:
            if definition.name not in live or definition.theta_only != theta_only:
                continue
            value = code(definition.expr)
            if definition.kind == "spike":
                value = f"((hg_real)(({value}) > HG_R(0.0)))"  # H(0) = 0, as the torch heaviside
            out.append((definition.name, value))
        return out

    declared = lambda pairs: [const(name, value) for name, value in pairs]  # noqa: E731

    jac = ir.jacobians
    jacobian_lines = []
    surrogate = ir.output.surrogate
    psi_argument = None
    if surrogate is not None:
        psi_argument = next(x for x in ir.definitions if x.kind == "spike").expr   # ψ(h): h
        psi = parse(surrogate.expr).subs(sp.Symbol("x", real=True), parse(psi_argument))
        jacobian_lines.append(const("psi", c_code(psi)))
    # Jacobian terms that read only θ (e.g. ∂ of a parameter transform: sqrt, division) join the
    # θ-only definitions, computed once per chunk and lane instead of at every step
    theta_names = {x.name for x in ir.params} | {x.name for x in ir.definitions if x.theta_only}
    theta_jacobian = []
    for name, text in [*jac.cse, *((name, e) for name, _, e in jacobian_variables(jac))]:
        expr = parse(text)
        if not expr.is_number and {x.name for x in expr.free_symbols} <= theta_names:
            theta_names.add(name)
            theta_jacobian.append((name, c_code(expr)))
        else:
            jacobian_lines.append(const(name, c_code(expr)))
    s_live = live_definitions(ir, parse, [*ir.next_state, ir.output.expr])
    p_live = live_definitions(ir, parse, [psi_argument, *(e for _, e in jac.cse),
                                          *(e for _, _, e in jacobian_variables(jac))])
    sweep = sweep_context(ir, parse)
    carried_sweep = sweep["sweep_carried"]
    carried_names = {name for name, _ in carried_sweep}

    def statement(s) -> str:
        value = s.value.plain()
        return f"{s.target} = {value};" if s.target in carried_names else const(s.target, value)

    p_theta = forward(p_live, theta_only=True) + theta_jacobian
    s_stage = declared(forward(s_live, theta_only=True) + forward(s_live, theta_only=False))
    context = dict(
        prelude=precision_prelude, epilogue=PRECISION_EPILOGUE,
        ir=ir, name=ir.name, hyprgen_version=__version__, sympy_version=sympy_version,
        input=ir.input, carried=ir.carried, params=[x.name for x in ir.params], d=sweep["d"], p=sweep["p"],
        s_stage=s_stage, p_stage_theta=declared(p_theta), p_theta_names=[name for name, _ in p_theta],
        p_stage_step=declared(forward(p_live, theta_only=False)),
        next_state=[code(e) for e in ir.next_state], output=code(ir.output.expr),
        jacobians=jacobian_lines, carried_sweep=[(name, repr(value)) for name, value in carried_sweep],
        effective_error=sweep["effective_error"].plain(), signal_gamma=sweep["signal_gamma"],
        fresh_trace=[e.plain() for e in sweep["fresh_trace"]],
        sweep_statements=[statement(s) for s in sweep["sweep_accumulate"] + sweep["sweep_recurse"]],
        q_final=sweep["q_final"],
        phi=[(k, l, value) for k, row in enumerate(sweep["phi_rows"]) for l, value in enumerate(row)],
        theta_in=[(k, j, value) for k, row in enumerate(sweep["theta_in_rows"]) for j, value in enumerate(row)],
    )
    called = " ".join(str(v) for v in context.values())
    context["vector_math"] = [(fn, 2 if fn == "pow" else 1) for fn in VECTOR_MATH
                              if f"HG_F({fn})" in called]   # (name, arguments): declared with vector variants
    return render("c/kernels.c.j2", **context)
