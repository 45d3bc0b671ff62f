"""The d×d algebra of HYPR's P-stage (docs/hypr.md §4), unrolled into scalar statements.

Per (sample, neuron) the reverse sweep carries the row vector q (d), the matrix Φ (d×d) and the
accumulators of the neuron-parameter terms. Every component is its own variable (a register in the
Triton P-stage kernel, a [B, n] tensor in the torch module's p_stage), so the algebra is written
out entry by entry and every product with a structural zero of the Jacobians is left out at build
time. The statements are valid Python for both targets (no in-place operators); the torch module
chains each sum of products into addcmul_ calls on a fresh tensor (`fused_for_torch`).
Φ = A^λ ⋯ A^{τ+1} can only be nonzero where a path of nonzero A entries leads from row to column
(the reflexive-transitive closure of A's pattern), so entries outside the closure are never
computed or carried.

Names: everything here starts with '_' (spec symbols may not), so it cannot shadow a user's symbol.
Jacobian entries are read from variables _A_k_l, _c_k, _D_k_j, _a_k, _gamma, _delta_j, which the
template assigns only for structurally nonzero entries (`nonzero` says which).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Jacobians


@dataclass(frozen=True)
class Pattern:
    """Structural nonzeros of the local Jacobians (True = may be nonzero)."""

    A: tuple[tuple[bool, ...], ...]      # d × d
    c: tuple[bool, ...]                  # d
    D: tuple[tuple[bool, ...], ...]      # d × p
    a: tuple[bool, ...]                  # d
    gamma: bool
    delta: tuple[bool, ...]              # p

    @property
    def d(self) -> int:
        return len(self.c)

    @property
    def p(self) -> int:
        return len(self.delta)

    @staticmethod
    def of(jac: Jacobians) -> "Pattern":
        """From the KernelIR's jacobians (expression strings, None for structural zeros)."""
        nz = lambda e: e is not None  # noqa: E731
        return Pattern(A=tuple(tuple(map(nz, row)) for row in jac.A), c=tuple(map(nz, jac.c)),
                       D=tuple(tuple(map(nz, row)) for row in jac.D), a=tuple(map(nz, jac.a)),
                       gamma=nz(jac.gamma), delta=tuple(map(nz, jac.delta)))

    def phi(self) -> tuple[tuple[bool, ...], ...]:
        """Pattern of every product Φ = A A ⋯ A (and the identity): reachability along A's nonzeros."""
        d = self.d
        reach = [[k == l or self.A[k][l] for l in range(d)] for k in range(d)]
        for m in range(d):  # Warshall
            for k in range(d):
                if reach[k][m]:
                    for l in range(d):
                        reach[k][l] = reach[k][l] or reach[m][l]
        return tuple(tuple(row) for row in reach)

    def theta_in(self) -> tuple[tuple[bool, ...], ...]:
        """Pattern of Σ_τ Φ D^τ (d × p)."""
        phi = self.phi()
        return tuple(tuple(any(phi[k][l] and self.D[l][j] for l in range(self.d)) for j in range(self.p))
                     for k in range(self.d))


@dataclass(frozen=True)
class Sum:
    """base + Σ x·y: a right-hand side of the sweep, kept as its terms so each target writes it its own
    way. base: a name or None; products: (x, y) factor names; an empty sum is 0 (`_zero`)."""

    base: str | None
    products: tuple[tuple[str, str], ...]

    def plain(self) -> str:
        """`base + x * y + …` (the Triton kernel: its compiler fuses the multiply-adds)."""
        terms = ([self.base] if self.base is not None else []) + [f"{x} * {y}" for x, y in self.products]
        return " + ".join(terms) if terms else "_zero"

    def fused(self, numbers: frozenset[str]) -> str:
        """The same sum as chained torch calls: `a * b + c * d` → `(a * b).addcmul_(c, d)`,
        `acc + a * b + c * d` → `torch.addcmul(acc, a, b).addcmul_(c, d)` (a factor that is a bare
        number in `numbers`: `.add_(x, alpha=number)`). Each term costs one op instead of two and the
        statement one fresh tensor, never writing into an operand: the torch P-stage is bound by the
        count of small ops (docs/results/performance.md)."""
        if not self.products:
            return self.plain()                                     # a bare name or _zero: nothing to fuse

        def call(x: str, y: str, first: bool) -> str:
            if y in numbers:
                return f"torch.add({self.base}, {x}, alpha={y})" if first else f".add_({x}, alpha={y})"
            return f"torch.addcmul({self.base}, {x}, {y})" if first else f".addcmul_({x}, {y})"

        (x0, y0), rest = self.products[0], self.products[1:]
        head = call(x0, y0, first=True) if self.base is not None else f"({x0} * {y0})"
        return head + "".join(call(x, y, first=False) for x, y in rest)


@dataclass(frozen=True)
class Statement:
    target: str
    value: Sum


def _sum(products, base: str | None = None) -> Sum:
    return Sum(base, tuple(products))


def _phi(k: int, l: int) -> str:
    return f"_Phi_{k}_{l}"


class SweepAlgebra:
    """Statements of the reverse sweep for one Jacobian pattern (lists of lines, no indentation)."""

    def __init__(self, pattern: Pattern):
        self.pt = pattern
        self.phi_nz = pattern.phi()
        self.theta_in_nz = pattern.theta_in()

    # carried variables ------------------------------------------------------------------------

    def carried(self) -> list[tuple[str, float]]:
        """The variables the sweep carries from step to step, with their values at τ = λ: q^λ = 0,
        Φ^{λ:λ+1} = identity (its structurally nonzero entries), the accumulators 0."""
        pt = self.pt
        return ([(f"_q_{k}", 0.0) for k in range(pt.d)]
                + [(_phi(k, l), 1.0 if k == l else 0.0) for k in range(pt.d) for l in range(pt.d) if self.phi_nz[k][l]]
                + [(f"_theta_grad_{j}", 0.0) for j in range(pt.p)]
                + [(f"_Theta_in_{k}_{j}", 0.0) for k in range(pt.d) for j in range(pt.p) if self.theta_in_nz[k][j]])

    def init(self) -> list[str]:
        """carried() as Python lines on [B, n] tensors (the torch and Triton targets)."""
        return [f"{name} = _zero{' + 1.0' if value == 1.0 else ''}" for name, value in self.carried()]

    # one step τ, in order -------------------------------------------------------------------------

    def effective_error(self) -> Sum:
        """g^τ = q^τ c^τ + λ^τ γ^τ (q still holds q^τ)."""
        terms = [(f"_q_{k}", f"_c_{k}") for k in range(self.pt.d) if self.pt.c[k]]
        if self.pt.gamma:
            terms.append(("_sig", "_gamma"))
        return _sum(terms)

    def signal_gamma(self) -> str:
        """λ^τ γ^τ, the factor of the signal handed to the layer below."""
        return "_sig * _gamma" if self.pt.gamma else "_zero"

    def fresh_trace(self, k: int) -> Sum:
        """E^τ_k = (Φ^{λ:τ+1} c^τ)_k."""
        return _sum((_phi(k, l), f"_c_{l}") for l in range(self.pt.d) if self.phi_nz[k][l] and self.pt.c[l])

    def accumulate(self) -> list[Statement]:
        """Σ_τ (q^τ D^τ + λ^τ δ^τ) and Σ_τ Φ^{λ:τ+1} D^τ."""
        pt, lines = self.pt, []
        for j in range(pt.p):
            terms = [(f"_q_{k}", f"_D_{k}_{j}") for k in range(pt.d) if pt.D[k][j]]
            if pt.delta[j]:
                terms.append(("_sig", f"_delta_{j}"))
            if terms:   # not +=: on a torch tensor that would add into _zero, which it starts as
                lines.append(Statement(f"_theta_grad_{j}", _sum(terms, base=f"_theta_grad_{j}")))
        for k in range(pt.d):
            for j in range(pt.p):
                terms = [(_phi(k, l), f"_D_{l}_{j}") for l in range(pt.d) if self.phi_nz[k][l] and pt.D[l][j]]
                if terms:
                    lines.append(Statement(f"_Theta_in_{k}_{j}", _sum(terms, base=f"_Theta_in_{k}_{j}")))
        return lines

    def recurse(self) -> list[Statement]:
        """q^{τ-1} = q^τ A^τ + λ^τ a^τ and Φ^{λ:τ} = Φ^{λ:τ+1} A^τ (new values first, then rebind)."""
        pt, d, lines = self.pt, self.pt.d, []
        for l in range(d):
            terms = [(f"_q_{k}", f"_A_{k}_{l}") for k in range(d) if pt.A[k][l]]
            if pt.a[l]:
                terms.append(("_sig", f"_a_{l}"))
            lines.append(Statement(f"_q_next_{l}", _sum(terms)))
        for k in range(d):
            for l in range(d):
                if self.phi_nz[k][l]:
                    terms = [(_phi(k, m), f"_A_{m}_{l}") for m in range(d) if self.phi_nz[k][m] and pt.A[m][l]]
                    lines.append(Statement(f"_Phi_next_{k}_{l}", _sum(terms)))
        lines += [Statement(f"_q_{l}", _sum((), base=f"_q_next_{l}")) for l in range(d)]
        lines += [Statement(_phi(k, l), _sum((), base=f"_Phi_next_{k}_{l}"))
                  for k in range(d) for l in range(d) if self.phi_nz[k][l]]
        return lines

    # final values ----------------------------------------------------------------------------------

    def phi_entry(self, k: int, l: int) -> str:
        return _phi(k, l) if self.phi_nz[k][l] else "_zero"

    def theta_in_entry(self, k: int, j: int) -> str:
        return f"_Theta_in_{k}_{j}" if self.theta_in_nz[k][j] else "_zero"
