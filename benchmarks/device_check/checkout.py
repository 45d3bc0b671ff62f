"""Run hyprgen from a source checkout without pip: the package's data folders where an install puts them.

An install maps hyprgen.generated, hyprgen.neurons and hyprgen.templates onto the checkout's generated/,
neurons/ and templates/ (pyproject.toml, package-dir). A bare checkout on PYTHONPATH (the GPU machine:
its own torch and triton, no pip, no network) lacks those three inside hyprgen/, so `make_importable`
links them there (hyprgen/generated -> ../generated, ...; .gitignore lists the links) unless the
package already finds them (an editable install, or links made before). The committed generated
modules are then used as they are: nothing is built, and the runtime path imports neither the
compiler nor SymPy (runtime_probe.py checks it on the device).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA_PACKAGES = ("generated", "neurons", "templates")


def make_importable(root: Path = ROOT) -> list[str]:
    """Link the data folders that `import hyprgen.<name>` does not find; the links made."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    made = []
    for name in DATA_PACKAGES:
        if importlib.util.find_spec(f"hyprgen.{name}") is not None:
            continue
        link = root / "hyprgen" / name
        if link.is_symlink():   # dangling: its target moved
            link.unlink()
        link.symlink_to(Path("..") / name, target_is_directory=True)
        made.append(str(link.relative_to(root)))
    importlib.invalidate_caches()
    return made


def subprocess_env(root: Path = ROOT, **extra: str) -> dict[str, str]:
    """The environment of the check's subprocesses: the checkout first on PYTHONPATH, output unbuffered,
    the same hash seed in every process (benchmarks.perf does the same)."""
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1", PYTHONHASHSEED="0", **extra)
