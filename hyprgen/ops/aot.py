"""Ahead-of-time compilation of the kernels for NVIDIA GPUs, on any machine (no GPU, no driver).

`triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))` runs Triton's whole pipeline to
PTX and, with the ptxas that ships in the triton wheel, to a cubin. Registers and spills are not in
the compiled kernel's metadata until it is loaded on a GPU (`n_regs`, `n_spills` come from the
driver), so `resources` asks the same ptxas, with Triton's flags, for its -v report on the PTX.

`shipped_kernels` lists every kernel variant the runtime launches for a neuron, with the configs
the launchers pick (ops/s_stage.py, ops/p_stage.py, ops/merge.py); `report` compiles them all and
writes the markdown table of `hyprgen build --aot` (docs/results/aot.md).
"""
from __future__ import annotations

import inspect
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from types import ModuleType

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability
from triton.compiler import ASTSource

from ..contract import kernel_name
from .dispatch import compiled
from .merge import NOT_SPECIALIZED as MERGE_NOT_SPECIALIZED
from .merge import merge_config, merge_kernel
from .p_stage import BLOCK as P_STAGE_BLOCK
from .p_stage import p_stage_config
from .s_stage import s_stage_config

_TRITON_TYPE = {torch.float32: "fp32", torch.bfloat16: "bf16"}
_OPTIONS = ("num_warps", "num_stages", "enable_fp_fusion")
_SCALARS = {"_B", "_n", "_lam", "B", "n", "m", "lam"}  # runtime integers of the kernels (i32)


@dataclass
class Variant:
    """One kernel as a launcher would launch it."""

    kernel: str            # "s_stage", "p_stage", "merge"
    form: str              # what distinguishes variants (recurrent n=..., λ form, trace dtype)
    jit: object            # the compiled-form JITFunction
    config: dict           # constexprs and options
    bf16_pointers: tuple[str, ...] = ()


def compile_variant(v: Variant, arch: int) -> triton.compiler.CompiledKernel:
    config = dict(v.config)
    options = {k: config.pop(k) for k in _OPTIONS if k in config}
    signature = {}
    for name in v.jit.arg_names:
        if name in config:
            signature[name] = "constexpr"
        elif name in _SCALARS:
            signature[name] = "i32"
        else:
            signature[name] = "*bf16" if name in v.bf16_pointers else "*fp32"
    source = ASTSource(v.jit, signature, constexprs=config)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)


def compile_merge(d: int, lam: int, trace_dtype: torch.dtype = torch.float32, arch: int = 90,
                  n: int = 1024, m: int = 1024) -> triton.compiler.CompiledKernel:
    """merge_kernel as merge_triton would launch it for this layer shape, compiled for sm_<arch>."""
    return compile_variant(merge_variant(d, lam, trace_dtype, n, m), arch)


def merge_variant(d: int, lam: int, trace_dtype: torch.dtype = torch.float32, n: int = 1024,
                  m: int = 1024) -> Variant:
    config = merge_config(n, m, d, lam, trace_dtype)
    bf16 = ("eps_ptr", "eps_out_ptr") if trace_dtype == torch.bfloat16 else ()
    form = f"{'tl.dot' if config['USE_DOT'] else 'rank-1'}, ε {_TRITON_TYPE[trace_dtype]}"
    return Variant("merge", form, compiled(merge_kernel, tuple(MERGE_NOT_SPECIALIZED)), config, bf16)


def shipped_kernels(kernels: ModuleType, recurrent_n=(64, 128, 256, 512), feedforward_n: int = 1024) -> list[Variant]:
    """Every variant the runtime launches for one neuron's kernels module (<name>_triton)."""
    not_specialized = tuple(kernels.NOT_SPECIALIZED)
    s_stage, p_stage = (compiled(getattr(kernels, kernel_name(kernels.NAME, stage)), not_specialized)
                        for stage in ("s_stage", "p_stage"))
    variants = [Variant("s_stage", f"recurrent, n={n}", s_stage, s_stage_config(n, True)) for n in recurrent_n]
    variants.append(Variant("s_stage", "feed-forward / per-step fallback", s_stage,
                            s_stage_config(feedforward_n, False)))
    variants.append(Variant("p_stage", f"{P_STAGE_BLOCK} lanes", p_stage, p_stage_config()))
    variants += [merge_variant(kernels.D, lam, dtype) for dtype in (torch.float32, torch.bfloat16) for lam in (8, 64)]
    return variants


def ptxas_path(arch: int) -> str:
    """The ptxas Triton compiles sm_<arch> with (get_ptxas takes the arch from Triton 3.5 on)."""
    return (get_ptxas(arch) if inspect.signature(get_ptxas).parameters else get_ptxas()).path


def resources(kernel: triton.compiler.CompiledKernel) -> dict:
    """Registers, spill bytes (ptxas -v on the kernel's PTX) and shared memory of a compiled kernel."""
    arch = kernel.metadata.target.arch
    with tempfile.NamedTemporaryFile("w", suffix=".ptx") as ptx:
        ptx.write(kernel.asm["ptx"])
        ptx.flush()
        cmd = [ptxas_path(arch), "-lineinfo", "-v", "--regAllocOptLevel=2",
               f"--gpu-name={sm_arch_from_capability(arch)}", ptx.name, "-o", "/dev/null"]
        log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return dict(registers=int(re.search(r"Used (\d+) registers", log).group(1)),
                spill_stores=int(spills.group(1)), spill_loads=int(spills.group(2)),
                shared_bytes=kernel.metadata.shared, cubin_bytes=len(kernel.asm["cubin"]))


def report(neurons: dict[str, ModuleType], archs: list[int], progress=None) -> tuple[str, list[dict]]:
    """Compile every variant of every neuron for every arch: (markdown table, rows)."""
    rows = []
    for arch in archs:
        merges_done = set()
        for name, kernels in neurons.items():
            for v in shipped_kernels(kernels):
                label = name
                if v.kernel == "merge":   # neuron-independent: one row per (d, form)
                    if (kernels.D, v.form) in merges_done:
                        continue
                    merges_done.add((kernels.D, v.form))
                    label = f"(d = {kernels.D})"
                t0 = time.perf_counter()
                res = resources(compile_variant(v, arch))
                rows.append(dict(arch=f"sm_{arch}", neuron=label, kernel=v.kernel, form=v.form,
                                 num_warps=v.config["num_warps"], **res,
                                 compile_s=round(time.perf_counter() - t0, 2)))
                if progress:
                    progress(rows[-1])
    header = "| arch | neuron | kernel | variant | warps | registers | spill stores (B) | spill loads (B) | shared (B) |"
    lines = [header, "|" + "---|" * 9]
    lines += [f"| {r['arch']} | {r['neuron']} | {r['kernel']} | {r['form']} | {r['num_warps']} | {r['registers']} | "
              f"{r['spill_stores']} | {r['spill_loads']} | {r['shared_bytes']} |" for r in rows]
    return "\n".join(lines) + "\n", rows
