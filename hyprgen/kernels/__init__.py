"""Triton kernels of the HYPR runtime, each beside the plain-PyTorch reference it is tested against.

layer:  launchers of a neuron's generated S-stage `fwd_kernel` and P-stage `chunk_kernel`
        (generated/<name>_triton.py), reference `hyprgen.runtime.stages.TorchStages`.
merge:  `merge_kernel` / `merge_triton`, reference `hyprgen.runtime.chunk.merge`.
launch: compiled on CUDA, interpreted on the CPU. aot: `hyprgen build --aot`. specialization:
        which binary a launch would use (compile keys, no GPU needed). docs/kernels.md.
"""
from .merge import merge_kernel, merge_triton

__all__ = ["merge_kernel", "merge_triton"]
