"""Validation of a whole neuron model: every problem is a SpecError located at the declaration behind it.

The spec language (hyprgen/spec.py) checks each declaration's own arguments as the spec runs; this
module checks what only the whole model shows, before anything is derived: symbols read before they
are defined or never declared, non-real or non-finite expressions, functions no printer supports
(codegen/functions.py, the one list), Piecewise without a default, states never updated, parameters
never read, reachable domain hazards (sqrt/log of a negative, division by zero) and float32 overflows
(a warning; both in range_checks.py), and, after derivation, derivatives that cannot be printed and symbols named like a printed function.
"""
from __future__ import annotations

import sympy as sp
from sympy import S  # singletons by their own names: a spec that rebinds sp.I cannot fool the checks
from sympy.core.function import AppliedUndef
from sympy.functions.elementary.piecewise import ExprCondPair

from ..contract import PREV_SPIKE
from ..errors import SpecError
from ..spec import Neuron
from .codegen.functions import SUPPORTED_FUNCTIONS
from .range_checks import check_domains, warn_overflows
from .ir import expr_str


_STRUCTURE = (sp.Add, sp.Mul, sp.Pow, sp.Symbol, ExprCondPair, sp.core.relational.Relational,
              sp.And, sp.Or, sp.Not, sp.logic.boolalg.BooleanAtom)


def unsupported(expr: sp.Basic) -> sp.Basic | None:
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
    bad = unsupported(expr)
    if bad is not None:
        kind = type(bad).__name__
        if isinstance(bad, (sp.Derivative, sp.Integral, sp.Subs, sp.Sum, sp.Product, sp.Limit)):
            problem = f"contains an unevaluated {kind} ({expr_str(bad)}): evaluate it (.doit()) or write the result"
        else:
            problem = (f"uses {kind} ({expr_str(bad)}), which hyprgen cannot print; supported functions: "
                       f"{', '.join(sorted(SUPPORTED_FUNCTIONS))}, powers and sqrt")
        raise SpecError(f"{what} {problem}", where, symbol)


def validate(neuron: Neuron) -> None:
    """Raise a located SpecError for the first problem of the whole model (declarations were checked
    one by one as the spec ran: hyprgen/spec.py)."""
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
        bad = unsupported(neuron.surrogate.expr)
        if bad is not None:
            raise SpecError(f"the surrogate uses {type(bad).__name__} ({expr_str(bad)}), which hyprgen cannot print",
                            neuron.output_where, "surrogate")
    for p in neuron.params_:
        value = syms.get(f"{p.name}_value", syms[p.name]) if p.transform.kind != "identity" else syms[p.name]
        if value not in read:
            raise SpecError("trainable parameter is never read by the step (its gradient would always be 0): "
                            "use it or remove it", p.where, p.name)
    check_domains(neuron)
    warn_overflows(neuron)


def check_derivative(de: sp.Expr, where: str, symbol: str, what: str, wrt: sp.Symbol) -> None:
    """A partial derivative that no printer can evaluate (DiracDelta of a step, say) is a spec error."""
    bad = unsupported(de)
    if bad is None:
        return
    hint = ""
    if isinstance(bad, sp.DiracDelta):
        hint = (": a step function (Heaviside, sign) inside the step has no usable derivative; make the spike "
                "with neuron.spike (its derivative is the surrogate) or use a smooth function")
    raise SpecError(f"the derivative of {what} with respect to '{wrt}' contains {expr_str(bad)}, which hyprgen "
                    f"cannot print{hint}", where, symbol)


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


def check_printed_names(neuron: Neuron, exprs: list[sp.Basic]) -> None:
    """A symbol may not share its name with a function or constant the IR prints (exp, E, pi, ...):
    the expression strings would read back differently."""
    symbols = {s.name for e in exprs for s in e.free_symbols}
    for e in exprs:
        clash = sorted(_printed_names(e) & symbols)
        if clash:
            name = clash[0]
            raise SpecError(f"the symbol '{name}' has the name of the SymPy function or constant {name} that the "
                            f"step uses (in {expr_str(e)}); rename the symbol", neuron.declared_at(name), name)
