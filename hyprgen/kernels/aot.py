"""Ahead-of-time compilation of the kernels for NVIDIA GPUs, on any machine (no GPU, no driver).

`triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))` runs Triton's whole pipeline to
PTX and, with the ptxas that ships in the triton wheel, to a cubin. Registers and spills are not in
the compiled kernel's metadata until it is loaded on a GPU (`n_regs`, `n_spills` come from the
driver), so `resources` asks the same ptxas, with Triton's flags, for its -v report on the PTX.
"""
from __future__ import annotations

import re
import subprocess
import tempfile

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability
from triton.compiler import ASTSource

from .merge import compiled_merge_kernel, merge_config

_POINTERS = ["eps_ptr", "q0_ptr", "g_ptr", "E_ptr", "Phi_ptr", "pre_ptr", "grad_W_ptr", "eps_out_ptr"]
_TRITON_TYPE = {torch.float32: "fp32", torch.bfloat16: "bf16"}


def compile_merge(d: int, lam: int, trace_dtype: torch.dtype = torch.float32, arch: int = 90,
                  n: int = 1024, m: int = 1024) -> triton.compiler.CompiledKernel:
    """merge_kernel as merge_triton would launch it for this layer shape, compiled for sm_<arch>."""
    config = merge_config(n, m, d, lam, trace_dtype)
    options = {k: config.pop(k) for k in ("num_warps", "num_stages", "enable_fp_fusion")}
    signature = {p: "*fp32" for p in _POINTERS}
    signature["eps_ptr"] = signature["eps_out_ptr"] = "*" + _TRITON_TYPE[trace_dtype]
    signature.update(B="i32", n="i32", m="i32", lam="i32", **{k: "constexpr" for k in config})
    source = ASTSource(compiled_merge_kernel(), signature, constexprs=config)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)


def resources(kernel: triton.compiler.CompiledKernel) -> dict:
    """Registers, spill bytes (ptxas -v on the kernel's PTX) and shared memory of a compiled kernel."""
    arch = kernel.metadata.target.arch
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as ptx:
        ptx.write(kernel.asm["ptx"])
        ptx.flush()
        cmd = [get_ptxas(arch).path, "-lineinfo", "-v", "--regAllocOptLevel=2",
               f"--gpu-name={sm_arch_from_capability(arch)}", ptx.name, "-o", "/dev/null"]
        log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return dict(registers=int(re.search(r"Used (\d+) registers", log).group(1)),
                spill_stores=int(spills.group(1)), spill_loads=int(spills.group(2)),
                shared_bytes=kernel.metadata.shared, cubin_bytes=len(kernel.asm["cubin"]))
