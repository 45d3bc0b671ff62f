"""Derivation: a validated Neuron → KernelIR (plain, JSON-dumpable data).

The step is a chain of named definitions (shared/HYPR.md §1). Local Jacobians (§2) are total
derivatives along that chain, taken forward in definition order: for a definition s = e(y1, y2, …),
ds/dv = Σ_k ∂e/∂y_k · dy_k/dv. A spike z = H(h) contributes ψ·dh/dv (ψ, the surrogate, stands in
for H'); a reset term under detach_reset contributes nothing. Derivatives stay written in terms of
the named values the forward pass computes anyway, structural zeros fall out as exact zeros, and
`sympy.cse` factors the rest. No `simplify` is ever called.
"""
from __future__ import annotations

import hashlib
import json

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.str import StrPrinter

from . import __version__
from .domain import FULL, hazards, interval
from .errors import SpecError
from .spec import PREV_SPIKE, Neuron

IR_VERSION = 1
SURROGATE_NAME = "psi"


class _ExactStrPrinter(StrPrinter):
    """str() with floats printed exactly (repr of the double), so IR strings round-trip."""

    def _print_Float(self, expr):
        return repr(float(expr))


def expr_str(expr) -> str:
    return _ExactStrPrinter({"order": "none"}).doprint(sp.sympify(expr))


# ----------------------------------------------------------------------------------------------
# Validation


def _check_symbols(neuron: Neuron, expr: sp.Expr, scope: set[sp.Symbol], where: str, what: str) -> None:
    known = neuron.known_symbols()
    for fn in sorted(expr.atoms(AppliedUndef), key=str):
        raise SpecError(f"undefined function '{fn.func}' in {what}: use SymPy functions", where, str(fn.func))
    if expr.has(sp.I) or any(n.is_real is False for n in expr.atoms(sp.Number)):
        raise SpecError(f"{what} is not real-valued (it contains the imaginary unit)", where, what)
    for s in sorted(expr.free_symbols, key=lambda s: s.name):
        if s in scope:
            continue
        if s.name not in known:
            raise SpecError(f"unknown symbol in {what}: declare it with neuron.state/param/const/let",
                            where, s.name)
        if known[s.name] != s:
            raise SpecError(f"symbol in {what} is not real: use the symbol that the neuron returned "
                            f"for '{s.name}' (hyprgen works in real arithmetic)", where, s.name)
        raise SpecError(f"{what} reads '{s.name}' before it is defined", where, s.name)


def validate(neuron: Neuron) -> None:
    """Raise a located SpecError for the first problem found."""
    if not neuron.states_:
        raise SpecError("the neuron declares no state (neuron.state(...))", neuron.where, neuron.name)
    if neuron.output_kind is None:
        raise SpecError("the neuron has no output: declare neuron.spike(h, surrogate=...) for a spiking "
                        "neuron or neuron.output(expr) for a continuous one", neuron.where, neuron.name)
    if neuron.reads_prev_spike and neuron.output_kind != "spike":
        raise SpecError("prev_spike is read but the output is not a spike", neuron.output_where, PREV_SPIKE)
    syms = neuron.known_symbols()
    scope = {neuron.input} | {syms[s.name] for s in neuron.states_} | {syms[p.name] for p in neuron.params_}
    if neuron.reads_prev_spike:
        scope.add(syms[PREV_SPIKE])
    for d in neuron.definitions:
        _check_symbols(neuron, d.expr, scope, d.where, f"'{d.name}'")
        scope.add(syms[d.name])
    read = set().union(*(d.expr.free_symbols for d in neuron.definitions), *(e.free_symbols for e, _ in neuron.updates.values()))
    if neuron.output_kind == "continuous":
        read |= neuron.output_expr.free_symbols
    for s in neuron.states_:
        if s.name not in neuron.updates:
            if syms[s.name] in read:
                raise SpecError("state is read but never updated: add neuron.update(...) for it", s.where, s.name)
            raise SpecError("state has no update: add neuron.update(...) for it", s.where, s.name)
    for name, (e, where) in neuron.updates.items():
        _check_symbols(neuron, e, scope, where, f"the update of '{name}'")
    if neuron.output_kind == "continuous":
        _check_symbols(neuron, neuron.output_expr, scope, neuron.output_where, "the output")
    _check_domains(neuron)


def _check_domains(neuron: Neuron) -> None:
    syms = neuron.known_symbols()
    env = {}
    for p in neuron.params_:
        lo, hi = p.clamp
        env[syms[p.name]] = (FULL[0] if lo is None else lo, FULL[1] if hi is None else hi)
    if neuron.reads_prev_spike:
        env[syms[PREV_SPIKE]] = (0.0, 1.0)
    exprs = [(d.name, d.expr, d.where) for d in neuron.definitions]
    exprs += [(f"next_{n}", e, w) for n, (e, w) in neuron.updates.items()]
    for name, expr, where in exprs:
        found = hazards(expr, env)
        if found:
            call, arg, (lo, hi) = found[0]
            reads = sorted(s.name for s in arg.free_symbols)
            ranges = ", ".join(f"{s} in [{env.get(syms[s], FULL)[0]:g}, {env.get(syms[s], FULL)[1]:g}]" for s in reads)
            raise SpecError(f"domain hazard: {expr_str(call)} is undefined when {expr_str(arg)} < 0, which is "
                            f"reachable ({expr_str(arg)} in [{lo:g}, {hi:g}] for {ranges}); clamp the "
                            "parameter or guard the argument", where, name)
        kind = next((d.kind for d in neuron.definitions if d.name == name), "let")
        env[syms.get(name, sp.Symbol(name))] = (0.0, 1.0) if kind == "spike" else interval(expr, env)


# ----------------------------------------------------------------------------------------------
# Derivatives


def _total_derivatives(neuron: Neuron, variables: list[sp.Symbol], psi: sp.Symbol):
    """d(value)/d(variable) for every named value, as sparse dicts {variable: expr}."""
    syms = neuron.known_symbols()
    grads: dict[sp.Symbol, dict[sp.Symbol, sp.Expr]] = {v: {v: sp.Integer(1)} for v in variables}

    def chain(expr: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
        out: dict[sp.Symbol, sp.Expr] = {}
        for y in sorted(expr.free_symbols, key=sp.default_sort_key):
            dy = grads.get(y)
            if not dy:
                continue
            de = sp.diff(expr, y)
            if de == 0:
                continue
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
            grads[sym] = chain(d.expr)
    return grads, chain


def derive(neuron: Neuron, spec_name: str, spec_source: str) -> dict:
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
    psi = sp.Symbol(SURROGATE_NAME, real=True)
    grads, chain = _total_derivatives(neuron, state_syms + [neuron.input] + param_syms, psi)

    next_exprs = [neuron.output_expr if n == PREV_SPIKE else neuron.updates[n][0] for n in carried]
    next_grads = [chain(e) for e in next_exprs]
    out_grad = chain(neuron.output_expr)

    entries = {
        "A": [[g.get(s) for s in state_syms] for g in next_grads],
        "c": [g.get(neuron.input) for g in next_grads],
        "D": [[g.get(p) for p in param_syms] for g in next_grads],
        "a": [out_grad.get(s) for s in state_syms],
        "gamma": out_grad.get(neuron.input),
        "delta": [out_grad.get(p) for p in param_syms],
    }
    flat = [e for e in _flatten(entries) if e is not None]
    temps, reduced = sp.cse(flat, symbols=sp.numbered_symbols("t", real=True), order="canonical")
    reduced_iter = iter(reduced)
    jac = _map_entries(entries, lambda e: None if e is None else expr_str(next(reduced_iter)))

    surrogate = None
    if neuron.output_kind == "spike":
        surrogate = {"name": neuron.surrogate.name, "expr": expr_str(neuron.surrogate.expr)}
    return {
        "ir_version": IR_VERSION,
        "hyprgen_version": __version__,
        "name": neuron.name,
        "doc": neuron.doc,
        "spec_file": spec_name,
        "spec_hash": hashlib.sha256(spec_source.encode()).hexdigest(),
        "detach_reset": neuron.detach_reset,
        "states": [{"name": s.name, "init": s.init, "doc": s.doc, "carried": s.name in carried}
                   for s in neuron.states_]
                  + ([{"name": PREV_SPIKE, "init": 0.0, "doc": "previous spike", "carried": True}]
                     if neuron.reads_prev_spike else []),
        "carried": carried,
        "input": neuron.input.name,
        "params": [{"name": p.name, "init": p.init.to_dict(), "transform": p.transform.to_dict(),
                    "clamp": [p.clamp[0], p.clamp[1]], "doc": p.doc} for p in neuron.params_],
        "consts": dict(neuron.consts_),
        "output": {"kind": neuron.output_kind, "expr": expr_str(neuron.output_expr), "surrogate": surrogate},
        "definitions": [{"name": d.name, "kind": d.kind, "expr": expr_str(d.expr)} for d in neuron.definitions],
        "next_state": [expr_str(e) for e in next_exprs],
        "jacobians": {"cse": [[str(t), expr_str(e)] for t, e in temps], **jac},
    }


def _flatten(entries: dict):
    for key in ("A", "c", "D", "a", "gamma", "delta"):
        v = entries[key]
        if isinstance(v, list):
            for row in v:
                yield from (row if isinstance(row, list) else [row])
        else:
            yield v


def _map_entries(entries: dict, fn) -> dict:
    out = {}
    for key in ("A", "c", "D", "a", "gamma", "delta"):
        v = entries[key]
        if isinstance(v, list):
            out[key] = [[fn(e) for e in row] if isinstance(row, list) else fn(row) for row in v]
        else:
            out[key] = fn(v)
    return out


def sparsity(ir: dict) -> dict[str, list[str]]:
    """Human-readable sparsity patterns: 'X' nonzero, '.' structural zero."""
    pat = lambda row: "".join("." if e is None else "X" for e in row)  # noqa: E731
    j = ir["jacobians"]
    return {"A": [pat(r) for r in j["A"]], "c": [pat(j["c"])], "D": [pat(r) for r in j["D"]],
            "a": [pat(j["a"])], "gamma": [pat([j["gamma"]])], "delta": [pat(j["delta"])]}


def ir_json(ir: dict) -> str:
    return json.dumps(ir, indent=1, sort_keys=False)
