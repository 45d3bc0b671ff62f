"""Derivatives at kinks, one convention for every target: the derivative torch's autograd takes
through the generated forward, which prints Max/Min as torch.clamp against a number and as
torch.maximum/minimum between tensors, and Abs as torch.abs (docs/kernels.md, "Kinks"):

    d Max(u, c)/du = 1 where u >= c, else 0      (c a number: clamp passes the gradient at its bound)
    d Max(a, b)/da = 1 where a > b, 1/2 where a = b, else 0     (maximum splits a tie)
    Min alike with the comparisons reversed; d|u|/du = sign(u), 0 at u = 0.

SymPy's own rule, d Max(a, b)/da = Heaviside(a − b), is undefined at the tie, and the printers' H(0) = 0
made it 0 there, unlike autograd's 1: a model that resets onto the kink of Max(u, 0) then had HYPR and
BPTT disagree. Every target prints the derived Piecewise as its `where`, so the convention is the
same in torch, Triton and any later target by construction.
"""
from __future__ import annotations

import sympy as sp


def _kink_step(args: tuple, i: int, larger: bool) -> sp.Expr:
    """∂ Max(args)/∂ args[i] (larger) or ∂ Min(args)/∂ args[i], under the convention above."""
    a, others = args[i], args[:i] + args[i + 1:]
    rest = (sp.Max if larger else sp.Min)(*others)
    if all(o.is_number for o in others):   # clamp against a bound: the argument wins the tie
        return sp.Piecewise((1, a >= rest if larger else a <= rest), (0, True))
    return sp.Piecewise((1, a > rest if larger else a < rest), (sp.Rational(1, 2), sp.Eq(a, rest)), (0, True))


class _KinkMax(sp.Max):
    def fdiff(self, argindex=1):
        return _kink_step(self.args, argindex - 1, larger=True)


class _KinkMin(sp.Min):
    def fdiff(self, argindex=1):
        return _kink_step(self.args, argindex - 1, larger=False)


def diff(expr: sp.Expr, y: sp.Symbol) -> sp.Expr:
    """∂expr/∂y with the kink convention above for every Max and Min in expr."""
    kinked = expr.replace(sp.Max, _KinkMax).replace(sp.Min, _KinkMin)
    return sp.diff(kinked, y).replace(_KinkMax, sp.Max).replace(_KinkMin, sp.Min)
