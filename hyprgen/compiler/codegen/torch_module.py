"""The torch target: a KernelIR → generated/<name>.py (templates/torch/module.py.j2).

The module defines contract.TORCH_MODULE_API: the step in three forms (plain, with the surrogate
injected for autograd, with its local Jacobians) and the unrolled P-stage `p_stage`, whose sums of
products are chained addcmul_ calls (unrolled.Sum.fused).
"""
from __future__ import annotations

from ... import __version__
from ..ir import KernelIR
from .render import meta, parser, py_matrix, py_tuple, render, sweep_context
from .torch_printer import torch_code


def render_torch(ir: KernelIR, sympy_version: str) -> str:
    """The generated torch backend module for one neuron, as text."""
    parse = parser(ir)
    code = lambda text: None if text is None else torch_code(parse(text))  # noqa: E731
    jac = ir.jacobians
    definitions = [(d.name, d.kind, code(d.expr)) for d in ir.definitions]
    surrogate = ir.output.surrogate
    context = {
        "ir": ir,
        "hyprgen_version": __version__,
        "sympy_version": sympy_version,
        "meta": meta(ir, sympy_version),
        "carried": ir.carried,
        "params": [p.name for p in ir.params],
        "forward_plain": _forward_lines(ir, definitions, autograd=False),
        "forward_autograd": _forward_lines(ir, definitions, autograd=True),
        "next_state": py_tuple([code(e) for e in ir.next_state]),
        "output": code(ir.output.expr),
        "surrogate": None if surrogate is None else code(surrogate.expr),
        "cse": [(t, code(e)) for t, e in jac.cse],
        **_fused_sweep(sweep_context(ir, parse)),
        "jacobians": [
            ("A", py_matrix([[code(e) for e in row] for row in jac.A])),
            ("c", py_tuple([code(e) for e in jac.c])),
            ("D", py_matrix([[code(e) for e in row] for row in jac.D])),
            ("a", py_tuple([code(e) for e in jac.a])),
            ("gamma", str(code(jac.gamma))),
            ("delta", py_tuple([code(e) for e in jac.delta])),
        ],
    }
    return render("torch/module.py.j2", **context)


def _fused_sweep(sweep: dict) -> dict:
    """The torch module's loop body with every sum of products as chained addcmul_ (Sum.fused)."""
    numbers = frozenset(name for name, _, number in sweep["sweep_entries"] if number)
    return sweep | {
        "effective_error": sweep["effective_error"].fused(numbers),
        "fresh_trace": [e.fused(numbers) for e in sweep["fresh_trace"]],
        "sweep_accumulate": [f"{s.target} = {s.value.fused(numbers)}" for s in sweep["sweep_accumulate"]],
        "sweep_recurse": [f"{s.target} = {s.value.fused(numbers)}" for s in sweep["sweep_recurse"]],
    }


def _unpack(names: list[str], source: str) -> list[str]:
    if not names:
        return []
    return [f"{', '.join(names)}{',' if len(names) == 1 else ''} = {source}"]


def _forward_lines(ir: KernelIR, definitions: list[tuple[str, str, str]], autograd: bool) -> list[str]:
    """Statements of one step: unpack state and parameters, then every definition in order."""
    lines = _unpack(ir.carried, "state") + _unpack([p.name for p in ir.params], "params")
    for name, kind, value in definitions:
        if kind == "spike":
            value = f"{'spike_with_surrogate' if autograd else 'heaviside'}({value})"
        elif kind == "reset" and autograd and ir.detach_reset:
            value = f"({value}).detach()"
        lines.append(f"{name} = {value}")
    return lines
