"""Loading a spec file: execute it, take its `neuron`, and turn every failure into a located SpecError.

A spec file is Python (hyprgen.spec's module docstring). Syntax errors, exceptions raised while it
runs and a missing `neuron` become one line naming the file and line; two SymPy errors that plain-
Python idioms cause (math.exp on a symbol, `if` on a condition) get a hint. While it runs, its folder
is first on sys.path (as for `python spec.py`), so it may import helper modules beside it; those are
read from disk on every load (the cache is keyed by what the spec computes: compiler/build.py).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ..errors import SpecError
from ..spec import Neuron, display_path

def load_spec(path: str | Path) -> tuple[Neuron, str]:
    """Execute a spec file; return its Neuron and its source text. Errors are SpecErrors."""
    path = Path(path).resolve()
    shown = display_path(path)
    if not path.is_file():
        raise SpecError("spec file not found", shown)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file is not UTF-8 text ({exc.reason} at byte {exc.start})", shown) from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:  # IndentationError and TabError too
        line = f":{exc.lineno}" if exc.lineno else ""
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        raise SpecError(f"syntax error: {exc.msg}{text}", f"{shown}{line}") from None
    module_name = f"_hyprgen_spec_{path.stem}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader=None))
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        with _imports_from(path.parent):
            exec(code, module.__dict__)
    except SpecError:
        raise
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path]
        line = f":{frames[-1].lineno}" if frames else ""
        raise SpecError(f"{type(exc).__name__}: {exc}{_hint(exc)}", f"{shown}{line}") from None
    finally:
        sys.modules.pop(module_name, None)
    neuron = module.__dict__.get("neuron")
    if not isinstance(neuron, Neuron):
        found = "nothing" if "neuron" not in module.__dict__ else f"a {type(neuron).__name__}"
        raise SpecError(f"a spec file must bind a hyprgen.spec.Neuron to the name 'neuron' (it binds {found})",
                        shown)
    return neuron, source


@contextmanager
def _imports_from(folder: Path):
    """`folder` first on sys.path while the spec runs; afterwards the modules the run brought in from
    there are forgotten (sys.modules), so that the next load imports them afresh and sees their edits.
    No bytecode is written meanwhile: a helper rewritten within a second at the same size would
    otherwise be read back from a stale __pycache__ (its check compares mtime in seconds and size)."""
    before, entry, dont_write = set(sys.modules), str(folder), sys.dont_write_bytecode
    sys.path.insert(0, entry)
    sys.dont_write_bytecode = True
    importlib.invalidate_caches()   # the folder's listing may have changed since a previous load
    try:
        yield
    finally:
        sys.dont_write_bytecode = dont_write
        if entry in sys.path:
            sys.path.remove(entry)
        new = set(sys.modules) - before
        ours = {name for name in new if "." not in name and _lies_in(sys.modules[name], folder)}  # top-level
        for name in new:
            if name.partition(".")[0] in ours:   # hyprgen itself is never new here, wherever the spec lies
                del sys.modules[name]


def _lies_in(module: ModuleType, folder: Path) -> bool:
    """Whether a module's file (a namespace package's first folder) lies in `folder` or below it."""
    where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
    return where is not None and Path(where).resolve().is_relative_to(folder)


def _hint(exc: Exception) -> str:
    """What usually causes a few exceptions that SymPy raises on plain-Python idioms."""
    text = str(exc)
    if "convert expression to" in text:
        return " (a math.* function or float() got a SymPy expression: use sp.exp, sp.sqrt, ...)"
    if "truth value of Relational" in text:
        return (" (Python if/and/or/max/min got a SymPy condition: use sp.Piecewise, sp.Max, sp.Min, "
                "sp.And, sp.Or)")
    return ""
