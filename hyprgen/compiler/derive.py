"""Derivation: a validated Neuron → KernelIR (compiler/ir.py: plain, JSON-dumpable data).

The step is a chain of named definitions (docs/hypr.md §1). Local Jacobians (§2) are total
derivatives along that chain, taken forward in definition order: for a definition s = e(y1, y2, …),
ds/dv = Σ_k ∂e/∂y_k · dy_k/dv. A spike z = H(h) contributes ψ·dh/dv (ψ, the surrogate, stands in
for H'); a reset term under detach_reset contributes nothing. Derivatives stay written in terms of
the named values the forward pass computes anyway, structural zeros fall out as exact zeros, and
`sympy.cse` factors the rest. No `simplify` is ever called.
"""
from __future__ import annotations

import sympy as sp

from .. import __version__
from ..contract import IR_VERSION, JACOBIAN_BLOCKS, PREV_SPIKE, SURROGATE_SYMBOL, spec_hash
from ..spec import Neuron
from . import kinks
from .ir import DefinitionIR, Jacobians, KernelIR, OutputIR, ParamIR, StateIR, SurrogateIR, expr_str
from .validate import check_derivative, check_printed_names, validate


def _total_derivatives(neuron: Neuron, variables: list[sp.Symbol], psi: sp.Symbol):
    """d(value)/d(variable) for every named value, as sparse dicts {variable: expr}."""
    syms = neuron.known_symbols()
    grads: dict[sp.Symbol, dict[sp.Symbol, sp.Expr]] = {v: {v: sp.Integer(1)} for v in variables}

    def chain(expr: sp.Expr, where: str = "", symbol: str = "", what: str = "") -> dict[sp.Symbol, sp.Expr]:
        out: dict[sp.Symbol, sp.Expr] = {}
        for y in sorted(expr.free_symbols, key=sp.default_sort_key):
            dy = grads.get(y)
            if not dy:
                continue
            de = kinks.diff(expr, y)   # Max, Min: the derivative autograd takes at the kink
            if de == 0:
                continue
            check_derivative(de, where, symbol, what, y)
            for v, g in dy.items():
                out[v] = out.get(v, sp.Integer(0)) + de * g
        return {v: g for v, g in out.items() if g != 0}

    for d in neuron.definitions:
        sym = syms[d.name]
        if d.kind == "spike":
            grads[sym] = {v: psi * g for v, g in grads[d.expr].items()}
        elif d.kind == "reset" and neuron.detach_reset:
            grads[sym] = {}
        else:
            grads[sym] = chain(d.expr, d.where, d.name, f"'{d.name}'")
    return grads, chain


def derive(neuron: Neuron, spec_name: str, spec_source: str) -> KernelIR:
    """The KernelIR of a neuron (validated first). spec_name is the file name shown in headers."""
    validate(neuron)
    syms = neuron.known_symbols()
    every_read = set().union(*(d.expr.free_symbols for d in neuron.definitions),
                             *(e.free_symbols for e, _ in neuron.updates.values()),
                             neuron.output_expr.free_symbols)
    carried = [s.name for s in neuron.states_ if syms[s.name] in every_read]
    if neuron.reads_prev_spike:
        carried.append(PREV_SPIKE)
    state_syms = [syms[n] for n in carried]
    param_syms = [syms[p.name] for p in neuron.params_]
    psi = sp.Symbol(SURROGATE_SYMBOL, real=True)
    grads, chain = _total_derivatives(neuron, state_syms + [neuron.input] + param_syms, psi)

    next_exprs = [neuron.output_expr if n == PREV_SPIKE else neuron.updates[n][0] for n in carried]
    next_grads = []
    for n, e in zip(carried, next_exprs):
        if n == PREV_SPIKE:
            next_grads.append(chain(e, neuron.output_where, PREV_SPIKE, "the spike"))
        else:
            next_grads.append(chain(e, neuron.updates[n][1], n, f"the new value of state '{n}'"))
    out_grad = chain(neuron.output_expr, neuron.output_where, "output", "the output")

    blocks = {
        "A": [[g.get(s) for s in state_syms] for g in next_grads],
        "c": [g.get(neuron.input) for g in next_grads],
        "D": [[g.get(p) for p in param_syms] for g in next_grads],
        "a": [out_grad.get(s) for s in state_syms],
        "gamma": out_grad.get(neuron.input),
        "delta": [out_grad.get(p) for p in param_syms],
    }
    flat = [e for e in _flatten(blocks) if e is not None]
    temps, reduced = sp.cse(flat, symbols=sp.numbered_symbols("t", real=True), order="canonical")
    check_printed_names(neuron, [d.expr for d in neuron.definitions] + next_exprs + [neuron.output_expr]
                        + ([neuron.surrogate.expr] if neuron.output_kind == "spike" else [])
                        + [e for _, e in temps] + list(reduced))
    reduced_iter = iter(reduced)
    jacobians = Jacobians(cse=[(str(t), expr_str(e)) for t, e in temps],
                          **_map_entries(blocks, lambda e: None if e is None else expr_str(next(reduced_iter))))

    surrogate = None
    if neuron.output_kind == "spike":
        surrogate = SurrogateIR(neuron.surrogate.name, expr_str(neuron.surrogate.expr))
    states = [StateIR(s.name, s.init, s.doc, s.name in carried) for s in neuron.states_]
    if neuron.reads_prev_spike:
        states.append(StateIR(PREV_SPIKE, 0.0, "previous spike", True))
    return KernelIR(
        ir_version=IR_VERSION, hyprgen_version=__version__, name=neuron.name, doc=neuron.doc,
        spec_file=spec_name, spec_hash=spec_hash(spec_source), detach_reset=neuron.detach_reset,
        states=states, carried=carried, input=neuron.input.name,
        params=[ParamIR(p.name, p.init.to_dict(), p.transform.to_dict(), [p.clamp[0], p.clamp[1]], p.doc)
                for p in neuron.params_],
        consts=dict(neuron.consts_),
        output=OutputIR(neuron.output_kind, expr_str(neuron.output_expr), surrogate),
        definitions=_definitions(neuron),
        next_state=[expr_str(e) for e in next_exprs],
        jacobians=jacobians,
    )


def _definitions(neuron: Neuron) -> list[DefinitionIR]:
    """The step's definitions in order, each marked theta_only when it reads nothing but parameters
    and earlier theta-only definitions (the kernels compute those once per chunk, not per step)."""
    syms = neuron.known_symbols()
    constant = {syms[p.name] for p in neuron.params_}
    out = []
    for d in neuron.definitions:
        theta_only = d.expr.free_symbols <= constant
        if theta_only:
            constant.add(syms[d.name])
        out.append(DefinitionIR(d.name, d.kind, expr_str(d.expr), theta_only))
    return out


def _flatten(blocks: dict):
    """Every entry of the blocks, in contract.JACOBIAN_BLOCKS order (the order sympy.cse numbers them)."""
    for key in JACOBIAN_BLOCKS:
        v = blocks[key]
        if isinstance(v, list):
            for row in v:
                yield from (row if isinstance(row, list) else [row])
        else:
            yield v


def _map_entries(blocks: dict, fn) -> dict:
    """The blocks with fn applied to every entry, in the order _flatten visits them."""
    out = {}
    for key in JACOBIAN_BLOCKS:
        v = blocks[key]
        if isinstance(v, list):
            out[key] = [[fn(e) for e in row] if isinstance(row, list) else fn(row) for row in v]
        else:
            out[key] = fn(v)
    return out
