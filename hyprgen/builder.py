"""Building generated modules: spec file → IR → module text; shipped builds, the cache, staleness.

Shipped neurons (neurons/*.py) are built into generated/ and committed; `check` regenerates each
one in memory and compares bytes. User specs build into a content-addressed cache keyed by the spec
text and every version that shapes the output (hyprgen, sympy, templates), written atomically.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import sympy

from . import __version__
from .codegen.render import render_torch, render_triton
from .derive import derive
from .errors import HyprgenError, SpecError
from .paths import generated_dir, neurons_dir, templates_dir
from .spec import load_spec


TRITON_SUFFIX = "_triton"  # <name>.py holds the torch backend, <name>_triton.py the Triton kernels


def generate(spec_path: str | Path) -> tuple[dict, str]:
    """(KernelIR, torch module text) for one spec file."""
    neuron, source = load_spec(spec_path)
    ir = derive(neuron, Path(spec_path).name, source)
    return ir, render_torch(ir, sympy.__version__)


def generate_modules(spec_path: str | Path) -> tuple[dict, dict[str, str]]:
    """(KernelIR, {file name: text}) for every target: <name>.py (torch) and <name>_triton.py (Triton).

    The Triton kernels are a module of their own so that the torch backend never imports triton
    (a second or more at start-up) and so that @triton.jit sees source it can parse.
    """
    ir, torch_text = generate(spec_path)
    return ir, {f"{ir['name']}.py": torch_text,
                f"{ir['name']}{TRITON_SUFFIX}.py": render_triton(ir, sympy.__version__)}


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; generated modules are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(spec_path: str | Path, out_dir: str | Path | None = None, targets: str = "all") -> Path:
    """Build one spec into out_dir (default: the cache): the torch module <name>.py and the Triton
    kernels beside it (<name>_triton.py); targets "torch" or "triton" write only one of them.
    Returns the path of the torch module (of the Triton one with targets="triton")."""
    if targets not in ("all", "torch", "triton"):
        raise HyprgenError(f"unknown build target {targets!r} (all, torch, triton)")
    _, files = generate_modules(spec_path)
    if out_dir is None:
        out_dir = cache_dir_for(Path(spec_path))
    paths = [Path(out_dir) / name for name in files]            # [torch, triton]
    for path, target in zip(paths, ("torch", "triton")):
        if targets in ("all", target):
            write_atomic(path, files[path.name])
    return paths[1] if targets == "triton" else paths[0]


def shipped_specs() -> list[Path]:
    return sorted(p for p in neurons_dir().glob("*.py") if not p.name.startswith("_"))


def _generate_shipped(spec: Path) -> tuple[dict, dict[str, str]]:
    """generate_modules() for a spec in neurons/: its neuron must be named like the file (load(name)
    finds it so), and not like another neuron's kernel module."""
    ir, files = generate_modules(spec)
    if ir["name"] != spec.stem or ir["name"].endswith(TRITON_SUFFIX):
        raise SpecError(f"a shipped neuron must be named like its file, without the suffix '{TRITON_SUFFIX}': "
                        f"Neuron({ir['name']!r}) in {spec.name}", str(spec), ir["name"])
    return ir, files


def build_all() -> list[Path]:
    paths = []
    for spec in shipped_specs():
        _, files = _generate_shipped(spec)
        for name, text in files.items():
            write_atomic(generated_dir() / name, text)
            paths.append(generated_dir() / name)
    return paths


def check() -> list[str]:
    """Problems with generated/: one line per stale, missing or orphaned module (empty when current)."""
    problems, expected = [], set()
    for spec in shipped_specs():
        _, files = _generate_shipped(spec)
        for name, text in files.items():
            path = generated_dir() / name
            expected.add(name)
            if not path.exists():
                problems.append(f"missing: generated/{name} (from neurons/{spec.name})")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"stale: generated/{name} (from neurons/{spec.name})")
    for path in sorted(generated_dir().glob("*.py")):
        if path.name != "__init__.py" and path.name not in expected:
            problems.append(f"orphan: generated/{path.name} has no spec in neurons/")
    return problems


# ----------------------------------------------------------------------------------------------
# Cache and loading


def _templates_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(templates_dir().rglob("*.j2")):
        h.update(p.relative_to(templates_dir()).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cache_root() -> Path:
    return Path(os.environ.get("HYPRGEN_CACHE", Path.home() / ".cache" / "hyprgen"))


def cache_key(spec_path: Path) -> str:
    h = hashlib.sha256()
    for part in (spec_path.read_bytes(), __version__.encode(), sympy.__version__.encode(), _templates_hash().encode()):
        h.update(part + b"\0")
    return h.hexdigest()[:20]


def cache_dir_for(spec_path: Path) -> Path:
    return cache_root() / f"{spec_path.stem}-{cache_key(spec_path)}"


def _import_file(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _spec_hash(spec_path: Path) -> str:
    return hashlib.sha256(spec_path.read_text(encoding="utf-8").encode()).hexdigest()


def load(name_or_path: str | Path) -> ModuleType:
    """The generated module of a shipped neuron (by name) or of a spec file (by path).

    A shipped module whose spec changed, or that another hyprgen version generated, is rebuilt into
    the cache (with a warning; `hyprgen build --all` updates generated/).
    """
    text = str(name_or_path)
    if text.endswith(".py") or os.sep in text or Path(text).is_file():
        spec_path = Path(text).resolve()
        if not spec_path.is_file():
            raise SpecError("spec file not found", text)
        return _load_cached(spec_path)
    spec_path = neurons_dir() / f"{text}.py"
    if not spec_path.is_file():
        names = ", ".join(p.stem for p in shipped_specs())
        raise HyprgenError(f"no shipped neuron named '{text}' (shipped: {names}); pass a spec file path instead")
    generated = generated_dir() / f"{text}.py"
    if generated.exists():
        module = importlib.import_module(f"hyprgen.generated.{text}")
        meta = module.META
        if meta["spec_hash"] == _spec_hash(spec_path) and meta["hyprgen_version"] == __version__:
            return module
        warnings.warn(f"generated/{text}.py is stale (spec or hyprgen version changed); using a cached rebuild. "
                      "Run `hyprgen build --all` to update it.", stacklevel=2)
    return _load_cached(spec_path)


def _load_cached(spec_path: Path) -> ModuleType:
    directory = cache_dir_for(spec_path)
    module_name = f"hyprgen_cache_{directory.name.replace('-', '_')}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    paths = [p for p in directory.glob("*.py") if not p.stem.endswith(TRITON_SUFFIX)] if directory.exists() else []
    path = paths[0] if paths else build(spec_path, directory)
    return _import_file(path, module_name)


def load_triton(neuron: ModuleType) -> ModuleType:
    """The Triton kernels of a generated torch module: the <name>_triton.py beside it (imports triton)."""
    name = neuron.META["name"]
    path = Path(neuron.__file__).with_name(f"{name}{TRITON_SUFFIX}.py")
    module_name = f"{neuron.__name__}{TRITON_SUFFIX}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if not path.is_file():
        raise HyprgenError(f"neuron '{name}' has no Triton kernels ({path} is missing): rebuild it with "
                           "`hyprgen build` (shipped neurons: `hyprgen build --all`)")
    module = _import_file(path, module_name)
    if module.SPEC_HASH != neuron.META["spec_hash"]:
        del sys.modules[module_name]
        raise HyprgenError(f"{path} was generated from another version of the spec of '{name}' than "
                           f"{neuron.__file__}: rebuild with `hyprgen build`")
    return module
