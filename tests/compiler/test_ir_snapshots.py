"""Snapshots of the KernelIR of LIF and BRF (hyprgen.compiler.derive.derive → KernelIR.to_json), compared by structure.

Like Brian2's integrator tests, a change in what the compiler derives shows up here as a readable diff:
the carried state, the sparsity of every Jacobian, the step's definitions, the common subexpressions and
each Jacobian entry are compared one by one, then the whole IR. Hand-derived expectations (carried state
and sparsity) are checked as well, so a snapshot that was regenerated from a wrong compiler still fails.

The snapshots are tests/compiler/snapshots/<neuron>.json: the IR without `spec_hash` and `hyprgen_version`
(which change with any edit of the spec's comments or a version bump). After a deliberate change of the
compiler or of neurons/lif.py or neurons/brf.py, regenerate them and review the diff:

    HYPRGEN_UPDATE_SNAPSHOTS=1 python -m pytest tests/compiler/test_ir_snapshots.py
    git diff tests/compiler/snapshots/
"""
import json
import os
from pathlib import Path

import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from hyprgen.compiler.derive import derive
from hyprgen.compiler.ir import Jacobians, KernelIR
from hyprgen.paths import neurons_dir
from hyprgen.compiler.spec_file import load_spec

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("HYPRGEN_UPDATE_SNAPSHOTS") == "1"
VOLATILE = ("spec_hash", "hyprgen_version")

# Derived by hand from the model equations (shared/neurons.md), not from the compiler.
#   LIF: u' = α u + (1−α) I − θ z,  z' = H(u' − θ): both read u and z (reset not detached), I, τ.
#   BRF: u' = u + δ(b u − ω v + I), v' = v + δ(ω u + b v), q' = γ q + z', z' = H(u' − θ − q),
#        b = p(ω) − b' − q: z^{t-1} is never read (no reset), so z is not carried; v' does not read I.
EXPECTED = {
    "lif": {"carried": ["u", "z"], "params": ["tau_u"], "output": "spike",
            "sparsity": {"A": ["XX", "XX"], "c": ["XX"], "D": ["X", "X"], "a": ["XX"], "gamma": ["X"],
                         "delta": ["X"]}},
    "brf": {"carried": ["u", "v", "q"], "params": ["omega", "b_offset"], "output": "spike",
            "sparsity": {"A": ["XXX", "XXX", "XXX"], "c": ["X.X"], "D": ["XX", "XX", "XX"], "a": ["XXX"],
                         "gamma": ["X"], "delta": ["XX"]}},
}


def current_ir(name: str) -> KernelIR:
    path = neurons_dir() / f"{name}.py"
    neuron, source = load_spec(path)
    return derive(neuron, path.name, source)


def snapshot_view(ir: KernelIR) -> dict:
    """The IR as stored in a snapshot: JSON round-tripped, without the volatile keys."""
    return {k: v for k, v in json.loads(ir.to_json()).items() if k not in VOLATILE}


def sparsity(ir: dict) -> dict:
    return Jacobians.from_dict(ir["jacobians"]).sparsity()


@pytest.fixture(params=sorted(EXPECTED))
def pair(request):
    """(name, snapshot IR, current IR); writes the snapshot first when HYPRGEN_UPDATE_SNAPSHOTS=1."""
    name = request.param
    current = snapshot_view(current_ir(name))
    path = SNAPSHOTS / f"{name}.json"
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(current, indent=1) + "\n")
    if not path.exists():
        pytest.fail(f"missing snapshot {path}: run HYPRGEN_UPDATE_SNAPSHOTS=1 pytest {__file__}")
    return name, json.loads(path.read_text()), current


def test_carried_state_and_parameters(pair):
    name, snap, cur = pair
    assert cur["carried"] == snap["carried"] == EXPECTED[name]["carried"]
    assert [s["name"] for s in cur["states"] if s["carried"]] == cur["carried"]
    assert [p["name"] for p in cur["params"]] == [p["name"] for p in snap["params"]] == EXPECTED[name]["params"]
    assert cur["params"] == snap["params"]
    assert cur["states"] == snap["states"]
    assert cur["output"]["kind"] == snap["output"]["kind"] == EXPECTED[name]["output"]


def test_sparsity(pair):
    name, snap, cur = pair
    assert sparsity(cur) == sparsity(snap) == EXPECTED[name]["sparsity"]


def test_step_definitions(pair):
    _, snap, cur = pair
    assert [(d["name"], d["kind"]) for d in cur["definitions"]] == [(d["name"], d["kind"]) for d in snap["definitions"]]
    for c, s in zip(cur["definitions"], snap["definitions"]):
        assert c["expr"] == s["expr"], f"definition {c['name']}"
    for name, c, s in zip(cur["carried"], cur["next_state"], snap["next_state"]):
        assert c == s, f"next value of {name}"
    assert cur["output"] == snap["output"]


def test_common_subexpressions(pair):
    _, snap, cur = pair
    assert [t for t, _ in cur["jacobians"]["cse"]] == [t for t, _ in snap["jacobians"]["cse"]]
    for (t, c), (_, s) in zip(cur["jacobians"]["cse"], snap["jacobians"]["cse"]):
        assert c == s, f"common subexpression {t}"


def test_jacobian_entries(pair):
    _, snap, cur = pair
    carried, params = cur["carried"], [p["name"] for p in cur["params"]]
    j, k = cur["jacobians"], snap["jacobians"]
    for i, ri in enumerate(carried):
        for m, rm in enumerate(carried):
            assert j["A"][i][m] == k["A"][i][m], f"A[{ri},{rm}]"
        assert j["c"][i] == k["c"][i], f"c[{ri}]"
        for m, pm in enumerate(params):
            assert j["D"][i][m] == k["D"][i][m], f"D[{ri},{pm}]"
    for m, rm in enumerate(carried):
        assert j["a"][m] == k["a"][m], f"a[{rm}]"
    assert j["gamma"] == k["gamma"], "gamma"
    for m, pm in enumerate(params):
        assert j["delta"][m] == k["delta"][m], f"delta[{pm}]"


def test_whole_ir(pair):
    _, snap, cur = pair
    assert cur == snap


def _midpoint(init: dict) -> float:
    args = init["args"]
    return (args[0] + args[1]) / 2 if init["dist"] == "uniform" else args[0]


def test_snapshot_expressions_are_the_exact_derivatives(pair):
    """Independent of the derivation: every snapshot Jacobian entry, with its CSE temporaries and named
    values substituted, equals SymPy's derivative of the snapshot's own forward step, where the spike
    z = H(h) differentiates to ψ(h)·h' — evaluated at one point (states, I, parameter init midpoints)."""
    _, snap, _ = pair
    assert snap["detach_reset"] is False  # reset terms then differentiate like any other definition
    states, params, current = [s["name"] for s in snap["states"]], [p["name"] for p in snap["params"]], snap["input"]
    temps_names = [t for t, _ in snap["jacobians"]["cse"]]
    names = [d["name"] for d in snap["definitions"]] + states + params + [current, "psi", "x"] + temps_names
    local = {n: sp.Symbol(n, real=True) for n in names}
    parse = lambda text: parse_expr(text, local_dict=dict(local))  # noqa: E731
    step_fn = sp.Function("H")  # the spike, differentiated by hand below

    values, h = {}, None  # named value -> expression in (r^{t-1}, I, θ)
    for d in snap["definitions"]:
        e = parse(d["expr"]).xreplace(values)
        if d["kind"] == "spike":
            h, e = e, step_fn(e)
        values[local[d["name"]]] = e
    psi = parse(snap["output"]["surrogate"]["expr"]).xreplace({local["x"]: h})

    def derivative(expr, v):
        # d/dv H(h) = Subs(Derivative(H(ξ), ξ), ξ, h)·h'  →  ψ(h)·h'
        return sp.diff(expr, v).replace(lambda f: isinstance(f, (sp.Subs, sp.Derivative)), lambda f: psi)

    temps = {}
    for t, e in snap["jacobians"]["cse"]:
        temps[local[t]] = parse(e).xreplace(temps)

    def entry(text):
        if text is None:
            return sp.Integer(0)
        return parse(text).xreplace(temps).xreplace(values).xreplace({local["psi"]: psi})

    point = {local[n]: v for n, v in zip([n for n in states if n != "z"], [0.31, -0.27, 0.12])}
    point.update({local[current]: 0.43, **{local[p["name"]]: _midpoint(p["init"]) for p in snap["params"]}})
    if "z" in states:
        point[local["z"]] = 1.0

    def number(expr) -> float:
        e = expr.subs(point)
        e = e.replace(lambda f: isinstance(f, sp.Function) and f.func == step_fn,
                      lambda f: sp.Integer(1 if f.args[0] > 0 else 0))
        assert not e.free_symbols and not e.atoms(sp.Function), (expr, e)
        return float(sp.N(e, 30))

    def same(text, expected, label):
        got, want = number(entry(text)), number(expected)
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), f"{label}: {got} != {want}"

    nxt = [parse(e).xreplace(values) for e in snap["next_state"]]
    out = parse(snap["output"]["expr"]).xreplace(values)
    r = [local[n] for n in snap["carried"]]
    theta = [local[n] for n in params]
    j = snap["jacobians"]
    for i, f in enumerate(nxt):
        for m, v in enumerate(r):
            same(j["A"][i][m], derivative(f, v), f"A[{r[i]},{v}]")
        same(j["c"][i], derivative(f, local[current]), f"c[{r[i]}]")
        for m, v in enumerate(theta):
            same(j["D"][i][m], derivative(f, v), f"D[{r[i]},{v}]")
    for m, v in enumerate(r):
        same(j["a"][m], derivative(out, v), f"a[{v}]")
    same(j["gamma"], derivative(out, local[current]), "gamma")
    for m, v in enumerate(theta):
        same(j["delta"][m], derivative(out, v), f"delta[{v}]")
