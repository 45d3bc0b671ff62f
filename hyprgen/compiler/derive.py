"""Derivation: a validated Neuron → KernelIR (plain, JSON-dumpable data).

The step is a chain of named definitions (docs/hypr.md §1). Local Jacobians (§2) are total
derivatives along that chain, taken forward in definition order: for a definition s = e(y1, y2, …),
ds/dv = Σ_k ∂e/∂y_k · dy_k/dv. A spike z = H(h) contributes ψ·dh/dv (ψ, the surrogate, stands in
for H'); a reset term under detach_reset contributes nothing. Derivatives stay written in terms of
the named values the forward pass computes anyway, structural zeros fall out as exact zeros, and
`sympy.cse` factors the rest. No `simplify` is ever called.
"""
from __future__ import annotations

import json

import sympy as sp
from sympy import S  # singletons by their own names: a spec that rebinds sp.I cannot fool the checks
from sympy.core.function import AppliedUndef
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.printing.str import StrPrinter

from .. import __version__
from ..contract import IR_VERSION, PREV_SPIKE, SURROGATE_SYMBOL, spec_hash
from ..errors import SpecError
from ..spec import Neuron
from .domain import FULL, hazards, interval


class _ExactStrPrinter(StrPrinter):
    """str() with floats printed exactly (repr of the double), so IR strings round-trip."""

    def _print_Float(self, expr):
        return repr(float(expr))


def expr_str(expr) -> str:
    return _ExactStrPrinter({"order": "none"}).doprint(sp.sympify(expr))


# ----------------------------------------------------------------------------------------------
# Validation


# Functions every printer supports (by SymPy class name). Any other function, and any unevaluated
# operation (Derivative, Integral, Sum, ...), is rejected with a located error before code generation.
SUPPORTED_FUNCTIONS = frozenset({
    "exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh", "atan", "asin", "acos", "erf", "Abs", "sign",
    "Heaviside", "Max", "Min", "Piecewise",
})
_STRUCTURE = (sp.Add, sp.Mul, sp.Pow, sp.Symbol, ExprCondPair, sp.core.relational.Relational,
              sp.And, sp.Or, sp.Not, sp.logic.boolalg.BooleanAtom)


def _unsupported(expr: sp.Basic) -> sp.Basic | None:
    """The first sub-expression that no printer supports (numeric sub-expressions are folded to literals)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, sp.Expr) and node.is_number:
            continue  # printed as one float literal (finiteness is checked separately)
        if isinstance(node, (sp.Function, sp.Max, sp.Min)) and type(node).__name__ in SUPPORTED_FUNCTIONS:
            pass
        elif not isinstance(node, _STRUCTURE):
            return node
        stack.extend(reversed(node.args))
    return None


def _check_expr(neuron: Neuron, expr: sp.Expr, scope: set[sp.Symbol], where: str, symbol: str, what: str) -> None:
    """Every problem of one expression of the step, reported at its declaration."""
    known = neuron.known_symbols()
    for fn in sorted(expr.atoms(AppliedUndef), key=str):
        raise SpecError(f"{what} calls the undefined function {fn}: hyprgen needs SymPy's own functions "
                        f"({', '.join(sorted(SUPPORTED_FUNCTIONS))})", where, str(fn.func))
    if expr.has(S.ImaginaryUnit) or any(n.is_real is False and n.is_finite is not False
                                        for n in expr.atoms(sp.Number)):
        raise SpecError(f"{what} is not real-valued (it contains the imaginary unit I = sqrt(-1))", where, symbol)
    if expr.has(S.NaN, S.ComplexInfinity, S.Infinity, S.NegativeInfinity):
        raise SpecError(f"{what} is not finite (it contains nan, oo or zoo): {expr_str(expr)}", where, symbol)
    for s in sorted(expr.free_symbols, key=lambda s: s.name):
        if s in scope:
            continue
        if s.name not in known:
            raise SpecError(f"{what} reads an unknown symbol: declare it with neuron.state/param/const/let",
                            where, s.name)
        if known[s.name] != s:
            assumptions = ", ".join(f"{k}={v}" for k, v in sorted(s.assumptions0.items()) if v is not None)
            raise SpecError(f"{what} reads a symbol '{s.name}' that is not the one the neuron declared: it is "
                            f"not real ({assumptions or 'no assumptions'}); use the symbol that neuron.state/"
                            "param/let returned (hyprgen works in real arithmetic)", where, s.name)
        raise SpecError(f"{what} reads '{s.name}' before it is defined", where, s.name)
    for pw in sorted(expr.atoms(sp.Piecewise), key=sp.default_sort_key):
        if pw.args[-1].cond != S.true:
            raise SpecError(f"{what}: {expr_str(pw)} has no default branch, so it is undefined where no "
                            "condition holds; end it with (value, True)", where, symbol)
    bad = _unsupported(expr)
    if bad is not None:
        kind = type(bad).__name__
        if isinstance(bad, (sp.Derivative, sp.Integral, sp.Subs, sp.Sum, sp.Product, sp.Limit)):
            problem = f"contains an unevaluated {kind} ({expr_str(bad)}): evaluate it (.doit()) or write the result"
        else:
            problem = (f"uses {kind} ({expr_str(bad)}), which hyprgen cannot print; supported functions: "
                       f"{', '.join(sorted(SUPPORTED_FUNCTIONS))}, powers and sqrt")
        raise SpecError(f"{what} {problem}", where, symbol)


def validate(neuron: Neuron) -> None:
    """Raise a located SpecError for the first problem found."""
    if not neuron.states_:
        raise SpecError(f"neuron '{neuron.name}' declares no state (neuron.state(...))", neuron.where)
    if neuron.output_kind is None:
        raise SpecError(f"neuron '{neuron.name}' has no output: declare neuron.spike(h, surrogate=...) for a "
                        "spiking neuron or neuron.output(expr) for a continuous one", neuron.where)
    if neuron.reads_prev_spike and neuron.output_kind != "spike":
        raise SpecError("prev_spike is read but the output is not a spike", neuron.output_where, PREV_SPIKE)
    syms = neuron.known_symbols()
    scope = {neuron.input} | {syms[s.name] for s in neuron.states_} | {syms[p.name] for p in neuron.params_}
    if neuron.reads_prev_spike:
        scope.add(syms[PREV_SPIKE])
    for d in neuron.definitions:
        what = {"param": f"the value of parameter '{d.name}'", "reset": "the reset term"}.get(d.kind, f"'{d.name}'")
        _check_expr(neuron, d.expr, scope, d.where, d.name, what)
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
        _check_expr(neuron, e, scope, where, name, f"the new value of state '{name}'")
    if neuron.output_kind == "continuous":
        _check_expr(neuron, neuron.output_expr, scope, neuron.output_where, "output", "the output")
    if neuron.output_kind == "spike":
        bad = _unsupported(neuron.surrogate.expr)
        if bad is not None:
            raise SpecError(f"the surrogate uses {type(bad).__name__} ({expr_str(bad)}), which hyprgen cannot print",
                            neuron.output_where, "surrogate")
    for p in neuron.params_:
        value = syms.get(f"{p.name}_value", syms[p.name]) if p.transform.kind != "identity" else syms[p.name]
        if value not in read:
            raise SpecError("trainable parameter is never read by the step (its gradient would always be 0): "
                            "use it or remove it", p.where, p.name)
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
            call, arg, (lo, hi), cond = found[0]
            reads = sorted(s.name for s in arg.free_symbols)
            ranges = ", ".join(f"{s} in [{env.get(syms[s], FULL)[0]:g}, {env.get(syms[s], FULL)[1]:g}]" for s in reads)
            arg_text = expr_str(arg)
            reach = (f"{arg_text} in [{lo:g}, {hi:g}]" if reads == [arg_text] else
                     f"{arg_text} in [{lo:g}, {hi:g}] for {ranges}")
            raise SpecError(f"domain hazard: {expr_str(call)} is undefined when {arg_text} {cond}, which is "
                            f"reachable ({reach}); clamp the parameter (clamp=(low, high)) or guard the argument",
                            where, name)
        kind = next((d.kind for d in neuron.definitions if d.name == name), "let")
        env[syms.get(name, sp.Symbol(name))] = (0.0, 1.0) if kind == "spike" else interval(expr, env)


# ----------------------------------------------------------------------------------------------
# Derivatives


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
            de = sp.diff(expr, y)
            if de == 0:
                continue
            _check_derivative(de, where, symbol, what, y)
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


def _check_derivative(de: sp.Expr, where: str, symbol: str, what: str, wrt: sp.Symbol) -> None:
    """A partial derivative that no printer can evaluate (DiracDelta of a step, say) is a spec error."""
    bad = _unsupported(de)
    if bad is None:
        return
    hint = ""
    if isinstance(bad, sp.DiracDelta):
        hint = (": a step function (Heaviside, sign) inside the step has no usable derivative; make the spike "
                "with neuron.spike (its derivative is the surrogate) or use a smooth function")
    raise SpecError(f"the derivative of {what} with respect to '{wrt}' contains {expr_str(bad)}, which hyprgen "
                    f"cannot print{hint}", where, symbol)


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
    _check_printed_names(neuron, [d.expr for d in neuron.definitions] + next_exprs + [neuron.output_expr]
                         + ([neuron.surrogate.expr] if neuron.output_kind == "spike" else [])
                         + [e for _, e in temps] + list(reduced))
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
        "spec_hash": spec_hash(spec_source),
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


def _printed_names(expr: sp.Basic) -> set[str]:
    """Names (other than symbols) that the printed form of expr contains: functions and constants."""
    names = set()
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Symbol):
            continue
        if isinstance(node, (sp.Function, sp.Max, sp.Min, sp.Eq, sp.Ne)):
            names.add(type(node).__name__)
        elif isinstance(node, sp.Pow) and node.exp in (sp.S.Half, -sp.S.Half):
            names.add("sqrt")
        elif node.is_Atom and str(node).isidentifier():
            names.add(str(node))  # E, pi, oo, nan, EulerGamma, ...
    return names


def _check_printed_names(neuron: Neuron, exprs: list[sp.Basic]) -> None:
    """A symbol may not share its name with a function or constant the IR prints (exp, E, pi, ...):
    the expression strings would read back differently."""
    symbols = {s.name for e in exprs for s in e.free_symbols}
    for e in exprs:
        clash = sorted(_printed_names(e) & symbols)
        if clash:
            name = clash[0]
            raise SpecError(f"the symbol '{name}' has the name of the SymPy function or constant {name} that the "
                            f"step uses (in {expr_str(e)}); rename the symbol", neuron.declared_at(name), name)


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
