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


class SpecWarning(UserWarning):
    """A spec builds, but a value it can reach breaks float32 (an overflow). `where` is 'file:line';
    str() is 'symbol ...: problem' (warnings show the location themselves), `line` the whole line."""

    def __init__(self, problem: str, where: str | None = None, symbol: str | None = None):
        self.problem, self.where, self.symbol = problem, where, symbol
        super().__init__(": ".join(([f"symbol '{symbol}'"] if symbol else []) + [problem]))

    @property
    def line(self) -> str:
        return f"{self.where}: {self}" if self.where else str(self)


def check_folder(path, flag: str = "--out") -> None:
    """A HyprgenError, naming the option, when `path` cannot be made a folder because it or a folder
    above it is an existing file (mkdir would say only '[Errno 17] File exists')."""
    from pathlib import Path

    path = Path(path)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == path else f"lies inside {part}, which is a file"
                raise HyprgenError(f"{flag} {path} {where}, not a folder: choose another {flag}")
            return
