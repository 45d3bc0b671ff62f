"""Interchange with other tools: NIR graphs for neuromorphic hardware (docs/nir.md).

export_nir (nir_export.py) and import_nir (nir_import.py) share one mapping (nir_mapping.py); the
nir package is imported only when they run.
"""
from .nir_export import export_nir
from .nir_import import import_nir

__all__ = ["export_nir", "import_nir"]
