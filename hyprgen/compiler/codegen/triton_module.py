"""The Triton target: a KernelIR → generated/<name>_triton.py (templates/triton/kernels.py.j2).

Two kernels per neuron, named by contract.kernel_name: the S-stage (the λ steps with the recurrent
product fused) and the P-stage (the reverse sweep with the Jacobians recomputed in registers). Their
launchers and plain-PyTorch references are hyprgen/ops/s_stage.py and ops/p_stage.py. The sweep's
sums stay plain expressions (Triton's compiler contracts them into FMAs). Each kernel computes only
the definitions its outputs need, and those that read only θ once, before its loop over τ.
"""
from __future__ import annotations

import sympy as sp

from ... import __version__
from ..ir import KernelIR
from .render import jacobian_variables, live_definitions, parser, render, sweep_context
from .triton_printer import TRITON_PRELUDE, triton_code


def render_triton(ir: KernelIR, sympy_version: str) -> str:
    """The generated Triton kernels (S-stage, P-stage) of one neuron, as module text."""
    parse = parser(ir)

    def code(text: str) -> str:
        return triton_code(parse(text))

    def tensor(text: str) -> str:
        """Code whose value is a block tensor: a bare number is broadcast onto _zero."""
        expr = parse(text)
        return f"_zero + {triton_code(expr)}" if expr.is_number else triton_code(expr)

    def forward(live: set[str], theta_only: bool) -> list[str]:
        """The live definitions that read only θ (hoisted before the loop over τ), or the others."""
        lines = []
        for definition in ir.definitions:
            if definition.name not in live or definition.theta_only != theta_only:
                continue
            value = tensor(definition.expr)
            if definition.kind == "spike":
                value = f"({value} > 0.0).to(tl.float32)"  # H(0) = 0, as the torch backend's heaviside
            lines.append(f"{definition.name} = {value}")
        return lines

    jac = ir.jacobians
    jacobian_lines = []
    surrogate = ir.output.surrogate
    psi_argument = None
    if surrogate is not None:
        psi_argument = next(x for x in ir.definitions if x.kind == "spike").expr   # ψ(h): h
        psi = parse(surrogate.expr).subs(sp.Symbol("x", real=True), parse(psi_argument))
        jacobian_lines.append(f"psi = {triton_code(psi)}")
    jacobian_lines += [f"{name} = {code(value)}" for name, value in jac.cse]
    jacobian_lines += [f"{name} = {code(e)}" for name, _, e in jacobian_variables(jac)]
    s_live = live_definitions(ir, parse, [*ir.next_state, ir.output.expr])
    p_live = live_definitions(ir, parse, [psi_argument, *(e for _, e in jac.cse),
                                          *(e for _, _, e in jacobian_variables(jac))])
    sweep = sweep_context(ir, parse)
    plain = lambda statements: [f"{s.target} = {s.value.plain()}" for s in statements]  # noqa: E731
    context = {
        "ir": ir, "hyprgen_version": __version__, "sympy_version": sympy_version, "prelude": TRITON_PRELUDE,
        "carried": ir.carried, "params": [x.name for x in ir.params],
        "s_stage_theta": forward(s_live, theta_only=True), "s_stage_step": forward(s_live, theta_only=False),
        "p_stage_theta": forward(p_live, theta_only=True), "p_stage_step": forward(p_live, theta_only=False),
        "next_state": list(zip(ir.carried, [tensor(e) for e in ir.next_state])),
        "output": tensor(ir.output.expr),
        "jacobians": jacobian_lines,
        **sweep,
        "effective_error": sweep["effective_error"].plain(),
        "fresh_trace": [e.plain() for e in sweep["fresh_trace"]],
        "sweep_accumulate": plain(sweep["sweep_accumulate"]),
        "sweep_recurse": plain(sweep["sweep_recurse"]),
        "phi": [(k, l, value) for k, row in enumerate(sweep["phi_rows"]) for l, value in enumerate(row)],
        "theta_in": [(k, j, value) for k, row in enumerate(sweep["theta_in_rows"]) for j, value in enumerate(row)],
    }
    return render("triton/kernels.py.j2", **context)
