"""Triton where it is installed, one clear line where it is not (issue 18: Triton has wheels for Linux
only, and the default backend never needs it).

The ops modules import triton through here: without it they still import, the torch references and
the torch backend run, and anything that would launch a kernel raises MISSING (HYPR checks it when a
learner is built with backend="triton"). Kernels defined in ops/ are decorated with `jit`, which is
triton.jit, or without Triton keeps the plain function (its body only ever runs in a launch).
"""
from __future__ import annotations

from ..errors import HyprgenError

try:
    import triton
    import triton.language as tl
except ImportError:   # not installed (macOS, Windows, a CPU-only install)
    triton = tl = None

AVAILABLE = triton is not None
MISSING = ("backend='triton' needs Triton, which is not installed here: pip install 'hyprgen[gpu]' "
           "(Triton has wheels for Linux only; backend='torch' needs nothing more)")


def jit(**options):
    """triton.jit(**options), or without Triton a decorator that keeps the function as it is."""
    return triton.jit(**options) if AVAILABLE else (lambda fn: fn)


def require() -> None:
    if not AVAILABLE:
        raise HyprgenError(MISSING)
