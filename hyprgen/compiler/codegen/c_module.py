"""The cpu target: a KernelIR → generated/<name>_cpu.c (templates/c/kernels.c.j2).

The kernels of a neuron, each in float and in double: the S-stage's neuron step (the recurrent
product stays a BLAS GEMM, in the launcher), the P-stage's reverse sweep with the Jacobians
recomputed in registers (the statements of the Triton kernel: codegen/unrolled.py), and the merge:
its ε-sized part (Φ ε and q^0 ε, unrolled over the d components), the fused merge (ε^λ in register
tiles of up to 4 neurons; the default for d > 0), and the bias and parameter terms. Launchers and references:
hyprgen/ops/s_stage.py, p_stage.py, merge.py; compiling and loading: hyprgen/ops/native.py.
Every statement is a declaration `const hg_real x = ...;` except the sweep's carried variables,
which are assigned (their blocks' arrays hold them between steps).
"""
from __future__ import annotations

import sympy as sp

from ... import __version__
from ...contract import CPU_ABI
from ..ir import KernelIR
from .c_printer import PRECISION_EPILOGUE, VECTOR_MATH, c_code, precision_prelude
from .render import jacobian_variables, live_definitions, parser, render, sweep_context


class Invariants:
    """Loop-invariant code motion for one stage: every maximal subexpression of a per-step expression
    that reads only θ (and θ-only names) and calls a function becomes a name _inv_<k>, computed once
    per chunk and lane (P-stage) or per call and neuron (S-stage), like the θ-only definitions."""

    def __init__(self, theta_names: set[str]):
        self.theta_names = theta_names
        self.table: dict[sp.Basic, str] = {}

    def lift(self, expr: sp.Basic) -> sp.Basic:
        if isinstance(expr, sp.Expr) and not expr.is_number and expr.atoms(sp.Function) \
                and {x.name for x in expr.free_symbols} <= self.theta_names:
            name = self.table.setdefault(expr, f"_inv_{len(self.table)}")
            return sp.Symbol(name, real=True)
        args = [self.lift(a) for a in expr.args]
        if all(a is b for a, b in zip(args, expr.args)):
            return expr
        try:
            return expr.func(*args, evaluate=False)
        except TypeError:   # ExprCondPair and the like take no evaluate
            return expr.func(*args)

    def values(self) -> list[tuple[str, sp.Basic]]:
        return [(name, expr) for expr, name in self.table.items()]


def render_c(ir: KernelIR, sympy_version: str) -> str:
    """The generated C kernels (S-stage step, P-stage, merge) of one neuron, as file text."""
    parse = parser(ir)
    jac = ir.jacobians
    theta_names = {x.name for x in ir.params} | {x.name for x in ir.definitions if x.theta_only}

    def definitions(live: set[str], theta_only: bool) -> list[tuple[str, sp.Basic, bool]]:
        """(name, expression, is a spike) of the live definitions that read only θ, or of the others."""
        return [(d.name, parse(d.expr), d.kind == "spike") for d in ir.definitions
                if d.name in live and d.theta_only == theta_only]

    psi_argument = None
    jacobian_terms = []   # (name, expression): ψ, the CSE terms, the structurally nonzero entries
    if ir.output.surrogate is not None:
        psi_argument = next(x for x in ir.definitions if x.kind == "spike").expr   # ψ(h): h
        jacobian_terms.append(("psi", parse(ir.output.surrogate.expr).subs(sp.Symbol("x", real=True),
                                                                            parse(psi_argument))))
    jacobian_terms += [(name, parse(text)) for name, text in jac.cse]
    jacobian_terms += [(name, parse(e)) for name, _, e in jacobian_variables(jac)]
    # Jacobian terms that read only θ (e.g. ∂ of a parameter transform: sqrt, division) join the
    # θ-only definitions, computed once per chunk and lane instead of at every step
    p_theta_names, theta_jacobian, step_jacobian = set(theta_names), [], []
    for name, expr in jacobian_terms:
        if not expr.is_number and {x.name for x in expr.free_symbols} <= p_theta_names:
            p_theta_names.add(name)
            theta_jacobian.append((name, expr, False))
        else:
            step_jacobian.append((name, expr, False))
    s_live = live_definitions(ir, parse, [*ir.next_state, ir.output.expr])
    p_live = live_definitions(ir, parse, [psi_argument, *(e for _, e in jac.cse),
                                          *(e for _, _, e in jacobian_variables(jac))])
    s_inv, p_inv = Invariants(theta_names), Invariants(p_theta_names)
    s_step = [(n, s_inv.lift(e), spike) for n, e, spike in definitions(s_live, False)]
    s_update = [c_code(s_inv.lift(parse(e))) for e in ir.next_state]
    s_output = c_code(s_inv.lift(parse(ir.output.expr)))
    p_step = [(n, p_inv.lift(e), spike) for n, e, spike in definitions(p_live, False) + step_jacobian]
    s_theta = definitions(s_live, True) + [(n, e, False) for n, e in s_inv.values()]
    p_theta = definitions(p_live, True) + theta_jacobian + [(n, e, False) for n, e in p_inv.values()]

    printed = {id(x): c_code(x[1]) for x in [*s_step, *p_step, *s_theta, *p_theta]}
    called = " ".join([*printed.values(), *s_update, s_output])
    vector_math = [fn for fn in VECTOR_MATH if f"HG_F({fn})" in called]

    def declared(items, exact: bool = False) -> list[str]:
        """`const hg_real name = value;` lines. exact: for θ-only values, the scalar libm (HG_EXACT:
        about 0.5 ulp, as torch) instead of libmvec's vector variants (up to 2.4 ulp for expf,
        measured): they enter the state recomputed at every step, where cancellation near a threshold
        amplifies them 50× and more (a float32 LIF's exp(-1/τ)); computed once per lane, they cost nothing."""
        out = []
        for item in items:
            name, _, spike = item
            value = printed[id(item)]
            if exact:
                for fn in vector_math:
                    value = value.replace(f"HG_F({fn})", f"HG_EXACT({fn})")
            if spike:
                value = f"((hg_real)(({value}) > HG_R(0.0)))"   # H(0) = 0, as the torch heaviside
            out.append(f"const hg_real {name} = {value};")
        return out

    sweep = sweep_context(ir, parse)
    carried_sweep = sweep["sweep_carried"]
    carried_names = {name for name, _ in carried_sweep}

    def statement(s) -> str:
        value = s.value.plain()
        return f"{s.target} = {value};" if s.target in carried_names else f"const hg_real {s.target} = {value};"

    return render(
        "c/kernels.c.j2", prelude=precision_prelude, epilogue=PRECISION_EPILOGUE,
        ir=ir, name=ir.name, hyprgen_version=__version__, sympy_version=sympy_version,
        input=ir.input, carried=ir.carried, params=[x.name for x in ir.params], d=sweep["d"], p=sweep["p"],
        vector_math=[(fn, 2 if fn == "pow" else 1) for fn in vector_math],   # (name, arguments)
        s_stage_theta=declared(s_theta, exact=True), s_theta_names=[name for name, *_ in s_theta],
        s_stage_step=declared(s_step), next_state=s_update, output=s_output,
        p_stage_theta=declared(p_theta, exact=True), p_theta_names=[name for name, *_ in p_theta],
        p_stage_step=declared(p_step),
        carried_sweep=[(name, repr(value)) for name, value in carried_sweep],
        effective_error=sweep["effective_error"].plain(), signal_gamma=sweep["signal_gamma"],
        fresh_trace=[e.plain() for e in sweep["fresh_trace"]],
        sweep_statements=[statement(s) for s in sweep["sweep_accumulate"] + sweep["sweep_recurse"]],
        q_final=sweep["q_final"],
        phi=[(k, l, value) for k, row in enumerate(sweep["phi_rows"]) for l, value in enumerate(row)],
        theta_in=[(k, j, value) for k, row in enumerate(sweep["theta_in_rows"]) for j, value in enumerate(row)],
        tile_vectors=fused_merge_tile_vectors(sweep["d"]),
        tiles=tile_variants(lambda registers: fused_merge_tile_neurons(sweep["d"], registers)),
        route_vectors=ROUTE_TILE_VECTORS, route_tiles=tile_variants(route_tile_neurons), cpu_abi=CPU_ABI,
    )


def fused_merge_tile_vectors(d: int) -> int:
    """Vectors per row of the fused merge's tile: d·v accumulators, 4–8, enough independent FMA chains
    to hide the FMA latency and few enough to stay in registers with the p^τ vectors beside them (d = 3,
    cue sizes, 1 thread, 2026-12-02: two vectors 2.3× faster than one at λ = 8, and 1.07–1.17× faster
    than three at λ = 8–64)."""
    return {1: 4, 2: 3}.get(d, 2)


def fused_merge_tile_neurons(d: int, registers: int) -> int:
    """Neurons per fused-merge tile: each holds d·v accumulators (v = fused_merge_tile_vectors), and the
    neurons of a tile share each vector of p^τ, so a load feeds neurons·d FMAs."""
    v = fused_merge_tile_vectors(d)
    return tile_neurons(d * v, v, registers)


ROUTE_TILE_VECTORS = 4   # the route merge's vectors of inputs per tile (one row of G per neuron)


def route_tile_neurons(registers: int) -> int:
    """Neurons per route-merge tile (one route, one sample): ROUTE_TILE_VECTORS accumulators each."""
    return tile_neurons(ROUTE_TILE_VECTORS, ROUTE_TILE_VECTORS, registers)


def tile_neurons(per_neuron: int, shared: int, registers: int) -> int:
    """A tile's neurons, a power of two up to 4: as many as keep per_neuron accumulators each, the
    tile's `shared` vectors of p^τ, a broadcast and one spare within the vector registers."""
    fit = max(1, (registers - 2 - shared) // per_neuron)
    return 1 << min(2, fit.bit_length() - 1)


def tile_variants(neurons) -> dict:
    """neurons(registers) for 16 and 32 vector registers, and the tile sizes to generate (1 for the rest)."""
    by_registers = {registers: neurons(registers) for registers in (16, 32)}
    return {"by_registers": by_registers, "groups": sorted({1, *by_registers.values()})}
