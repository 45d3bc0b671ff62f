"""Which form of a Triton kernel runs (compiled on CUDA, interpreted on the CPU), and launcher outputs.

`triton.jit` decides at decoration time (TRITON_INTERPRET) whether a kernel becomes a JITFunction
(compiled) or an InterpretedFunction, and so does triton.language for its own @jit helpers (tl.zeros,
tl.sum, ...) when triton is first imported. hyprgen's kernels (ops/merge.py and every generated
<name>_triton.py) call builtins only (tl.full, not tl.zeros), so both forms can be made from the same
Python function whatever the variable said: `for_device` runs the interpreted form for CPU tensors and
the compiled one for CUDA tensors (unless TRITON_INTERPRET=1, which forces the interpreter everywhere).
On Triton 3.4–3.6 the interpreter needs two repairs for that (interpreter_compat.py), applied here,
before any kernel runs.
"""
from __future__ import annotations

import functools

import torch

from .triton_support import AVAILABLE, triton

if AVAILABLE:
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    from . import interpreter_compat

    interpreter_compat.apply()


@functools.cache
def compiled(kernel, not_specialized: tuple[str, ...] = ()) -> JITFunction:
    """The compiled (GPU) form of a @triton.jit kernel; not_specialized: its do_not_specialize list
    (an InterpretedFunction does not keep it)."""
    if isinstance(kernel, JITFunction):
        return kernel
    return JITFunction(kernel.fn, do_not_specialize=list(not_specialized))


@functools.cache
def interpreted(kernel) -> InterpretedFunction:
    """The interpreted (CPU, NumPy) form of a @triton.jit kernel."""
    return kernel if isinstance(kernel, InterpretedFunction) else InterpretedFunction(kernel.fn)


def interpreting(device: torch.device) -> bool:
    """Whether kernels on this device run in Triton's interpreter."""
    return device.type != "cuda" or bool(triton.knobs.runtime.interpret)


def for_device(kernel, device: torch.device, not_specialized: tuple[str, ...] = ()):
    """Compiled on CUDA (unless TRITON_INTERPRET=1), interpreted elsewhere."""
    return interpreted(kernel) if interpreting(device) else compiled(kernel, tuple(not_specialized))


def output(*shape: int, like: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The allocation of every launcher's outputs (the tests' NaN-poisoning fixture replaces it, so an
    element a kernel leaves unwritten fails a comparison)."""
    return torch.empty(*shape, dtype=dtype, device=like.device)


class ChunkBuffers:
    """One layer's per-chunk stage outputs, allocated once and written again by every chunk of one learner
    call (runtime/hypr.py `_spare_traces`), so that a long run allocates no chunk-sized tensor per
    chunk. On a CPU those tensors (16–50 MB each at the brf suite's λ = 512) are large enough for
    glibc to map fresh pages for each, and the blocks it keeps instead grow the heap from chunk to
    chunk (docs/results/cpu_target.md, "Memory at the chunk's peak"). A buffer may hold only what is dead when
    the next chunk's stage runs: the learner hands them to the stages of the layers below the
    readout (whose outputs are the user's y) and drops them when the call ends."""

    def __init__(self):
        self._tensors: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, *shape: int, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The buffer `name` of this shape: the one of the chunk before when it fits, else a new one."""
        t = self._tensors.get(name)
        if t is None or t.shape != shape or t.dtype != dtype or t.device != like.device:
            t = self._tensors[name] = output(*shape, like=like, dtype=dtype)
        return t


def chunk_output(buffers: ChunkBuffers | None, name: str, *shape: int, like: torch.Tensor,
                 dtype: torch.dtype) -> torch.Tensor:
    """A launcher's chunk-sized output: buffer `name` of a learner call's ChunkBuffers, else a new tensor."""
    return output(*shape, like=like, dtype=dtype) if buffers is None else buffers(name, *shape, like=like, dtype=dtype)
