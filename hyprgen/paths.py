"""Where templates, shipped specs, generated modules and the build cache live (source checkout or installed)."""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def _package_dir(package: str) -> Path:
    return Path(str(files(package)))


def templates_dir() -> Path:
    return _package_dir("hyprgen.templates")


def neurons_dir() -> Path:
    return _package_dir("hyprgen.neurons")


def generated_dir() -> Path:
    return _package_dir("hyprgen.generated")


def shipped_specs() -> list[Path]:
    """The shipped neuron specs, neurons/<name>.py, sorted by name."""
    return sorted(p for p in neurons_dir().glob("*.py") if not p.name.startswith("_"))


def cache_root() -> Path:
    """The content-addressed cache of user builds (compiler/build.py): $HYPRGEN_CACHE, else ~/.cache/hyprgen."""
    return Path(os.environ.get("HYPRGEN_CACHE", Path.home() / ".cache" / "hyprgen"))
