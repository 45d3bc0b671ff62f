"""The cpu target's native code: a generated C file compiled with the system C compiler, loaded with ctypes.

    compiler_problem()            why no C compiler can build kernels here (None when one can)
    load_library(source, name)    the shared library of one generated C file (compiled on first use)

The library lands in the content-addressed cache, $HYPRGEN_CACHE/cpu/<name>-<key>.so, where key =
sha256(C source, the compiler's identity (`cc --version`), the flags, the machine): a changed kernel,
compiler, flag or host (-march=native) is a new entry, and an entry is never rebuilt in place.
It is written to a temporary file beside its final name and renamed, so a reader (another process,
a crash mid-build) never loads half a library.

Why ctypes and not torch's extension loader (docs/cpu.md has the measurements): the kernels take raw
pointers and sizes, so they need no torch headers; a plain C file compiles in about 0.3 s where a
torch C++ extension takes tens of seconds (it compiles torch's headers), and the library does not
depend on the torch build it was compiled beside. A ctypes call costs one to three microseconds (measured), against
the tens of microseconds of work in every call (one step of a layer, or one chunk).

The compiler: $CC if set, else the first of cc, gcc, clang on PATH; it must take GNU C vector
extensions (gcc and clang do: the fused merge's register tiles). Flags: -O3 -march=native (the
library is built on and for this machine), -fno-math-errno (lets sqrt and friends inline; errno is
never read), -ffp-contract=off (the S-stage rounds as torch's step does; the generated file turns
contraction on for the P-stage and the merge, HG_CONTRACT_BEGIN, under gcc and clang), no
-ffast-math (NaN and the order of float operations keep their IEEE meaning, so the float64 kernels
agree with torch to rounding), -fopenmp (lanes in parallel; torch's thread count is passed to
every call). A compiler without OpenMP builds the same code single-threaded.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import HyprgenError
from ..paths import cache_root

BASE_FLAGS = ("-std=c99", "-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fPIC", "-shared")
OPENMP_FLAG = "-fopenmp"
# glibc's vector math (libmvec): the generated file declares the functions it calls with vector
# variants under HG_VECTOR_MATH; -z defs turns a variant this libmvec lacks into a link error, after
# which the file is built again without them (scalar calls)
VECTOR_MATH_FLAGS = ("-DHG_VECTOR_MATH", "-Wl,-z,defs")
VECTOR_MATH_LIBS = ("-lmvec",)


class CompilerError(HyprgenError):
    """No C compiler, or one that failed on a generated file."""


def _compiler_command() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc)
    return next((path for path in map(shutil.which, ("cc", "gcc", "clang")) if path), None)


@functools.cache
def _identity(cc: str) -> str:
    """The compiler's first `--version` line (part of the cache key); raises CompilerError if it does not run."""
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        raise CompilerError(f"the C compiler {cc} does not run: {e}") from None
    if out.returncode != 0:
        raise CompilerError(f"the C compiler {cc} does not run: `{cc} --version` exited with {out.returncode}")
    return (out.stdout.strip().splitlines() or [cc])[0]


@functools.cache
def _probe(cc: str) -> tuple[str, ...]:
    """The flags this compiler takes: BASE_FLAGS, plus OpenMP when it links a test program with it.
    Raises CompilerError when not even a trivial C file compiles."""
    with tempfile.TemporaryDirectory(prefix="hyprgen-cc-") as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("#include <math.h>\n"
                       "typedef float hg_vec __attribute__((vector_size(32)));\n"   # GNU C vectors (the fused merge)
                       "int hg_probe(void) { int s = 0; hg_vec v = {0}; v = 2.0f * v;\n"
                       "#pragma omp parallel for reduction(+:s)\n"
                       "for (int i = 0; i < 4; ++i) s += i; return s + (int)v[0]; }\n")
        for flags in ((*BASE_FLAGS, OPENMP_FLAG), BASE_FLAGS):
            out = subprocess.run([cc, *flags, "-o", str(Path(tmp) / "probe.so"), str(src), "-lm"],
                                 capture_output=True, text=True, timeout=120)
            if out.returncode == 0:
                return flags
    raise CompilerError(f"the C compiler {cc} cannot build a shared library here: {out.stderr.strip()[-400:]}")


def compiler_problem() -> str | None:
    """Why the cpu target cannot be built on this machine (None when it can)."""
    cc = _compiler_command()
    if cc is None:
        given = os.environ.get("CC")
        return (f"no C compiler: $CC={given!r} is not an executable" if given else
                "no C compiler found (cc, gcc or clang on PATH; or set $CC)")
    try:
        _identity(cc)
        _probe(cc)
    except CompilerError as e:
        return str(e)
    return None


@functools.cache
def _host() -> str:
    """What -march=native depends on: the architecture and the CPU model and flags."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags", "Features")):
                model += line
                if line.startswith(("flags", "Features")):
                    break
    except OSError:
        pass
    return f"{platform.machine()} {platform.system()} {model}"


def library_path(source: str, name: str) -> Path:
    """Where the library of `source` lies in the cache (whether built or not); needs a working compiler."""
    cc = _compiler_command()
    if cc is None:
        raise CompilerError(compiler_problem())
    key = hashlib.sha256("\0".join([source, _identity(cc), " ".join(_probe(cc)), _host()]).encode()).hexdigest()
    return cache_root() / "cpu" / f"{name}-{key[:20]}.so"


def build_library(source: str, name: str) -> Path:
    """Compile `source` into the cache unless its entry exists; the entry's path."""
    path = library_path(source, name)
    if path.is_file():
        return path
    cc = _compiler_command()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{name}-") as tmp:
        src, lib = Path(tmp) / f"{name}.c", Path(tmp) / f"{name}.so"
        src.write_text(source, encoding="utf-8")
        for extra, libs in ((VECTOR_MATH_FLAGS, VECTOR_MATH_LIBS), ((), ())):
            out = subprocess.run([cc, *_probe(cc), *extra, "-o", str(lib), str(src), *libs, "-lm"],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode == 0:
                break
        else:
            raise CompilerError(f"{name}: the C compiler {cc} failed on the generated kernels:\n"
                                f"{out.stderr.strip()[-2000:]}")
        os.replace(lib, path)   # atomic: a reader sees no library or the whole one
    return path


@functools.cache
def _loaded(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))


def load_library(source: str, name: str) -> ctypes.CDLL:
    """The loaded library of one generated C file (compiled into the cache first if needed)."""
    return _loaded(build_library(source, name))
