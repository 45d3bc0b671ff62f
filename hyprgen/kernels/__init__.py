"""Triton kernels of the HYPR runtime, each beside the plain-PyTorch reference it is tested against.

merge: `merge_kernel` / `merge_triton`, reference `hyprgen.runtime.chunk.merge` (docs/hypr.md §4).
"""
from .merge import merge_kernel, merge_triton

__all__ = ["merge_kernel", "merge_triton"]
