"""The KernelIR: what derivation hands to code generation, as plain data (JSON-able, snapshot-tested).

Expressions are strings in SymPy's syntax with floats printed exactly (`expr_str`), so they parse back
to the same expression (codegen/render.py).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Optional

import sympy as sp
from sympy.printing.str import StrPrinter

from ..contract import JACOBIAN_BLOCKS, MATRIX_BLOCKS, VECTOR_BLOCKS


class _ExactStrPrinter(StrPrinter):
    """str() with floats printed exactly (repr of the double), so IR strings round-trip."""

    def _print_Float(self, expr):
        return repr(float(expr))


def expr_str(expr) -> str:
    return _ExactStrPrinter({"order": "none"}).doprint(sp.sympify(expr))


@dataclass(frozen=True)
class StateIR:
    name: str
    init: float
    doc: str
    carried: bool   # read by the step (r^{t-1}): a component of the carried state r


@dataclass(frozen=True)
class ParamIR:
    """A trainable per-neuron parameter as META records it (the runtime reads these dicts)."""

    name: str
    init: dict        # {"dist": "uniform" | "normal" | "constant", "args": [...]}
    transform: dict   # {"kind": "identity" | "abs" | "exp" | "interp", "args": [...]}
    clamp: list       # [low | None, high | None]
    doc: str


@dataclass(frozen=True)
class DefinitionIR:
    """One named value of the step, in order (kinds: hyprgen.spec.Definition)."""

    name: str
    kind: str
    expr: str
    theta_only: bool   # reads only neuron parameters (and constants): the same at every step of a chunk


@dataclass(frozen=True)
class SurrogateIR:
    name: str
    expr: str   # ψ(x), in the surrogate variable x


@dataclass(frozen=True)
class OutputIR:
    kind: str                       # "spike" | "continuous"
    expr: str
    surrogate: SurrogateIR | None   # None for a continuous output


Entry = Optional[str]   # an expression, or None for a structural zero


@dataclass(frozen=True)
class Jacobians:
    """The local Jacobians of one step (docs/hypr.md §2), entry by entry; block names: contract.JACOBIAN_BLOCKS.
    Entries are written in the CSE temporaries t0, t1, ... (`cse`, in order) and the step's named values."""

    cse: list[tuple[str, str]]
    A: list[list[Entry]]   # [d][d]  ∂r^t/∂r^{t-1}
    c: list[Entry]         # [d]     ∂r^t/∂I^t
    D: list[list[Entry]]   # [d][p]  ∂r^t/∂θ
    a: list[Entry]         # [d]     ∂o^t/∂r^{t-1}
    gamma: Entry           #         ∂o^t/∂I^t
    delta: list[Entry]     # [p]     ∂o^t/∂θ

    def block(self, name: str):
        if name not in JACOBIAN_BLOCKS:
            raise KeyError(f"no Jacobian block {name!r} (blocks: {', '.join(JACOBIAN_BLOCKS)})")
        return getattr(self, name)

    def nonzero(self) -> list[tuple[str, tuple[int, ...], str]]:
        """(block, index, expression) of every structurally nonzero entry: matrices, vectors, then γ."""
        out = [(key, (k, j), e) for key in MATRIX_BLOCKS for k, row in enumerate(self.block(key))
               for j, e in enumerate(row) if e is not None]
        out += [(key, (k,), e) for key in VECTOR_BLOCKS for k, e in enumerate(self.block(key)) if e is not None]
        if self.gamma is not None:
            out.append(("gamma", (), self.gamma))
        return out

    def sparsity(self) -> dict[str, list[str]]:
        """Readable sparsity patterns per block: 'X' nonzero, '.' structural zero."""
        pat = lambda row: "".join("." if e is None else "X" for e in row)  # noqa: E731
        return {key: [pat(r) for r in self.block(key)] if key in MATRIX_BLOCKS else
                [pat([self.gamma] if key == "gamma" else self.block(key))] for key in JACOBIAN_BLOCKS}

    @staticmethod
    def from_dict(d: dict) -> "Jacobians":
        return Jacobians(cse=[tuple(x) for x in d["cse"]], **{k: d[k] for k in JACOBIAN_BLOCKS})


@dataclass(frozen=True)
class KernelIR:
    """Everything code generation needs of one neuron (docs/hypr.md §1–2), derived by compiler/derive.py."""

    ir_version: int
    hyprgen_version: str
    name: str
    doc: str
    spec_file: str            # the spec's file name, shown in generated headers
    spec_hash: str            # contract.spec_hash of the spec's text
    detach_reset: bool
    states: list[StateIR]     # declared states, then z when the step reads the previous spike
    carried: list[str]        # the carried state r, in order (d = len)
    input: str                # the input current's symbol
    params: list[ParamIR]     # θ, in order (p = len)
    consts: dict[str, float]
    output: OutputIR
    definitions: list[DefinitionIR]
    next_state: list[str]     # r^t per carried component
    jacobians: Jacobians

    def to_dict(self) -> dict:
        """The JSON form (the snapshots in tests/compiler/snapshots/)."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False)
