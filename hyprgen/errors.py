"""Errors hyprgen shows to users: one line that names the file, the symbol and the problem."""


class HyprgenError(Exception):
    """Base class: the CLI prints these without a traceback."""


class SpecError(HyprgenError):
    """A neuron spec is invalid. `where` is 'file:line' of the offending declaration."""

    def __init__(self, problem: str, where: str | None = None, symbol: str | None = None):
        self.problem, self.where, self.symbol = problem, where, symbol
        parts = [where] if where else []
        if symbol:
            parts.append(f"symbol '{symbol}'")
        parts.append(problem)
        super().__init__(": ".join(parts))


class BuildError(HyprgenError):
    """Code generation failed (e.g. a function with no printer for the target)."""


class GeneratedFileError(HyprgenError):
    """A generated module (generated/ or the cache) is not what the compiler wrote; it is never imported."""


class ShapeError(HyprgenError, ValueError):
    """A tensor given to the runtime has the wrong rank, size or dtype."""


class NonFiniteError(HyprgenError, FloatingPointError):
    """A learner met a NaN or inf (runtime/finite.py). `kind` is what held it: 'state', 'output',
    'loss', 'gradient' or 'parameter'; layer, neuron, component, step and sample say where, as far as
    they apply (None otherwise); value is the offending entry."""

    def __init__(self, message: str, *, kind: str, layer: int | None = None, neuron: int | None = None,
                 component: str | None = None, step: int | None = None, sample: int | None = None,
                 value: float | None = None):
        self.kind, self.layer, self.neuron, self.component = kind, layer, neuron, component
        self.step, self.sample, self.value = step, sample, value
        super().__init__(message)
