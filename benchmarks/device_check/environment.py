"""What the device check ran on: GPU, driver, torch, triton, Python (and what else bears on the results)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_smi() -> dict:
    """Driver version and the GPU as the driver sees it (empty where nvidia-smi is missing)."""
    fields = "name,driver_version,memory.total,clocks.max.sm,power.limit"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    if not out:
        return {}
    values = [v.strip() for v in out[0].split(",")]
    return dict(zip(("smi_name", "driver", "memory_total", "max_sm_clock", "power_limit"), values))


def describe(device: str) -> dict:
    import numpy
    import torch
    import triton

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda, "triton": triton.__version__,
            "numpy": numpy.__version__, "sympy_installed": _version("sympy"),
            "torch_threads": torch.get_num_threads(), "device": device}
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"sm_{props.major}{props.minor}", multiprocessors=props.multi_processor_count,
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), gpus=torch.cuda.device_count())
        info.update(_nvidia_smi())
    else:
        info["gpu"] = None
    return info


def one_line(info: dict) -> str:
    where = (f"{info['gpu']} ({info.get('capability')}, {info.get('gpu_memory_gib')} GiB, driver {info.get('driver', '?')})"
             if info.get("gpu") else "CPU only (Triton interpreter)")
    return (f"{where}; torch {info['torch']} (CUDA {info['torch_cuda']}), triton {info['triton']}, "
            f"Python {info['python']}, numpy {info['numpy']}, {info['cpus']} CPUs")
