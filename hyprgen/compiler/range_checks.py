"""The checks that need the values a step can reach (reach.py): a domain hazard fails the build, a
float32 overflow warns (a SpecWarning at the spec's line).

Each message names the spec line and symbol, what reaches where, and a fix that fits the kind of
every value behind it: a state's bounds, an assumption on the input, a parameter's clamp (of its raw
value when a transform maps it), or a guard in the expression itself.
"""
from __future__ import annotations

import math
import warnings

import sympy as sp

from ..contract import PREV_SPIKE
from ..errors import SpecError, SpecWarning
from ..spec import Neuron
from . import reach
from .domain import FLOAT32_MAX, Hazard, Overflow, hazards, linear_threshold, overflows
from .intervals import FULL, Range
from .ir import expr_str


def check_domains(neuron: Neuron) -> None:
    """A SpecError at the first expression with a reachable domain hazard."""
    for value in reach.values(neuron):
        found = hazards(value.expr, value.env)
        if found:
            raise SpecError(_hazard_text(neuron, found[0], value.env), value.where, value.name)


def warn_overflows(neuron: Neuron) -> list[SpecWarning]:
    """A SpecWarning (warnings.warn_explicit at the spec's file:line) for the first float32 overflow of
    each expression, a call reported once; returns them."""
    issued, seen = [], set()
    for value in reach.values(neuron, reach.UNBOUNDED_SCALE):
        found = [o for o in overflows(value.expr, value.env) if o.call not in seen]
        if not found:
            continue
        seen.add(found[0].call)
        warning = SpecWarning(_overflow_text(neuron, found[0], value.env), value.where, value.name)
        filename, _, line = value.where.rpartition(":")
        warnings.warn_explicit(warning, SpecWarning, filename or value.where, int(line) if line.isdigit() else 0)
        issued.append(warning)
    return issued


# ----------------------------------------------------------------------------------------------
# The words


def _reach_text(arg: sp.Expr, r: Range, env: dict[sp.Symbol, Range]) -> str:
    text = f"{expr_str(arg)} in {r}"
    if isinstance(arg, sp.Symbol):
        return text
    reads = sorted(arg.free_symbols, key=lambda s: s.name)
    return text + " for " + ", ".join(f"{s} in {env.get(s, FULL)}" for s in reads)


def _hazard_text(neuron: Neuron, h: Hazard, env) -> str:
    arg = expr_str(h.arg)
    guard = f"sp.Max({arg}, 0)" if h.condition == "< 0" else f"sp.Max({arg}, 1e-6) for a positive value"
    return (f"domain hazard: {expr_str(h.call)} is undefined when {arg} {h.condition}, which is reachable "
            f"({_reach_text(h.arg, h.reach, env)}); {_fixes(neuron, h.arg, env)}or guard the argument "
            f"(e.g. {guard})")


def _overflow_text(neuron: Neuron, o: Overflow, env) -> str:
    arg, t = expr_str(o.arg), f"{o.threshold:.6g}"
    where_text = {">": f"{arg} > {t}", "|>|": f"|{arg}| > {t}", "|<|": f"|{arg}| < {t}"}[o.relation]
    in_roots = linear_threshold(o.arg.xreplace(reach.let_expressions(neuron)), o.relation, o.threshold)
    if in_roots is not None and in_roots[0] != o.arg:
        where_text += f", i.e. {in_roots[1]}"
    function = o.call.args[-1] if isinstance(o.call, sp.Mul) else o.call
    cap = math.floor(o.threshold) - 8   # e^8 ≈ 3000 of room for what multiplies the value later
    if isinstance(function, sp.exp):
        guard = f"sp.exp(sp.Min({arg}, {cap}))"
    elif isinstance(function, (sp.cosh, sp.sinh)):
        guard = f"sp.{type(function).__name__}(sp.Max(sp.Min({arg}, {cap}), -{cap}))"
    else:
        guard = f"bound {arg} with sp.Min/sp.Max"
    scale = f"{reach.UNBOUNDED_SCALE:g}"
    return (f"float32 overflow: {expr_str(o.call)} exceeds {FLOAT32_MAX:.2g} when {where_text}, which is reachable "
            f"({_reach_text(o.arg, o.reach, env)}; ±{scale} stands for unbounded); {_fixes(neuron, o.arg, env)}"
            f"or clamp the argument (e.g. {guard})")


def _fixes(neuron: Neuron, expr: sp.Expr, env: dict[sp.Symbol, Range]) -> str:
    """One clause per value behind expr whose range a declaration sets, each with its fix and a
    trailing '; ' (empty when only spikes are behind it)."""
    syms = neuron.known_symbols()
    params = {p.name: p for p in neuron.params_}
    states = {s.name for s in neuron.states_}
    clauses, declared = [], reach.roots(neuron)   # the declared ranges (the overflow check's env caps them)
    for s in reach.sources(neuron, expr):
        r, assumed = declared.get(s, env.get(s, FULL)), neuron.assumptions.get(s.name)
        if s.name == PREV_SPIKE or s.name not in syms or s.name in {d.name for d in neuron.definitions
                                                                   if d.kind == "spike"}:
            continue
        if s.name in states:
            clauses.append(f'{s} is a state declared within {r}: narrow its bounds if its dynamics allow' if assumed
                           else f'{s} is a state: if its dynamics keep it within a range, declare it, '
                                f'neuron.state("{s}", bounds=(lo, hi))')
        elif s == neuron.input:
            clauses.append(f"the input current {s} is assumed within {r}" if assumed else
                           f"the input current {s} is unbounded: if the network keeps it within a range, "
                           "declare it, neuron.assume(neuron.input, bounds=(lo, hi))")
        elif s.name in params:
            p = params[s.name]
            if p.transform.kind == "identity":
                clauses.append(f"{s} is a parameter {'clamped to ' + str(r) if p.clamp != (None, None) else 'without a clamp'}"
                               f": clamp it, neuron.param(\"{s}\", ..., clamp=(lo, hi))")
            else:
                clauses.append(f"{s}_value = {_transform_text(p, s)} of the parameter '{s}': clamp the raw parameter "
                               f"'{s}', neuron.param(\"{s}\", ..., clamp=(lo, hi))")
        elif assumed:
            clauses.append(f"{s} is assumed within {Range(assumed.lo, assumed.hi)} (neuron.assume at {assumed.where})")
    return "".join(c + "; " for c in clauses)


def _transform_text(p, raw: sp.Symbol) -> str:
    if p.transform.kind == "abs":
        return f"|{raw}|"
    return expr_str(p.transform.apply(raw))
