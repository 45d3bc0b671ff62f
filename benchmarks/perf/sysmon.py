"""Process memory and machine load probes for the benchmarks (Linux /proc; no third-party package).

Peak memory of a call is the kernel's exact RSS high-water mark: reset VmHWM to the current RSS
(write "5" to /proc/self/clear_refs, Linux ≥ 4.0), run the call, read VmHWM. Unlike sampling, this
counts short-lived peaks. RSS is what the process really holds (live tensors plus glibc's retained
heap), i.e. what a user sees in `top`.

Load: a timed call on a shared machine is slower when other processes keep cores busy, so the
benchmarks record how many cores others used during each call (busy time of the machine from
/proc/stat minus this process's CPU time, per wall second) and can wait for quiet first.
"""
from __future__ import annotations

import os
import platform
import subprocess
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MiB = 2.0 ** 20
QUIET_CORES = 0.25  # a timed call counts as quiet when other processes kept fewer cores busy than this


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def hwm_bytes() -> int | None:
    """VmHWM, the RSS high-water mark of this process (None where /proc has none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_hwm() -> bool:
    """Reset the RSS high-water mark to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    hwm = hwm_bytes()
    return hwm is not None and hwm <= rss_bytes() + 64 * PAGE


def maxrss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def mem_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class RssSampler(threading.Thread):
    """Samples the RSS every `interval` seconds; .peak is the largest sample (a lower bound of the
    true peak: the fallback where clear_refs cannot be written)."""

    def __init__(self, interval: float = 0.002):
        super().__init__(daemon=True)
        self.interval, self.peak, self._halt = interval, rss_bytes(), threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, rss_bytes())
        return self.peak


def cpu_counters():
    """(busy CPU seconds of the whole machine from /proc/stat, CPU seconds of this process) or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:9]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal
    t = os.times()
    return busy / hz, t.user + t.system


def other_cores(c0, c1, wall: float):
    """Average number of cores that other processes (or the hypervisor: steal) kept busy."""
    if c0 is None or c1 is None or wall <= 0:
        return None
    return max(0.0, ((c1[0] - c0[0]) - (c1[1] - c0[1])) / wall)


def wait_quiet(limit: float) -> float:
    """Wait (up to `limit` seconds) until other processes keep fewer than QUIET_CORES cores busy,
    judged over 0.5 s windows. Returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        c0 = cpu_counters()
        time.sleep(0.5)
        o = other_cores(c0, cpu_counters(), 0.5)
        if o is None or o < QUIET_CORES:
            break
    return time.perf_counter() - start


def machine_info(device: str = "cpu") -> dict:
    """Platform, CPU model and core counts, memory, library versions (and the GPU on CUDA)."""
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L3 cache", "Hypervisor vendor", "Flags"):
                value = v.strip()
                if k.strip() == "Flags":  # only the vector extensions matter here
                    value = " ".join(f for f in value.split() if f.startswith(("avx", "fma", "amx")))
                info["lscpu " + k.strip()] = value
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["MemTotal"] = f.readline().split(":")[1].strip()
    except OSError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
