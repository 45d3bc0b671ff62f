"""What Triton 3.4–3.6's interpreter lacks for hyprgen's way of running kernels, made up for.

hyprgen interprets a kernel for CPU tensors and compiles the same function for CUDA tensors, in one
process (dispatch.py). Two things in older interpreters stand in the way; `apply` repairs each only
where a probe shows it is missing, so on Triton 3.7+ it changes nothing:

- Scalars as indices. Triton ≤ 3.6 converts a scalar tensor to an int with int(array of shape (1,)),
  which NumPy ≥ 2.4 refuses ("only 0-dimensional arrays can be converted to Python scalars"), so a
  loop over a runtime bound (`for b in range(B)` in merge_kernel) fails. Repair: squeeze first, as
  later Triton does.
- triton.language left patched. Before each interpreted launch the interpreter replaces builtins and
  tensor methods of triton.language with NumPy-backed ones; Triton 3.4 never puts them back
  (3.5 added _LangPatchScope), so any kernel compiled later in that process fails in its front end
  ("'block_argument' object has no attribute 'dtype'"). Repair: restore them after each launch.

benchmarks/triton_compat.sh runs the Triton tests on the oldest supported releases.
"""
from __future__ import annotations

import numpy as np
import triton
import triton.language as tl
from triton.runtime import interpreter


def apply() -> None:
    _index_scalars_by_squeezing()
    _restore_language_after_launches()


def _index_scalars_by_squeezing() -> None:
    """tensor.__index__ as int(data.squeeze()) where int(data) is what the interpreter does."""
    patch = getattr(interpreter, "_patch_lang_tensor", None)
    if patch is None or getattr(patch, "squeezes_scalars", False):
        return
    scoped = hasattr(interpreter, "_LangPatchScope")   # Triton ≥ 3.5: patch(tensor, scope)

    class Probe:   # stands in for tl.tensor: the patch sets its methods on the class it is given
        handle = interpreter.TensorHandle(np.array([3], dtype=np.int32), tl.int32)

    patch(Probe, interpreter._LangPatchScope()) if scoped else patch(Probe)
    try:
        if int(Probe().__index__()) == 3:
            return
    except TypeError:
        pass

    def squeezing_patch(tensor, *scope):
        patch(tensor, *scope)
        index = lambda self: int(self.handle.data.squeeze())  # noqa: E731  (Triton 3.7+'s form)
        scope[0].set_attr(tensor, "__index__", index) if scope else setattr(tensor, "__index__", index)

    squeezing_patch.squeezes_scalars = True
    interpreter._patch_lang_tensor = squeezing_patch


def _patched_objects() -> tuple:
    """What the interpreter's _patch_lang changes: the language modules, tensor, dtype, descriptors."""
    return (tl, tl.core, tl.math, tl.tensor, tl.dtype, tl.core.tensor_descriptor_base)


def _restore_language_after_launches() -> None:
    """On a Triton whose interpreter leaves triton.language patched, undo it after every launch."""
    executor = interpreter.GridExecutor
    if hasattr(interpreter, "_LangPatchScope") or getattr(executor.__call__, "restores_language", False):
        return
    launch = executor.__call__

    def launch_and_restore(self, *args, **kwargs):
        saved = [(obj, dict(vars(obj))) for obj in _patched_objects()]
        try:
            return launch(self, *args, **kwargs)
        finally:
            for obj, attributes in saved:
                for name in set(vars(obj)) - set(attributes):
                    delattr(obj, name)
                for name, value in attributes.items():
                    if vars(obj).get(name) is not value:
                        setattr(obj, name, value)

    launch_and_restore.restores_language = True
    executor.__call__ = launch_and_restore
