"""Render a KernelIR into a Python module with jinja2 templates (templates/<target>/).

The IR is plain data: expression strings are parsed back with every name a real symbol and
evaluate=False, so the printed code follows the IR exactly. Templates hold structure, the printer
holds maths.
"""
from __future__ import annotations

import keyword
import pprint
from functools import lru_cache

import jinja2
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from ... import __version__
from ...errors import BuildError
from ...paths import templates_dir
from .torch_printer import torch_code
from .triton_printer import TRITON_PRELUDE, triton_code
from .unrolled import Pattern, SweepAlgebra, fused_for_torch

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
    return env


def _parser(ir: dict):
    names = [d["name"] for d in ir["definitions"]] + [s["name"] for s in ir["states"]]
    names += [p["name"] for p in ir["params"]] + [ir["input"], "psi"]
    names += [t for t, _ in ir["jacobians"]["cse"]] + ["x"]
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


def render_torch(ir: dict, sympy_version: str) -> str:
    """The generated torch backend module for one neuron, as text."""
    parse = _parser(ir)
    code = lambda text: None if text is None else torch_code(parse(text))  # noqa: E731
    jac = ir["jacobians"]
    names = [d["name"] for d in ir["definitions"]]
    for n in names + ir["carried"] + [p["name"] for p in ir["params"]]:
        if keyword.iskeyword(n):
            raise BuildError(f"{ir['spec_file']}: symbol '{n}' is a Python keyword")
    definitions = [(d["name"], d["kind"], code(d["expr"])) for d in ir["definitions"]]
    surrogate = ir["output"]["surrogate"]
    context = {
        "ir": ir,
        "hyprgen_version": __version__,
        "sympy_version": sympy_version,
        "meta": pprint.pformat(_meta(ir, sympy_version), width=100, sort_dicts=False),
        "carried": ir["carried"],
        "params": [p["name"] for p in ir["params"]],
        "forward_plain": _forward_lines(ir, definitions, autograd=False),
        "forward_autograd": _forward_lines(ir, definitions, autograd=True),
        "next_state": py_tuple([code(e) for e in ir["next_state"]]),
        "output": code(ir["output"]["expr"]),
        "surrogate": None if surrogate is None else code(surrogate["expr"]),
        "cse": [(t, code(e)) for t, e in jac["cse"]],
        **_fused_torch_sweep(_sweep_context(ir, parse)),
        "jacobians": [
            ("A", py_matrix([[code(e) for e in row] for row in jac["A"]])),
            ("c", py_tuple([code(e) for e in jac["c"]])),
            ("D", py_matrix([[code(e) for e in row] for row in jac["D"]])),
            ("a", py_tuple([code(e) for e in jac["a"]])),
            ("gamma", str(code(jac["gamma"]))),
            ("delta", py_tuple([code(e) for e in jac["delta"]])),
        ],
    }
    return _environment().get_template("torch/module.py.j2").render(**context)


def _jacobian_entries(jac: dict) -> list[tuple[str, str, str]]:
    """The structurally nonzero Jacobian entries as (variable the unrolled sweep reads, key into the
    generated jacobians dict, expression)."""
    entries = []
    for key in ("A", "D"):
        entries += [(f"_{key}_{k}_{j}", f'["{key}"][{k}][{j}]', e) for k, row in enumerate(jac[key])
                    for j, e in enumerate(row) if e is not None]
    for key in ("c", "a", "delta"):
        entries += [(f"_{key}_{k}", f'["{key}"][{k}]', e) for k, e in enumerate(jac[key]) if e is not None]
    if jac["gamma"] is not None:
        entries.append(("_gamma", '["gamma"]', jac["gamma"]))
    return entries


def _sweep_context(ir: dict, parse) -> dict:
    """What the templates' unrolled P-stage needs (codegen/unrolled.py): the structurally nonzero
    Jacobian entries as (variable, key into the jacobians dict, whether a bare number), the sweep's
    statements and its final values."""
    jac, d, p = ir["jacobians"], len(ir["carried"]), len(ir["params"])
    sweep = SweepAlgebra(Pattern.of(jac))
    return {
        "d": d, "p": p,
        "sweep_entries": [(name, key, parse(e).is_number) for name, key, e in _jacobian_entries(jac)],
        "sweep_init": sweep.init(),
        "effective_error": sweep.effective_error(),
        "signal_gamma": sweep.signal_gamma(),
        "fresh_trace": [sweep.fresh_trace(k) for k in range(d)],
        "sweep_accumulate": sweep.accumulate(),
        "sweep_recurse": sweep.recurse(),
        "q_final": [f"_q_{k}" for k in range(d)],
        "phi_rows": [[sweep.phi_entry(k, l) for l in range(d)] for k in range(d)],
        "theta_in_rows": [[sweep.theta_in_entry(k, j) for j in range(p)] for k in range(d)],
    }


def _fused_torch_sweep(sweep: dict) -> dict:
    """The torch module's loop body with every sum of products as chained addcmul_ (fused_for_torch);
    the Triton kernel keeps the plain expressions (its compiler fuses them)."""
    numbers = frozenset(name for name, _, number in sweep["sweep_entries"] if number)

    def statement(line: str) -> str:
        target, rhs = line.split(" = ", 1)
        return f"{target} = {fused_for_torch(rhs, numbers)}"

    return sweep | {
        "effective_error": fused_for_torch(sweep["effective_error"], numbers),
        "fresh_trace": [fused_for_torch(e, numbers) for e in sweep["fresh_trace"]],
        "sweep_accumulate": [statement(line) for line in sweep["sweep_accumulate"]],
        "sweep_recurse": [statement(line) for line in sweep["sweep_recurse"]],
    }


def _unpack(names: list[str], source: str) -> list[str]:
    if not names:
        return []
    return [f"{', '.join(names)}{',' if len(names) == 1 else ''} = {source}"]


def _forward_lines(ir: dict, definitions: list[tuple[str, str, str]], autograd: bool) -> list[str]:
    """Statements of one step: unpack state and parameters, then every definition in order."""
    lines = _unpack(ir["carried"], "state") + _unpack([p["name"] for p in ir["params"]], "params")
    for name, kind, value in definitions:
        if kind == "spike":
            value = f"{'spike_with_surrogate' if autograd else 'heaviside'}({value})"
        elif kind == "reset" and autograd and ir["detach_reset"]:
            value = f"({value}).detach()"
        lines.append(f"{name} = {value}")
    return lines


def _meta(ir: dict, sympy_version: str) -> dict:
    return {
        "name": ir["name"],
        "doc": ir["doc"],
        "ir_version": ir["ir_version"],
        "hyprgen_version": ir["hyprgen_version"],
        "sympy_version": sympy_version,
        "spec_file": ir["spec_file"],
        "spec_hash": ir["spec_hash"],
        "carried": ir["carried"],
        "state_init": {s["name"]: s["init"] for s in ir["states"] if s["carried"]},
        "params": ir["params"],
        "output": ir["output"]["kind"],
        "surrogate": None if ir["output"]["surrogate"] is None else ir["output"]["surrogate"]["name"],
        "detach_reset": ir["detach_reset"],
    }


def render_triton(ir: dict, sympy_version: str) -> str:
    """The generated Triton kernels (S-stage, P-stage) of one neuron, as module text."""
    parse = _parser(ir)

    def code(text: str) -> str:
        return triton_code(parse(text))

    def tensor(text: str) -> str:
        """Code whose value is a block tensor: a bare number is broadcast onto _zero."""
        expr = parse(text)
        return f"_zero + {triton_code(expr)}" if expr.is_number else triton_code(expr)

    jac = ir["jacobians"]
    forward = []
    for definition in ir["definitions"]:
        value = tensor(definition["expr"])
        if definition["kind"] == "spike":
            value = f"({value} > 0.0).to(tl.float32)"  # H(0) = 0, as the torch backend's heaviside
        forward.append(f"{definition['name']} = {value}")
    jacobian_lines = []
    surrogate = ir["output"]["surrogate"]
    if surrogate is not None:
        spike = next(x for x in ir["definitions"] if x["kind"] == "spike")
        psi = parse(surrogate["expr"]).subs(sp.Symbol("x", real=True), parse(spike["expr"]))
        jacobian_lines.append(f"psi = {triton_code(psi)}")
    jacobian_lines += [f"{name} = {code(value)}" for name, value in jac["cse"]]
    jacobian_lines += [f"{name} = {code(e)}" for name, _, e in _jacobian_entries(jac)]
    sweep = _sweep_context(ir, parse)
    context = {
        "ir": ir, "hyprgen_version": __version__, "sympy_version": sympy_version, "prelude": TRITON_PRELUDE,
        "carried": ir["carried"], "params": [x["name"] for x in ir["params"]],
        "forward": forward,
        "next_state": list(zip(ir["carried"], [tensor(e) for e in ir["next_state"]])),
        "output": tensor(ir["output"]["expr"]),
        "jacobians": jacobian_lines,
        **sweep,
        "phi": [(k, l, value) for k, row in enumerate(sweep["phi_rows"]) for l, value in enumerate(row)],
        "theta_in": [(k, j, value) for k, row in enumerate(sweep["theta_in_rows"]) for j, value in enumerate(row)],
    }
    return _environment().get_template("triton/kernels.py.j2").render(**context)
