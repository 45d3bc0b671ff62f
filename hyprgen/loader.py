"""The one seam between the runtime and the compiler: a neuron name or spec path in, a generated module out.

A shipped neuron whose committed module (generated/<name>.py) is current is imported as it is; the
compiler is imported only when something must be built: a user spec (into the content-addressed
cache, hyprgen/compiler/build.py) or a shipped module whose spec or hyprgen version changed (rebuilt
into the cache, with a warning). The Triton kernels of a module are the <name>_triton.py beside it.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

from . import __version__
from .contract import TRITON_SUFFIX, spec_hash
from .errors import HyprgenError, SpecError
from .paths import generated_dir, neurons_dir, shipped_specs


def load(name_or_path: str | Path) -> ModuleType:
    """The generated torch module of a shipped neuron (by name) or of a spec file (by path)."""
    text = str(name_or_path)
    if text.endswith(".py") or os.sep in text or Path(text).is_file():
        spec_path = Path(text).resolve()
        if not spec_path.is_file():
            raise SpecError("spec file not found", text)
        return _built(spec_path)
    spec_path = neurons_dir() / f"{text}.py"
    if not spec_path.is_file():
        names = ", ".join(p.stem for p in shipped_specs())
        raise HyprgenError(f"no shipped neuron named '{text}' (shipped: {names}); pass a spec file path instead")
    if (generated_dir() / f"{text}.py").exists():
        module = importlib.import_module(f"hyprgen.generated.{text}")
        meta = module.META
        if meta["spec_hash"] == spec_hash(spec_path.read_text(encoding="utf-8")) and \
                meta["hyprgen_version"] == __version__:
            return module
        warnings.warn(f"generated/{text}.py is stale (spec or hyprgen version changed); using a cached rebuild. "
                      "Run `hyprgen build --all` to update it.", stacklevel=2)
    return _built(spec_path)


def load_kernels(neuron: ModuleType) -> ModuleType:
    """The Triton kernels of a generated torch module: the <name>_triton.py beside it (imports triton)."""
    name = neuron.META["name"]
    path = Path(neuron.__file__).with_name(f"{name}{TRITON_SUFFIX}.py")
    module_name = f"{neuron.__name__}{TRITON_SUFFIX}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if not path.is_file():
        raise HyprgenError(f"neuron '{name}' has no Triton kernels ({path} is missing): rebuild it with "
                           "`hyprgen build` (shipped neurons: `hyprgen build --all`)")
    module = import_file(path, module_name)
    if module.SPEC_HASH != neuron.META["spec_hash"]:
        del sys.modules[module_name]
        raise HyprgenError(f"{path} was generated from another version of the spec of '{name}' than "
                           f"{neuron.__file__}: rebuild with `hyprgen build`")
    return module


def _built(spec_path: Path) -> ModuleType:
    """A user spec's (or stale shipped spec's) module from the cache, built there first if needed."""
    from .compiler.build import cache_dir_for, cached_build  # the compiler, only when a build may be due

    module_name = f"hyprgen_cache_{cache_dir_for(spec_path).name.replace('-', '_')}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    return import_file(cached_build(spec_path), module_name)


def import_file(path: Path, module_name: str) -> ModuleType:
    """Import the Python file `path` as `module_name` (registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
