"""Loading a spec file: execute it, take its `neuron`, and turn every failure into a located SpecError.

A spec file is Python (hyprgen.spec's module docstring). Syntax errors, exceptions raised while it
runs and a missing `neuron` become one line naming the file and line; two SymPy errors that plain-
Python idioms cause (math.exp on a symbol, `if` on a condition) get a hint.
"""
from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

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


def _hint(exc: Exception) -> str:
    """What usually causes a few exceptions that SymPy raises on plain-Python idioms."""
    text = str(exc)
    if "convert expression to" in text:
        return " (a math.* function or float() got a SymPy expression: use sp.exp, sp.sqrt, ...)"
    if "truth value of Relational" in text:
        return (" (Python if/and/or/max/min got a SymPy condition: use sp.Piecewise, sp.Max, sp.Min, "
                "sp.And, sp.Or)")
    return ""
