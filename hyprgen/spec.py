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

One step maps (r^{t-1}, I^t; θ) to (r^t, o^t) (shared/HYPR.md §1). Symbols name previous values
(`u` is u^{t-1}); `let` names intermediate values of the step in order; `spike` defines the new spike
z^t = H(h) (the output), `output` a continuous output instead. `prev_spike` is z^{t-1}: reading it
makes z a carried state component. `reset(e)` marks a reset term whose gradient is stopped when
`detach_reset=True`. Declarations record their file and line so that errors point at them.
"""
from __future__ import annotations

import importlib.util
import inspect
import math
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sympy as sp

from .errors import SpecError
from .surrogates import Surrogate, x as SURROGATE_X

PREV_SPIKE = "z"  # name of the carried previous-spike component
_HYPRGEN_DIR = Path(__file__).resolve().parent


def _caller_location() -> str:
    """'file:line' of the first stack frame outside the hyprgen package (the spec file)."""
    for frame in inspect.stack()[2:]:
        path = Path(frame.filename).resolve()
        if _HYPRGEN_DIR not in path.parents:
            return f"{_display_path(path)}:{frame.lineno}"
    return "<unknown>"


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------
# Initial distributions and transforms of trainable parameters


@dataclass(frozen=True)
class Init:
    """Initial distribution of a raw (trained) parameter."""

    dist: str  # "uniform" | "normal" | "constant"
    args: tuple[float, ...]

    def support(self) -> tuple[float, float]:
        if self.dist == "uniform":
            return self.args
        if self.dist == "constant":
            return (self.args[0], self.args[0])
        return (-math.inf, math.inf)

    def to_dict(self) -> dict:
        return {"dist": self.dist, "args": [float(a) for a in self.args]}


def uniform(low: float, high: float) -> Init:
    if not low <= high:
        raise SpecError(f"uniform({low}, {high}): low must not exceed high", _caller_location())
    return Init("uniform", (float(low), float(high)))


def normal(mean: float, std: float) -> Init:
    if std < 0:
        raise SpecError(f"normal({mean}, {std}): std must be >= 0", _caller_location())
    return Init("normal", (float(mean), float(std)))


def constant(value: float) -> Init:
    return Init("constant", (float(value),))


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
    return Transform("interp", (float(low), float(high)))


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
    updates: dict[str, tuple[sp.Expr, str]] = field(default_factory=dict)
    output_kind: str | None = None  # "spike" | "continuous"
    output_expr: sp.Expr | None = None
    output_where: str = ""
    surrogate: Surrogate | None = None
    where: str = ""

    def __post_init__(self):
        self.where = self.where or _caller_location()
        if not self.name.isidentifier():
            raise SpecError(f"neuron name '{self.name}' is not a Python identifier", self.where)
        self.input = sp.Symbol("I", real=True)
        self._symbols: dict[str, sp.Symbol] = {"I": self.input}
        self._prev_spike_used = False

    # -- symbols -------------------------------------------------------------------------------

    def _new_symbol(self, name: str, where: str) -> sp.Symbol:
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError("name must be a Python identifier", where, str(name))
        if name in self._symbols or name in self.consts_ or name.startswith("next_"):
            raise SpecError("name is already taken (or reserved)", where, name)
        sym = sp.Symbol(name, real=True)
        self._symbols[name] = sym
        return sym

    def state(self, name: str, init: float = 0.0, doc: str = "") -> sp.Symbol:
        """Declare a state variable; the returned symbol is its previous value."""
        where = _caller_location()
        if name == PREV_SPIKE:
            raise SpecError(f"'{PREV_SPIKE}' is reserved for the previous spike (neuron.prev_spike)", where, name)
        sym = self._new_symbol(name, where)
        self.states_.append(State(name, float(init), doc, where))
        return sym

    def states(self, names: str) -> list[sp.Symbol]:
        return [self.state(n) for n in names.split()]

    @property
    def prev_spike(self) -> sp.Symbol:
        """z^{t-1}: reading it makes the spike a carried state component."""
        self._prev_spike_used = True
        return self._symbols.setdefault(PREV_SPIKE, sp.Symbol(PREV_SPIKE, real=True))

    def param(self, name: str, init: Init, transform: str | Transform | None = None,
              clamp: tuple[float | None, float | None] = (None, None), doc: str = "") -> sp.Symbol:
        """Declare a trainable per-neuron parameter. Returns the symbol of its transformed value."""
        where = _caller_location()
        if not isinstance(init, Init):
            raise SpecError("init must be uniform(..), normal(..) or constant(..)", where, name)
        if not isinstance(transform, Transform):
            if transform not in _NAMED_TRANSFORMS:
                raise SpecError(f"unknown transform {transform!r} (identity, abs, exp, interp(lo, hi))", where, name)
            transform = _NAMED_TRANSFORMS[transform]
        lo, hi = clamp
        lo_f = -math.inf if lo is None else float(lo)
        hi_f = math.inf if hi is None else float(hi)
        if lo_f > hi_f:
            raise SpecError(f"clamp {clamp} is empty", where, name)
        s_lo, s_hi = init.support()
        if init.dist != "normal" and (s_lo < lo_f or s_hi > hi_f):
            raise SpecError(f"init {init.dist}{init.args} lies outside the clamp constraint {clamp}", where, name)
        if init.dist == "normal" and not lo_f <= init.args[0] <= hi_f:
            raise SpecError(f"init mean {init.args[0]} lies outside the clamp constraint {clamp}", where, name)
        raw = self._new_symbol(name, where)
        self.params_.append(Param(name, init, transform, (lo, hi), doc, where))
        if transform.kind == "identity":
            return raw
        value = self._new_symbol(f"{name}_value", where)
        self.definitions.append(Definition(value.name, "param", transform.apply(raw), where))
        return value

    def const(self, name: str, value: float) -> sp.Float:
        """A named constant; it is inlined as a number."""
        where = _caller_location()
        if name in self._symbols or name in self.consts_:
            raise SpecError("name is already taken", where, name)
        try:
            self.consts_[name] = float(value)
        except (TypeError, ValueError):
            raise SpecError(f"constant value {value!r} is not a real number", where, name) from None
        return sp.Float(value)

    # -- the step ------------------------------------------------------------------------------

    def let(self, name: str, expr) -> sp.Symbol:
        """Name an intermediate value of the step (may read earlier names)."""
        where = _caller_location()
        sym = self._new_symbol(name, where)
        self.definitions.append(Definition(name, "let", self._expr(expr, where, name), where))
        return sym

    def reset(self, expr) -> sp.Symbol:
        """A reset term: its value is `expr`; its gradient is stopped when detach_reset=True."""
        where = _caller_location()
        k = sum(d.kind == "reset" for d in self.definitions)
        sym = self._new_symbol(f"reset{k}", where)
        self.definitions.append(Definition(sym.name, "reset", self._expr(expr, where, sym.name), where))
        return sym

    def spike(self, h, surrogate: Surrogate | sp.Expr | Callable = None, name: str = "z_new") -> sp.Symbol:
        """Output spike z^t = H(h) (H(0)=0); ψ(h) replaces H' in every derivative."""
        where = _caller_location()
        if self.output_kind is not None:
            raise SpecError(f"the output is already declared at {self.output_where}", where, name)
        self.surrogate = _as_surrogate(surrogate, where)
        h_sym = self._new_symbol("h", where)
        self.definitions.append(Definition("h", "let", self._expr(h, where, "h"), where))
        z = self._new_symbol(name, where)
        self.definitions.append(Definition(name, "spike", h_sym, where))
        self.output_kind, self.output_expr, self.output_where = "spike", z, where
        return z

    def output(self, expr) -> None:
        """A continuous output o^t (e.g. the leaky-integrator readout's y^t)."""
        where = _caller_location()
        if self.output_kind is not None:
            raise SpecError(f"the output is already declared at {self.output_where}", where, "output")
        self.output_kind, self.output_expr, self.output_where = "continuous", self._expr(expr, where, "output"), where

    def update(self, state: sp.Symbol, expr) -> None:
        """Set the new value r^t of a state declared with `state`."""
        where = _caller_location()
        name = getattr(state, "name", str(state))
        if name not in {s.name for s in self.states_}:
            raise SpecError("update of something that is not a declared state", where, name)
        if name in self.updates:
            raise SpecError(f"state updated twice (first at {self.updates[name][1]})", where, name)
        self.updates[name] = (self._expr(expr, where, f"next_{name}"), where)

    def _expr(self, expr, where: str, what: str) -> sp.Expr:
        try:
            e = sp.sympify(expr, strict=True)
        except (sp.SympifyError, TypeError):
            raise SpecError(f"{expr!r} is not a SymPy expression", where, what) from None
        if not isinstance(e, sp.Expr):
            raise SpecError(f"{expr!r} is not a real-valued expression", where, what)
        return e

    # -- queries used by derive ----------------------------------------------------------------

    @property
    def reads_prev_spike(self) -> bool:
        return self._prev_spike_used

    def known_symbols(self) -> dict[str, sp.Symbol]:
        return dict(self._symbols)


def _as_surrogate(surrogate, where: str) -> Surrogate:
    if surrogate is None:
        raise SpecError("a spike needs a surrogate (e.g. surrogates.double_gaussian())", where, "surrogate")
    if isinstance(surrogate, Surrogate):
        return surrogate
    if callable(surrogate) and not isinstance(surrogate, sp.Basic):
        try:
            surrogate = surrogate(SURROGATE_X)
        except Exception as exc:  # user code: report it, located
            raise SpecError(f"calling the surrogate with x failed: {exc}", where, "surrogate") from None
    try:
        expr = sp.sympify(surrogate, strict=True)
    except (sp.SympifyError, TypeError):
        raise SpecError(f"surrogate {surrogate!r} is not a SymPy expression in x", where, "surrogate") from None
    others = sorted(s.name for s in expr.free_symbols if s != SURROGATE_X)
    if others:
        raise SpecError(f"surrogate must be a function of x only (hyprgen.surrogates.x); it reads {', '.join(others)}",
                        where, "surrogate")
    if expr.has(sp.I):
        raise SpecError("surrogate is not real-valued", where, "surrogate")
    return Surrogate("custom", expr)


# ----------------------------------------------------------------------------------------------
# Loading spec files


def load_spec(path: str | Path) -> tuple[Neuron, str]:
    """Execute a spec file; return its Neuron and its source text. Errors are SpecErrors."""
    path = Path(path).resolve()
    shown = _display_path(path)
    if not path.is_file():
        raise SpecError("spec file not found", shown)
    source = path.read_text()
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise SpecError(f"syntax error: {exc.msg}", f"{shown}:{exc.lineno}") from None
    module_name = f"_hyprgen_spec_{path.stem}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader=None))
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except SpecError:
        raise
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path]
        line = f":{frames[-1].lineno}" if frames else ""
        raise SpecError(f"{type(exc).__name__}: {exc}", f"{shown}{line}") from None
    finally:
        sys.modules.pop(module_name, None)
    neuron = module.__dict__.get("neuron")
    if not isinstance(neuron, Neuron):
        raise SpecError("a spec file must bind a hyprgen.spec.Neuron to the name 'neuron'", shown)
    return neuron, source
