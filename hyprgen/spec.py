"""The spec API: a neuron model declared symbolically in SymPy.

A spec file is a Python module that builds one `Neuron` and binds it to the name `neuron`:

    neuron = Neuron("lif")
    u = neuron.state("u")
    tau = neuron.param("tau_u", init=uniform(5, 25), clamp=(1, None))
    alpha = sp.exp(-1 / tau)
    u_new = neuron.let("u_new", alpha * u + (1 - alpha) * neuron.input
                       - neuron.reset(neuron.prev_spike))
    neuron.spike(u_new - 1, surrogate=slayer())
    neuron.update(u, u_new)

One step maps (r^{t-1}, I^t; θ) to (r^t, o^t) (docs/hypr.md §1). Symbols name previous values
(`u` is u^{t-1}); `let` names intermediate values of the step in order; `spike` defines the new spike
z^t = H(h) (the output), `output` a continuous output instead. `prev_spike` is z^{t-1}: reading it
makes z a carried state component. `reset(e)` marks a reset term whose gradient is stopped when
`detach_reset=True`. Declarations record their file and line so that errors point at them.

The build checks every expression of the step over the values it can reach (compiler/reach.py):
a state or the input is unbounded, a raw parameter lies in its clamp, a spike in [0, 1]. Where the
dynamics keep a value in a range that the analysis cannot see, say so, and the analysis uses it:

    q = neuron.state("q", bounds=(0, 10))            # q^t = 0.9 q^{t-1} + z^t stays in [0, 10]
    neuron.assume(neuron.input, bounds=(0, None))    # the input current, or a let: assume(g, (lo, hi))

Nothing enforces an assumption at run time: one that is wrong hides a real hazard.

Names of states, parameters, constants and lets are Python identifiers that are not keywords and that
the generated code does not use itself: not `z` (the previous spike), nothing starting with `_` or
`next_`, not `t<digits>` (common subexpressions) or `reset<digits>`, none of RESERVED_NAMES, and no
name of a SymPy function or constant that the step uses (`exp`, `E`, ...). Every problem is a
SpecError located at the declaration that causes it.
"""
from __future__ import annotations

import keyword
import math
import numbers
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sympy as sp
from sympy import S

from .contract import GENERATED_NAMES, PREV_SPIKE, Init
from .errors import SpecError
from .surrogates import Surrogate, x as SURROGATE_X

_HYPRGEN_DIR = Path(__file__).resolve().parent


def _caller_location() -> str:
    """'file:line' of the first stack frame outside the hyprgen package (the spec file).

    Frames of synthesized code ('<string>', e.g. a dataclass __init__) are skipped too.
    """
    frame = sys._getframe(1)
    fallback = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith("<"):
            fallback = fallback or f"{filename}:{frame.f_lineno}"
        else:
            path = Path(filename).resolve()
            if _HYPRGEN_DIR not in path.parents:
                return f"{display_path(path)}:{frame.f_lineno}"
        frame = frame.f_back
    return fallback or "<unknown>"


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------
# Initial distributions and transforms of trainable parameters


def _finite(value, what: str, where: str, symbol: str | None = None) -> float:
    """value as a finite float, or a located SpecError (SymPy numbers are accepted)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, sp.Number)):
        raise SpecError(f"{what} must be a real number, got {value!r}", where, symbol)
    try:
        v = float(value)
    except TypeError:  # a complex SymPy number
        raise SpecError(f"{what} must be a real number, got {value!r}", where, symbol) from None
    if not math.isfinite(v):
        raise SpecError(f"{what} must be finite, got {v}", where, symbol)
    return v


def uniform(low: float, high: float) -> Init:
    where = _caller_location()
    lo, hi = _finite(low, "uniform(low, high): low", where), _finite(high, "uniform(low, high): high", where)
    if not lo <= hi:
        raise SpecError(f"uniform({low}, {high}): low must not exceed high", where)
    return Init("uniform", (lo, hi))


def normal(mean: float, std: float) -> Init:
    where = _caller_location()
    m, s = _finite(mean, "normal(mean, std): mean", where), _finite(std, "normal(mean, std): std", where)
    if s < 0:
        raise SpecError(f"normal({mean}, {std}): std must be >= 0", where)
    return Init("normal", (m, s))


def constant(value: float) -> Init:
    return Init("constant", (_finite(value, "constant(value)", _caller_location()),))


@dataclass(frozen=True)
class Transform:
    """Maps the raw trained value to the value the dynamics use."""

    kind: str  # "identity" | "abs" | "exp" | "interp"
    args: tuple[float, ...] = ()

    def apply(self, raw: sp.Symbol) -> sp.Expr:
        if self.kind == "identity":
            return raw
        if self.kind == "abs":
            return sp.Abs(raw)
        if self.kind == "exp":
            return sp.exp(raw)
        lo, hi = (sp.Float(a) for a in self.args)
        return lo + (hi - lo) * raw

    def to_dict(self) -> dict:
        return {"kind": self.kind, "args": [float(a) for a in self.args]}


def interp(low: float, high: float) -> Transform:
    """value = low + (high − low)·raw; pair with clamp=(0, 1) and an init in [0, 1]."""
    where = _caller_location()
    return Transform("interp", (_finite(low, "interp(low, high): low", where),
                                _finite(high, "interp(low, high): high", where)))


_NAMED_TRANSFORMS = {"identity": Transform("identity"), None: Transform("identity"),
                     "abs": Transform("abs"), "exp": Transform("exp")}


# ----------------------------------------------------------------------------------------------
# Declarations


@dataclass
class Definition:
    """One named value computed inside a step, in order.

    kind: "param"  transformed parameter value (expr of the raw parameter)
          "let"    intermediate value
          "spike"  z = H(expr) (expr is the symbol h)
          "reset"  value of expr, gradient stopped when detach_reset
          "next"   new value of a state (name 'next_<state>')
    """

    name: str
    kind: str
    expr: sp.Expr
    where: str


@dataclass
class Param:
    name: str
    init: Init
    transform: Transform
    clamp: tuple[float | None, float | None]
    doc: str
    where: str


@dataclass
class State:
    name: str
    init: float
    doc: str
    where: str


@dataclass(frozen=True)
class Assumption:
    """Bounds the domain analysis may take for a state, the input or a let (neuron.assume)."""

    lo: float   # -inf: no bound
    hi: float   # inf: no bound
    where: str


# Names a spec symbol may not take: what the generated modules define or use (contract.GENERATED_NAMES)
# and the patterns of names hyprgen derives itself: CSE temporaries t0, t1, ... and reset terms
# reset0, reset1, ...
RESERVED_NAMES = GENERATED_NAMES
_CSE_TEMPORARY = re.compile(r"t\d+")
_RESET_TERM = re.compile(r"reset\d+")


def _reserved_because(name: str) -> str | None:
    """Why a user may not name a symbol `name` (None when it is free)."""
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name.startswith("_"):
        return "starts with '_' (such names are reserved for hyprgen)"
    if name == PREV_SPIKE:
        return "is reserved for the previous spike (read it as neuron.prev_spike)"
    if name.startswith("next_"):
        return "starts with 'next_' (reserved for the new values of states)"
    if _CSE_TEMPORARY.fullmatch(name):
        return "looks like a common-subexpression temporary (t<digits>), which the generated code uses"
    if _RESET_TERM.fullmatch(name):
        return "is reserved for the terms of neuron.reset(...)"
    if name in RESERVED_NAMES:
        return "is a name that the generated code uses (see hyprgen.spec.RESERVED_NAMES)"
    return None


@dataclass
class Neuron:
    """A neuron model under construction. See the module docstring."""

    name: str
    doc: str = ""
    detach_reset: bool = False
    states_: list[State] = field(default_factory=list)
    params_: list[Param] = field(default_factory=list)
    consts_: dict[str, float] = field(default_factory=dict)
    definitions: list[Definition] = field(default_factory=list)
    assumptions: dict[str, Assumption] = field(default_factory=dict)   # name → bounds (state(bounds=), assume)
    updates: dict[str, tuple[sp.Expr, str]] = field(default_factory=dict)
    output_kind: str | None = None  # "spike" | "continuous"
    output_expr: sp.Expr | None = None
    output_where: str = ""
    surrogate: Surrogate | None = None
    where: str = ""

    def __post_init__(self):
        self.where = self.where or _caller_location()
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SpecError(f"neuron name {self.name!r} is not a Python identifier (it names the generated "
                            "module)", self.where)
        if keyword.iskeyword(self.name) or self.name.startswith("_"):
            raise SpecError(f"neuron name {self.name!r} cannot name a Python module (a keyword or a leading "
                            "'_')", self.where)
        if not isinstance(self.doc, str):
            raise SpecError(f"doc must be a string, got {self.doc!r}", self.where, self.name)
        if not isinstance(self.detach_reset, bool):
            raise SpecError(f"detach_reset must be True or False, got {self.detach_reset!r}", self.where, self.name)
        self.input = sp.Symbol("I", real=True)
        self._symbols: dict[str, sp.Symbol] = {"I": self.input}
        self._declared: dict[str, tuple[str, str]] = {"I": ("the input current neuron.input", self.where)}
        self._prev_spike_used = False

    def __repr__(self) -> str:  # short: it appears in error messages
        return f"Neuron({self.name!r})"

    # -- symbols -------------------------------------------------------------------------------

    def _check_name(self, name, where: str, role: str, internal: bool = False) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(f"the {role} name {name!r} is not a Python identifier", where, str(name))
        why = _reserved_because(name)
        if why and not internal:
            raise SpecError(f"the {role} name '{name}' {why}; choose another name", where, name)
        if why and keyword.iskeyword(name):  # an internal name built from a user's (e.g. '<param>_value')
            raise SpecError(f"the {role} name '{name}' {why}", where, name)
        if name in self._declared:
            taken_by, taken_where = self._declared[name]
            raise SpecError(f"the name '{name}' (for the {role}) is already taken by {taken_by} declared at "
                            f"{taken_where}", where, name)

    def _new_symbol(self, name: str, where: str, role: str = "symbol", internal: bool = False) -> sp.Symbol:
        """A new real symbol; user names are checked against every reserved and declared name."""
        self._check_name(name, where, role, internal)
        sym = sp.Symbol(name, real=True)
        self._symbols[name] = sym
        self._declared[name] = (f"the {role} '{name}'", where)
        return sym

    def state(self, name: str, init: float = 0.0, doc: str = "",
              bounds: tuple[float | None, float | None] | None = None) -> sp.Symbol:
        """Declare a state variable; the returned symbol is its previous value.

        bounds=(lo, hi) (None: no bound on that side) tells the domain analysis that the dynamics keep
        the state there; nothing enforces it (see `assume`)."""
        where = _caller_location()
        init_f = _finite(init, "the initial value of a state", where, str(name))
        sym = self._new_symbol(name, where, "state")
        self.states_.append(State(name, init_f, _text(doc, where, name), where))
        if bounds is not None:
            lo, hi = _bounds(bounds, where, name)
            if not lo <= init_f <= hi:
                raise SpecError(f"the initial value {init_f} lies outside the state's bounds {tuple(bounds)}", where, name)
            self.assumptions[name] = Assumption(lo, hi, where)
        return sym

    def states(self, names: str) -> list[sp.Symbol]:
        return [self.state(n) for n in names.split()]

    @property
    def prev_spike(self) -> sp.Symbol:
        """z^{t-1}: reading it makes the spike a carried state component."""
        if not self._prev_spike_used:
            self._prev_spike_used = True
            self._symbols[PREV_SPIKE] = sp.Symbol(PREV_SPIKE, real=True)
            self._declared[PREV_SPIKE] = ("the previous spike neuron.prev_spike", _caller_location())
        return self._symbols[PREV_SPIKE]

    def param(self, name: str, init: Init, transform: str | Transform | None = None,
              clamp: tuple[float | None, float | None] = (None, None), doc: str = "") -> sp.Symbol:
        """Declare a trainable per-neuron parameter. Returns the symbol of its transformed value."""
        where = _caller_location()
        self._check_name(name, where, "parameter")
        if not isinstance(init, Init):
            raise SpecError(f"init must be uniform(..), normal(..) or constant(..), got {init!r}", where, name)
        if not isinstance(transform, Transform):
            if not isinstance(transform, (str, type(None))) or transform not in _NAMED_TRANSFORMS:
                raise SpecError(f"unknown transform {transform!r} (identity, abs, exp, interp(lo, hi))", where, name)
            transform = _NAMED_TRANSFORMS[transform]
        if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
            raise SpecError(f"clamp must be a pair (low, high) with None for no bound, got {clamp!r}", where, name)
        lo, hi = clamp
        lo_f = -math.inf if lo is None else _finite(lo, "the clamp's low bound", where, name)
        hi_f = math.inf if hi is None else _finite(hi, "the clamp's high bound", where, name)
        if lo_f > hi_f:
            raise SpecError(f"clamp {tuple(clamp)} is empty", where, name)
        s_lo, s_hi = init.support()
        if init.dist != "normal" and (s_lo < lo_f or s_hi > hi_f):
            raise SpecError(f"init {init.dist}{init.args} lies outside the clamp constraint {tuple(clamp)}", where, name)
        if init.dist == "normal" and not lo_f <= init.args[0] <= hi_f:
            raise SpecError(f"init mean {init.args[0]} lies outside the clamp constraint {tuple(clamp)}", where, name)
        raw = self._new_symbol(name, where, "parameter")
        self.params_.append(Param(name, init, transform, (None if lo is None else lo_f, None if hi is None else hi_f),
                                  _text(doc, where, name), where))
        if transform.kind == "identity":
            return raw
        value = self._new_symbol(f"{name}_value", where, f"transformed value of parameter '{name}'", internal=True)
        self.definitions.append(Definition(value.name, "param", transform.apply(raw), where))
        return value

    def assume(self, symbol: sp.Symbol, bounds: tuple[float | None, float | None]) -> None:
        """Tell the domain analysis that a value stays within bounds=(lo, hi) (None: no bound on that
        side): the input current (neuron.input), a state, or a let whose range interval arithmetic
        overestimates (x − x² counts x twice). The analysis uses it instead of "unbounded" (for a let:
        together with the range it computes); nothing checks it at run time, so a wrong assumption hides
        a real hazard. A parameter's range is its clamp, which the optimizer step enforces."""
        where = _caller_location()
        shown = str(symbol)
        name = getattr(symbol, "name", None)
        if name is not None and name in {p.name for p in self.params_} and self._symbols.get(name) == symbol:
            raise SpecError("is a parameter: its range is its clamp, which is enforced after every optimizer step; "
                            "give neuron.param(..., clamp=(lo, hi)) instead of an assumption", where, name)
        lets = {d.name for d in self.definitions if d.kind == "let"}
        states = {s.name for s in self.states_}
        if not isinstance(symbol, sp.Symbol) or self._symbols.get(name) != symbol or name not in lets | states | {"I"}:
            raise SpecError(f"'{shown}' is not a state, a let or the input current of this neuron: neuron.assume "
                            "takes one of their symbols", where, shown)
        lo, hi = _bounds(bounds, where, name)
        if name in self.assumptions:
            raise SpecError(f"bounds of '{name}' are already given at {self.assumptions[name].where}", where, name)
        self.assumptions[name] = Assumption(lo, hi, where)

    def const(self, name: str, value: float) -> sp.Float:
        """A named constant; it is inlined as a number."""
        where = _caller_location()
        self._check_name(name, where, "constant")
        v = _finite(value, "a constant's value", where, name)
        self.consts_[name] = v
        self._declared[name] = (f"the constant '{name}'", where)
        return sp.Float(v)

    # -- the step ------------------------------------------------------------------------------

    def let(self, name: str, expr) -> sp.Symbol:
        """Name an intermediate value of the step (may read earlier names)."""
        where = _caller_location()
        self._check_name(name, where, "let")
        value = self._expr(expr, where, name, f"the value of '{name}'")
        sym = self._new_symbol(name, where, "let")
        self.definitions.append(Definition(name, "let", value, where))
        return sym

    def reset(self, expr) -> sp.Symbol:
        """A reset term: its value is `expr`; its gradient is stopped when detach_reset=True."""
        where = _caller_location()
        k = sum(d.kind == "reset" for d in self.definitions)
        value = self._expr(expr, where, f"reset{k}", "the reset term")
        sym = self._new_symbol(f"reset{k}", where, "reset term", internal=True)
        self.definitions.append(Definition(sym.name, "reset", value, where))
        return sym

    def spike(self, h, surrogate: Surrogate | sp.Expr | Callable = None, name: str = "z_new") -> sp.Symbol:
        """Output spike z^t = H(h) (H(0)=0); ψ(h) replaces H' in every derivative."""
        where = _caller_location()
        if self.output_kind is not None:
            raise SpecError(f"the output is already declared at {self.output_where}", where, name)
        self._check_name(name, where, "spike")
        if isinstance(h, sp.core.relational.Relational):
            raise SpecError(f"neuron.spike takes the distance above threshold h (it spikes when h > 0), e.g. "
                            f"u - theta, not the comparison {h}", where, "h")
        h_value = self._expr(h, where, "h", "the spike's threshold distance h")
        self.surrogate = _as_surrogate(surrogate, where)
        h_sym = self._new_symbol("h", where, "spike threshold distance", internal=True)
        self.definitions.append(Definition("h", "let", h_value, where))
        z = self._new_symbol(name, where, "spike")
        self.definitions.append(Definition(name, "spike", h_sym, where))
        self.output_kind, self.output_expr, self.output_where = "spike", z, where
        return z

    def output(self, expr) -> None:
        """A continuous output o^t (e.g. the leaky-integrator readout's y^t)."""
        where = _caller_location()
        if self.output_kind is not None:
            raise SpecError(f"the output is already declared at {self.output_where}", where, "output")
        value = self._expr(expr, where, "output", "the continuous output")
        self.output_kind, self.output_expr, self.output_where = "continuous", value, where

    def update(self, state: sp.Symbol, expr) -> None:
        """Set the new value r^t of a state declared with `state`."""
        where = _caller_location()
        name = getattr(state, "name", str(state))
        if name not in {s.name for s in self.states_}:
            declared = ", ".join(s.name for s in self.states_) or "none"
            raise SpecError(f"neuron.update of something that is not a declared state (states: {declared})",
                            where, name)
        if name in self.updates:
            raise SpecError(f"state updated twice (first at {self.updates[name][1]})", where, name)
        self.updates[name] = (self._expr(expr, where, name, f"the new value of state '{name}'"), where)

    def _expr(self, expr, where: str, symbol: str, what: str) -> sp.Expr:
        try:
            e = sp.sympify(expr, strict=True)
        except (sp.SympifyError, TypeError, ValueError):
            raise SpecError(f"{what} must be a SymPy expression built from the neuron's symbols, got "
                            f"{expr!r}", where, symbol) from None
        if isinstance(e, sp.logic.boolalg.Boolean) and not isinstance(e, sp.Expr):  # a condition
            raise SpecError(f"{what} must be a real-valued expression, got the condition {e} (use sp.Piecewise "
                            "to choose between values)", where, symbol)
        if not isinstance(e, sp.Expr) or getattr(e, "is_Matrix", False) or isinstance(e, sp.MatrixBase):
            raise SpecError(f"{what} must be a scalar real-valued SymPy expression, got {expr!r}", where, symbol)
        return e

    # -- queries used by derive ----------------------------------------------------------------

    @property
    def reads_prev_spike(self) -> bool:
        return self._prev_spike_used

    def known_symbols(self) -> dict[str, sp.Symbol]:
        return dict(self._symbols)

    def declared_at(self, name: str) -> str:
        """'file:line' of the declaration of a symbol (the neuron's own location if unknown)."""
        return self._declared.get(name, (None, self.where))[1]


def _bounds(bounds, where: str, symbol: str) -> tuple[float, float]:
    """(lo, hi) from bounds=(lo, hi) with None for no bound (as ±inf), or a located SpecError."""
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise SpecError(f"bounds must be a pair (lo, hi) with None for no bound, got {bounds!r}", where, symbol)
    lo = -math.inf if bounds[0] is None else _finite(bounds[0], "the low bound", where, symbol)
    hi = math.inf if bounds[1] is None else _finite(bounds[1], "the high bound", where, symbol)
    if lo > hi:
        raise SpecError(f"bounds {tuple(bounds)} are empty", where, symbol)
    return lo, hi


def _text(doc, where: str, symbol: str) -> str:
    if not isinstance(doc, str):
        raise SpecError(f"doc must be a string, got {doc!r}", where, symbol)
    return doc


def _as_surrogate(surrogate, where: str) -> Surrogate:
    """A Surrogate from a library Surrogate, a SymPy expression in x, or a callable of x."""
    from . import surrogates as library

    if surrogate is None:
        raise SpecError("a spike needs a surrogate (e.g. surrogates.double_gaussian())", where, "surrogate")
    if isinstance(surrogate, str):
        hint = f"hyprgen.surrogates.{surrogate}()" if surrogate in library.LIBRARY else "a hyprgen.surrogates constructor"
        raise SpecError(f"surrogate {surrogate!r} is a string: pass {hint} or a SymPy expression in x",
                        where, "surrogate")
    if any(surrogate is f for f in library.LIBRARY.values()):
        raise SpecError(f"surrogate {surrogate.__name__} is a constructor: call it, surrogate={surrogate.__name__}()",
                        where, "surrogate")
    if isinstance(surrogate, Surrogate):
        _check_surrogate_expr(surrogate.expr, where, require_x=False)
        return surrogate
    if callable(surrogate) and not isinstance(surrogate, sp.Basic):
        try:
            surrogate = surrogate(SURROGATE_X)
        except Exception as exc:  # user code: report it, located
            raise SpecError(f"calling the surrogate with x failed: {type(exc).__name__}: {exc}", where,
                            "surrogate") from None
        if isinstance(surrogate, Surrogate):
            _check_surrogate_expr(surrogate.expr, where, require_x=False)
            return surrogate
    try:
        expr = sp.sympify(surrogate, strict=True)
    except (sp.SympifyError, TypeError, ValueError):
        raise SpecError(f"surrogate {surrogate!r} is not a SymPy expression in x (hyprgen.surrogates.x)", where,
                        "surrogate") from None
    _check_surrogate_expr(expr, where, require_x=True)
    return Surrogate("custom", expr)


def _check_surrogate_expr(expr, where: str, require_x: bool) -> None:
    """ψ must be a real-valued expression of x alone (x = hyprgen.surrogates.x, a real symbol)."""
    if not isinstance(expr, sp.Expr):
        raise SpecError(f"surrogate {expr} is not a real-valued expression in x", where, "surrogate")
    others = sorted(s.name for s in expr.free_symbols if s != SURROGATE_X)
    if others == ["x"]:
        raise SpecError("surrogate reads a symbol 'x' that is not real: use x from hyprgen.surrogates "
                        "(or sp.Symbol('x', real=True))", where, "surrogate")
    if others:
        raise SpecError(f"surrogate must be a function of x alone (hyprgen.surrogates.x); it reads "
                        f"{', '.join(others)}", where, "surrogate")
    if require_x and SURROGATE_X not in expr.free_symbols:
        raise SpecError(f"surrogate {expr} is not a function of x (hyprgen.surrogates.x); for a constant ψ use "
                        "surrogates.straight_through()", where, "surrogate")
    if expr.has(S.ImaginaryUnit, S.ComplexInfinity, S.NaN, S.Infinity, S.NegativeInfinity):
        raise SpecError(f"surrogate {expr} is not real-valued and finite", where, "surrogate")
