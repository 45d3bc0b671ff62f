"""What the generators of every target share: the jinja2 environment, reading IR expressions back,
Python literals, the generated module's META, and the unrolled P-stage's context.

The IR is plain data: expression strings are parsed back with every name a real symbol and
evaluate=False, so the printed code follows the IR exactly. Templates hold structure, the printers
hold maths. One generator per target: torch_module.py, triton_module.py.
"""
from __future__ import annotations

import pprint
from dataclasses import asdict
from functools import lru_cache

import jinja2
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from ...contract import SURROGATE_SYMBOL
from ...paths import templates_dir
from ..ir import Jacobians, KernelIR
from .unrolled import Pattern, SweepAlgebra

_PARSE_GLOBALS: dict = {}
exec("from sympy import *", _PARSE_GLOBALS)  # noqa: S102 - the SymPy namespace for parse_expr


def docstring_text(text: str) -> str:
    """Text safe inside a triple-quoted docstring: backslashes and quotes escaped (a user's doc may hold
    LaTeX such as \\tau or quotes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    env.filters["docstring"] = docstring_text
    env.filters["trim_end"] = str.rstrip   # a macro's block re-indented in place: its last newline is the call's
    return env


def render(template: str, **context) -> str:
    return _environment().get_template(template).render(**context)


def parser(ir: KernelIR):
    """parse(text) → the SymPy expression of an IR string (None stays None); every name a real symbol."""
    names = [d.name for d in ir.definitions] + [s.name for s in ir.states]
    names += [p.name for p in ir.params] + [ir.input, SURROGATE_SYMBOL]
    names += [t for t, _ in ir.jacobians.cse] + ["x"]
    local = {n: sp.Symbol(n, real=True) for n in names}

    def parse(text: str | None) -> sp.Expr | None:
        if text is None:
            return None
        return parse_expr(text, local_dict=dict(local), global_dict=_PARSE_GLOBALS, evaluate=False)

    return parse


def py_tuple(items: list[str | None]) -> str:
    """A Python tuple literal; None marks a structural zero."""
    body = ", ".join("None" if i is None else i for i in items)
    return f"({body},)" if len(items) == 1 else f"({body})"


def py_matrix(rows: list[list[str | None]]) -> str:
    """A tuple of row tuples, one row per line."""
    if not rows:
        return "()"
    inner = "".join(f"\n            {py_tuple(r)}," for r in rows)
    return f"({inner}\n        )"


def jacobian_variables(jac: Jacobians) -> list[tuple[str, str, str]]:
    """The structurally nonzero Jacobian entries as (variable the unrolled sweep reads, key into the
    generated jacobians dict, expression): _A_k_j ← ["A"][k][j], ..., _gamma ← ["gamma"]."""
    return [(f"_{block}" + "".join(f"_{i}" for i in index), f'["{block}"]' + "".join(f"[{i}]" for i in index), e)
            for block, index, e in jac.nonzero()]


def sweep_context(ir: KernelIR, parse) -> dict:
    """What the templates' unrolled P-stage needs (codegen/unrolled.py): the structurally nonzero
    Jacobian entries as (variable, key into the jacobians dict, whether a bare number), the sweep's
    statements and its final values. Sums stay unrolled.Sum: each generator writes them its way."""
    d, p = len(ir.carried), len(ir.params)
    sweep = SweepAlgebra(Pattern.of(ir.jacobians))
    return {
        "d": d, "p": p,
        "sweep_entries": [(name, key, parse(e).is_number) for name, key, e in jacobian_variables(ir.jacobians)],
        "sweep_init": sweep.init(),
        "sweep_carried": sweep.carried(),
        "effective_error": sweep.effective_error(),
        "signal_gamma": sweep.signal_gamma(),
        "fresh_trace": [sweep.fresh_trace(k) for k in range(d)],
        "sweep_accumulate": sweep.accumulate(),
        "sweep_recurse": sweep.recurse(),
        "q_final": [f"_q_{k}" for k in range(d)],
        "phi_rows": [[sweep.phi_entry(k, l) for l in range(d)] for k in range(d)],
        "theta_in_rows": [[sweep.theta_in_entry(k, j) for j in range(p)] for k in range(d)],
    }


def live_definitions(ir: KernelIR, parse, roots: list[str | None]) -> set[str]:
    """Names of the definitions that the expressions `roots` need, directly or through other
    definitions: a kernel computes only those (the rest would be dead statements)."""
    needed = {s.name for text in roots if text is not None for s in parse(text).free_symbols}
    live = set()
    for d in reversed(ir.definitions):
        if d.name in needed:
            live.add(d.name)
            needed |= {s.name for s in parse(d.expr).free_symbols}
    return live


def meta(ir: KernelIR, sympy_version: str) -> str:
    """The generated module's META (what the runtime reads of a neuron), as Python source."""
    value = {
        "name": ir.name,
        "doc": ir.doc,
        "ir_version": ir.ir_version,
        "hyprgen_version": ir.hyprgen_version,
        "sympy_version": sympy_version,
        "spec_file": ir.spec_file,
        "spec_hash": ir.spec_hash,
        "carried": ir.carried,
        "state_init": {s.name: s.init for s in ir.states if s.carried},
        "params": [asdict(p) for p in ir.params],
        "output": ir.output.kind,
        "surrogate": None if ir.output.surrogate is None else ir.output.surrogate.name,
        "detach_reset": ir.detach_reset,
    }
    return pprint.pformat(value, width=100, sort_dicts=False)
