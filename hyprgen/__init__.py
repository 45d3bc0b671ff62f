"""hyprgen: a compiler for online learning (HYPR) in recurrent spiking neural networks.

The runtime (and torch) load on first use of one of its names, so that `hyprgen list`, `show` and
`build` start quickly.
"""
__version__ = "0.1.0"

from . import errors  # noqa: E402,F401

_LAZY = {"build": "compiler.build", "load": "loader", "BPTT": "runtime", "EProp": "runtime", "HYPR": "runtime",
         "RSNN": "runtime", "export_nir": "interop", "import_nir": "interop"}

__all__ = ["BPTT", "EProp", "HYPR", "RSNN", "build", "export_nir", "import_nir", "load", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hyprgen' has no attribute {name!r}")
