"""A neuron's compiled cpu kernels (generated/<name>_cpu.c, built by ops/native.py): their ctypes
signatures and the calls the launchers make (ops/s_stage.py, p_stage.py, merge.py).

Every kernel takes raw pointers to contiguous CPU tensors of one dtype (float32 → the _f32 function,
float64 → _f64), int64 sizes and the thread count, which is torch's (torch.get_num_threads()) at
the time of the call, so `torch.set_num_threads` governs the kernels as it governs torch's own ops.
`call` checks what ctypes cannot (device, dtype, contiguity): a wrong pointer would be memory
corruption, not an exception.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import torch

from ..contract import CPU_ABI, CPU_SIGNATURES as SIGNATURES, CPU_STAGES, CPU_STATUS as STATUS
from ..errors import HyprgenError

_P, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
OPTIONAL = {("p_stage", "sg")}   # tensor arguments that may be None (NULL: not computed)
# tensor arguments whose leading dimension may be strided (every x[t] contiguous; the caller passes the
# stride among the sizes): route_merge's gw, the route lanes of a P-stage's g over (1 + R)·B lanes
LEADING_STRIDED = {("route_merge", "gw")}
SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


@dataclass
class CpuKernels:
    name: str
    D: int                   # carried state components
    P: int                   # neuron parameters
    spec_hash: str
    library: ctypes.CDLL
    _functions: dict = field(default_factory=dict, repr=False)

    @staticmethod
    def load(name: str, source: str, spec_hash: str) -> "CpuKernels":
        """The kernels of one generated C file (compiled into the cache on first use, ops/native.py),
        checked to be those of the spec version `spec_hash` (the torch module's META)."""
        from .native import load_library

        kernels = CpuKernels.of(name, load_library(source, name))
        if kernels.spec_hash != spec_hash:
            raise HyprgenError(f"the cpu kernels of '{name}' were generated from another version of its spec than "
                               "its torch module: rebuild with `hyprgen build`")
        return kernels

    @staticmethod
    def of(name: str, library: ctypes.CDLL) -> "CpuKernels":
        """The kernels of a loaded library, refused unless it was generated for this hyprgen's kernel
        signatures (contract.CPU_ABI): a call with arguments a kernel does not take would crash."""
        abi = getattr(library, f"{name}_abi", None)
        if abi is not None:
            abi.restype = ctypes.c_char_p
        found = abi().decode() if abi is not None else "none (written before kernels carried one)"
        if found != CPU_ABI:
            raise HyprgenError(f"the cpu kernels of '{name}' were generated for other kernel signatures (abi "
                               f"{found}; this hyprgen's: {CPU_ABI}): rebuild them with `hyprgen build`")
        for export, restype in (("spec_hash", ctypes.c_char_p), ("carried", _INT), ("params", _INT)):
            getattr(library, f"{name}_{export}").restype = restype
        return CpuKernels(name, getattr(library, f"{name}_carried")(), getattr(library, f"{name}_params")(),
                          getattr(library, f"{name}_spec_hash")().decode(), library)

    def function(self, stage: str, dtype: torch.dtype):
        key = (stage, dtype)
        if key not in self._functions:
            if stage not in CPU_STAGES:
                raise ValueError(f"unknown cpu stage {stage!r} ({', '.join(CPU_STAGES)})")
            if dtype not in SUFFIX:
                raise HyprgenError(f"backend='cpu' computes in float32 or float64, not {dtype}")
            fn = getattr(self.library, f"{self.name}_{stage}_{SUFFIX[dtype]}")
            tensors, sizes = SIGNATURES[stage]
            fn.argtypes = [_P] * len(tensors) + [_I64] * len(sizes) + [_INT]
            fn.restype = _INT if stage in STATUS else None
            self._functions[key] = fn
        return self._functions[key]

    def call(self, stage: str, *args) -> None:
        """Run one kernel: args are its tensors then its sizes (SIGNATURES), in order; an OPTIONAL tensor
        may be None (the kernel gets NULL and skips it)."""
        tensors, sizes = SIGNATURES[stage]
        data, dims = args[:len(tensors)], args[len(tensors):]
        dtype = data[0].dtype
        for label, x in zip(tensors, data):
            if x is None:
                if (stage, label) in OPTIONAL:
                    continue
                raise HyprgenError(f"{self.name} cpu {stage}: {label} must be a contiguous CPU {dtype} tensor, "
                                   "got None")
            laid_out = x[0].is_contiguous() if (stage, label) in LEADING_STRIDED and x.dim() > 1 else x.is_contiguous()
            if x.device.type != "cpu" or x.dtype != dtype or not laid_out:
                raise HyprgenError(f"{self.name} cpu {stage}: {label} must be a contiguous CPU {dtype} tensor, got "
                                   f"{x.dtype} on {x.device}{'' if x.is_contiguous() else ', not contiguous'}")
        status = self.function(stage, dtype)(*(None if x is None else x.data_ptr() for x in data), *dims,
                                             torch.get_num_threads())
        if status:
            raise MemoryError(f"{self.name} cpu {stage}: out of memory for its buffers (sizes {dims})")
