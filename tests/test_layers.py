"""The layers point one way (DESIGN.md "Layout"): every import in the package, module- or function-level,
read from the source with ast and checked against the allowed arrows

    cli, verify → train → runtime → ops → contract, errors, paths  compiler → spec → contract, errors
    interop (NIR export/import) → runtime
    runtime → loader (the one seam) ⇢ compiler (only inside loader's functions, only when building)
    data → contract, errors          generated modules → ops.libdevice, contract

and the graph of hyprgen's packages has no cycle.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEAVES = {"contract", "errors", "paths"}

# layer → the layers (first component after `hyprgen.`) its modules may import
ALLOWED = {
    "contract": set(), "errors": set(), "paths": set(),
    "surrogates": {"errors"},
    "spec": {"contract", "errors", "surrogates"},
    "compiler": LEAVES | {"spec", "surrogates", "compiler"},
    "ops": LEAVES | {"ops"},                # paths: the cpu target's library cache (ops/native.py)
    "loader": LEAVES,                       # + compiler inside its functions: the seam (checked below)
    "runtime": {"contract", "errors", "loader", "ops", "runtime"},
    "data": {"contract", "errors", "data"},
    "train": LEAVES | {"loader", "ops", "runtime", "data", "spec", "train"},
    "verify": {"contract", "errors", "ops", "runtime"},
    "interop": {"errors", "runtime", "interop"},
    "cli": LEAVES | {"compiler", "loader", "ops", "runtime", "train", "spec", "verify"},
    "generated": {"contract", "ops"},
    "__init__": {"errors"},                 # the package's names load lazily (hyprgen/__init__.py)
    "__main__": {"cli"},                    # python -m hyprgen
}


def package_of(path: Path) -> str:
    """The layer of a module file: hyprgen/<layer>(.py|/...), or 'generated' for generated/."""
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "generated":
        return "generated"
    return rel.parts[1].removesuffix(".py")


def imports(path: Path):
    """(imported hyprgen layer, line, inside a function) for every import of hyprgen in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["hyprgen", *path.relative_to(ROOT / "hyprgen").parts[:-1]] if path.is_relative_to(ROOT / "hyprgen") \
        else ["hyprgen", "generated"]
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    in_function = {id(x) for f in functions for x in ast.walk(f)}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: resolve against the module's package
                base = package[: len(package) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # `from . import x`: x is a module of that package
                    names = [".".join(base + [a.name]) for a in node.names]
            else:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "hyprgen" and len(parts) > 1:
                yield parts[1], node.lineno, id(node) in in_function


def modules():
    return sorted((ROOT / "hyprgen").rglob("*.py")) + sorted((ROOT / "generated").glob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    layer = package_of(path)
    allowed = ALLOWED.get(layer, set()) | ({"__version__"} if layer != "generated" else set())
    for target, line, lazy in imports(path):
        if target == "__version__":
            continue
        if layer == "loader" and target == "compiler" and lazy:
            continue   # the seam: the loader builds through the compiler, only when a build is due
        assert target in allowed, (f"{path.relative_to(ROOT)}:{line} imports hyprgen.{target}: "
                                   f"{layer} may import only {sorted(allowed)}")


def test_the_layer_graph_has_no_cycle():
    graph = {}
    for path in modules():
        layer = package_of(path)
        graph.setdefault(layer, set()).update(t for t, _, _ in imports(path) if t != layer and t in ALLOWED)
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' → '.join(trail + [node])}"
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


def test_each_layer_imports_alone_in_a_fresh_interpreter():
    """Importing a layer first (no other hyprgen module loaded before it) works: no hidden cycle that
    only import order resolves. The torch-free layers also stay free of torch."""
    script = ("import importlib, sys\n"
              "for name in sys.argv[1:]:\n"
              "    importlib.import_module(name)\n")
    layers = ["hyprgen.contract", "hyprgen.spec", "hyprgen.compiler.build", "hyprgen.ops.merge",
              "hyprgen.ops.s_stage", "hyprgen.ops.p_stage", "hyprgen.runtime", "hyprgen.data", "hyprgen.train.trainer",
              "hyprgen.loader", "hyprgen.verify", "hyprgen.cli", "hyprgen.interop"]
    for name in layers:
        subprocess.run([sys.executable, "-c", script, name], cwd=ROOT, check=True, timeout=120)
    torch_free = ("import sys, hyprgen.cli, hyprgen.compiler.build, hyprgen.loader\n"
                  "assert 'torch' not in sys.modules, 'the CLI front and the compiler import torch'\n")
    subprocess.run([sys.executable, "-c", torch_free], cwd=ROOT, check=True, timeout=120)
