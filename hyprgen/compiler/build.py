"""Building generated modules: spec file → IR → module text; shipped builds, the cache, staleness.

Shipped neurons (neurons/*.py) are built into generated/ and committed; `check` regenerates each
one in memory and compares bytes. User specs build into a content-addressed cache keyed by the
evaluated spec (its KernelIR: every value it computed, whichever file it came from) and every
version that shapes the output (hyprgen, sympy, templates), written atomically. Every file written
opens with the sha256 of the rest of it (contract.seal), which the loader checks before importing.
Importing what was built is the loader's job (hyprgen/loader.py): this module only writes files.
"""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import sympy

from .. import __version__
from ..contract import CPU_SUFFIX, TRITON_SUFFIX, seal, seal_problem
from ..errors import HyprgenError, SpecError
from ..paths import cache_root, generated_dir, shipped_specs, templates_dir
from .codegen.c_module import render_c
from .codegen.torch_module import render_torch
from .codegen.triton_module import render_triton
from .derive import derive
from .ir import KernelIR
from .spec_file import load_spec


def evaluate(spec_path: str | Path) -> KernelIR:
    """The KernelIR of one spec file: run it (helpers beside it importable), derive its Jacobians."""
    neuron, source = load_spec(spec_path)
    return derive(neuron, Path(spec_path).name, source)


TARGETS = ("torch", "triton", "cpu")   # in the order of render_modules' files


def render_modules(ir: KernelIR) -> dict[str, str]:
    """{file name: sealed text} for every target: <name>.py (torch), <name>_triton.py (Triton) and
    <name>_cpu.c (cpu: C compiled on first use, ops/native.py).

    The Triton kernels are a module of their own so that the torch backend never imports triton
    (a second or more at start-up) and so that @triton.jit sees source it can parse.
    """
    return {f"{ir.name}.py": seal(render_torch(ir, sympy.__version__)),
            f"{ir.name}{TRITON_SUFFIX}.py": seal(render_triton(ir, sympy.__version__)),
            f"{ir.name}{CPU_SUFFIX}.c": seal(render_c(ir, sympy.__version__), comment="//")}


def generate(spec_path: str | Path) -> tuple[KernelIR, str]:
    """(KernelIR, torch module file text) for one spec file."""
    ir = evaluate(spec_path)
    return ir, seal(render_torch(ir, sympy.__version__))


def generate_modules(spec_path: str | Path) -> tuple[KernelIR, dict[str, str]]:
    """(KernelIR, {file name: file text}) for every target (render_modules)."""
    ir = evaluate(spec_path)
    return ir, render_modules(ir)


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
    """Build one spec into out_dir (default: the cache): the torch module <name>.py and the kernels
    beside it (<name>_triton.py, <name>_cpu.c); targets "torch", "triton" or "cpu" write only one of
    them. Returns the path of the torch module (of the one written, with a single other target)."""
    if targets not in ("all", *TARGETS):
        raise HyprgenError(f"unknown build target {targets!r} (all, {', '.join(TARGETS)})")
    ir = evaluate(spec_path)
    return _write(ir, Path(out_dir) if out_dir is not None else cache_dir_for(Path(spec_path), ir), targets)


def _write(ir: KernelIR, out_dir: Path, targets: str = "all") -> Path:
    """Write the sealed modules of `ir` into out_dir; the path of the torch one (or of the one target's)."""
    files = render_modules(ir)
    paths = dict(zip(TARGETS, (out_dir / name for name in files)))
    for target, path in paths.items():
        if targets in ("all", target):
            write_atomic(path, files[path.name])
    return paths["torch" if targets == "all" else targets]


def _generate_shipped(spec: Path) -> tuple[KernelIR, dict[str, str]]:
    """generate_modules() for a spec in neurons/: its neuron must be named like the file (load(name)
    finds it so), and not like another neuron's kernel module."""
    ir, files = generate_modules(spec)
    if ir.name != spec.stem or ir.name.endswith(TRITON_SUFFIX):
        raise SpecError(f"a shipped neuron must be named like its file, without the suffix '{TRITON_SUFFIX}': "
                        f"Neuron({ir.name!r}) in {spec.name}", str(spec), ir.name)
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
                continue
            found = path.read_text(encoding="utf-8")
            if found != text:
                edited = seal_problem(found)
                problems.append(f"edited: generated/{name} ({edited})" if edited else
                                f"stale: generated/{name} (from neurons/{spec.name})")
    for path in sorted([*generated_dir().glob("*.py"), *generated_dir().glob("*.c")]):
        if path.name != "__init__.py" and path.name not in expected:
            problems.append(f"orphan: generated/{path.name} has no spec in neurons/")
    return problems


# ----------------------------------------------------------------------------------------------
# Cache and loading


@functools.cache
def _generator_hash() -> str:
    """sha256 of everything that shapes a generated file besides the spec: the templates and the
    compiler's own source (so an edited printer or derivation misses the cache without a version bump)."""
    h = hashlib.sha256()
    for root, pattern in ((templates_dir(), "*.j2"), (Path(__file__).parent, "*.py")):
        for p in sorted(root.rglob(pattern)):
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cache_key(ir: KernelIR) -> str:
    """The cache entry of an evaluated spec: its KernelIR (every value the spec computed, from any module
    it imported or file it read, and the sha256 of its text), every version that shapes the files, and the
    templates' and the compiler's source."""
    h = hashlib.sha256()
    for part in (ir.to_json().encode(), __version__.encode(), sympy.__version__.encode(), _generator_hash().encode()):
        h.update(part + b"\0")
    return h.hexdigest()[:20]


def cache_dir_for(spec_path: Path, ir: KernelIR) -> Path:
    return cache_root() / f"{spec_path.stem}-{cache_key(ir)}"


def cached_build(spec_path: Path) -> Path:
    """The torch module of a user spec in the cache, built first if the cache lacks it. Finding the entry
    runs the spec and derives it (10-70 ms for the shipped neurons); only rendering is saved on a hit."""
    ir = evaluate(spec_path)
    path = cache_dir_for(spec_path, ir) / f"{ir.name}.py"
    return path if path.is_file() else _write(ir, path.parent)
