"""The values a step can reach: a Range for every named value, in definition order.

Roots (what a step reads): a state lies in its bounds (neuron.state(..., bounds=) or neuron.assume),
else it is unbounded; the input current likewise; a raw parameter in its clamp (unbounded without
one, since training moves it); the previous spike and every spike in [0, 1]. Each later value (let,
transformed parameter, reset term, spike threshold distance) gets the range of its expression
(intervals.py), narrowed to neuron.assume's bounds where the spec gives them.

The float32 overflow check (domain.overflows) cannot take "unbounded" literally: x² of any float32
x beyond 1.8e19 overflows. There an unbounded root stands for |x| ≤ UNBOUNDED_SCALE: far above the
values neuron states and currents take (mV, nA; the shipped models stay below 10³), and a state
beyond it has diverged whatever the step computes from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import sympy as sp

from ..contract import PREV_SPIKE
from ..errors import SpecError
from ..spec import Neuron
from .intervals import UNIT, Range, interval

UNBOUNDED_SCALE = 1e6


@dataclass(frozen=True)
class Value:
    """One expression of the step and the ranges of everything it may read."""

    name: str                          # the definition's name, 'next_<state>' for an update
    expr: sp.Expr
    where: str
    env: dict[sp.Symbol, Range]        # ranges of the roots and of every earlier value


def _root_range(lo: float | None, hi: float | None, scale: float) -> Range:
    lo = -math.inf if lo is None else lo
    hi = math.inf if hi is None else hi
    return Range(max(lo, -scale), min(hi, scale))


def roots(neuron: Neuron, scale: float = math.inf) -> dict[sp.Symbol, Range]:
    """Ranges of what the step reads; unbounded ends become ±scale."""
    syms = neuron.known_symbols()
    env = {}
    for s in neuron.states_:
        a = neuron.assumptions.get(s.name)
        env[syms[s.name]] = _root_range(a and a.lo, a and a.hi, scale)
    a = neuron.assumptions.get(neuron.input.name)
    env[neuron.input] = _root_range(a and a.lo, a and a.hi, scale)
    for p in neuron.params_:
        env[syms[p.name]] = _root_range(*p.clamp, scale)
    if neuron.reads_prev_spike:
        env[syms[PREV_SPIKE]] = UNIT
    return env


def values(neuron: Neuron, scale: float = math.inf) -> Iterator[Value]:
    """Every definition, then every update, each with the ranges it may read (see the module docstring).
    An assumption that contradicts the range a let always has is a SpecError at the assumption."""
    syms = neuron.known_symbols()
    env = roots(neuron, scale)
    for d in neuron.definitions:
        yield Value(d.name, d.expr, d.where, dict(env))
        computed = UNIT if d.kind == "spike" else interval(d.expr, env)
        assumed = neuron.assumptions.get(d.name)
        if assumed is not None:
            wanted = Range(assumed.lo, assumed.hi)
            narrowed = computed.intersect(wanted)
            if narrowed is None:
                raise SpecError(f"the assumed bounds {wanted} cannot hold: the value always lies in {computed}",
                                assumed.where, d.name)
            computed = narrowed
        env[syms[d.name]] = computed
    for name, (expr, where) in neuron.updates.items():
        yield Value(f"next_{name}", expr, where, dict(env))


def let_expressions(neuron: Neuron) -> dict[sp.Symbol, sp.Expr]:
    """Each named value of the step written in the roots alone (lets substituted, in order)."""
    syms = neuron.known_symbols()
    out: dict[sp.Symbol, sp.Expr] = {}
    for d in neuron.definitions:
        out[syms[d.name]] = d.expr.xreplace(out) if d.kind != "spike" else syms[d.name]
    return out


def sources(neuron: Neuron, expr: sp.Expr) -> list[sp.Symbol]:
    """The roots (and assumed lets) that expr reads, directly or through lets, in name order."""
    syms = neuron.known_symbols()
    by_symbol = {syms[d.name]: d for d in neuron.definitions}
    found, stack = set(), list(expr.free_symbols)
    while stack:
        s = stack.pop()
        d = by_symbol.get(s)
        if d is None or d.name in neuron.assumptions or d.kind == "spike":
            found.add(s)
        else:
            stack.extend(d.expr.free_symbols - found)
    return sorted(found, key=lambda s: s.name)

