"""`libdevice` for generated Triton kernels: one object that both the compiler and the interpreter accept.

Printed expressions call libdevice.tanh, libdevice.pow, ... (triton_printer.LIBDEVICE_FUNCTIONS). When a
kernel is compiled, Triton replaces any module named "triton.language.extra.libdevice" by its backend's
libdevice (CUDA's __nv_*, AMD's ocml), looked up by name (the backend's get_module_map; that is how
Triton's own stub module of that name works). Triton's interpreter (TRITON_INTERPRET=1, or an
InterpretedFunction made from the kernel) cannot run libdevice at all in Triton 3.x: the stubs return
None and extern_elementwise raises NotImplementedError. So `libdevice` below is a module of that name
whose functions, called by the interpreter with its NumPy-backed tensors, evaluate the same maths with
NumPy in the operand's dtype. One object, no import-time choice: the same kernel function compiles on a
GPU and runs interpreted on the CPU, whatever TRITON_INTERPRET said when it was imported.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

NAME = "triton.language.extra.libdevice"  # the name Triton's backends map to their libdevice

# libdevice name → NumPy ufunc: the printer's LIBDEVICE_FUNCTIONS, plus pow
NUMPY_UFUNCS = {"tan": np.tan, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh, "atan": np.arctan,
                "asin": np.arcsin, "acos": np.arccos, "pow": np.power}


def _interpreted(name: str, ufunc):
    def fn(*args):
        import triton.language as tl
        from triton.runtime.interpreter import TensorHandle

        tensors = [a for a in args if isinstance(a, tl.tensor)]
        if not tensors:
            raise TypeError(f"libdevice.{name} needs a tensor argument, got {args}")
        dtype = tensors[0].dtype  # scalar element type (libdevice: every argument has it)
        np_dtype = tensors[0].handle.data.dtype
        data = [a.handle.data if isinstance(a, tl.tensor) else np.asarray(a, dtype=np_dtype) for a in args]
        with np.errstate(all="ignore"):  # nan/inf as the GPU gives them, without warnings
            out = np.asarray(ufunc(*data)).astype(np_dtype, copy=False)
        # a scalar tensor holds one element and has a scalar type; NumPy broadcasting gives the block shape
        ty = tl.block_type(dtype, list(out.shape)) if any(t.type.is_block() for t in tensors) else dtype
        return tl.tensor(TensorHandle(out, dtype), ty)

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = NAME  # @triton.jit's dependency scan skips libdevice stubs by this attribute
    return fn


libdevice = ModuleType(NAME, __doc__)
for _name, _ufunc in NUMPY_UFUNCS.items():
    setattr(libdevice, _name, _interpreted(_name, _ufunc))
del _name, _ufunc
