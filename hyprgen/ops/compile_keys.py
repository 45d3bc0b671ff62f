"""Which compiled binary Triton would use for a kernel launch on CUDA, found without a GPU.

Runtime values (B, T, λ, number of chunks) must not trigger a recompile; constexprs do. Tests run on
CPU under Triton's interpreter, which compiles nothing, so they compare `compile_key`s instead of
counting compilations: equal keys, one binary. On CUDA, JITFunction.run specializes the arguments
(`native_specialize_impl`: an int equal to 1 becomes a constexpr; an int divisible by 16 or a
16-aligned data_ptr() gets "D", i.e. tt.divisibility = 16; an int ≥ 2^31 is i64; a do_not_specialize
int keeps its type only, ("i32", None), even when 1) and caches binaries per device under
str(specialization) + str(options) (`compute_cache_key`), compiling on a miss.

Rather than copy those rules, `compile_info` runs JITFunction.run itself on a simulated CUDA device:
`driver.set_active` installs an object answering the driver calls run makes before compiling, and
`knobs.runtime.jit_cache_hook`, called on a cache miss with key, signature, constexprs and attrs,
returns True so run neither compiles nor launches (a fresh device id per call: an empty cache).
Relies on JITFunction.run calling _call_hook(jit_cache_hook) before compiling and on device_caches
(Triton 3.4 to 3.9), and on the driver's private state (`_active`; a plain `active` on 3.4);
tests/ops/test_compile_keys.py checks it against real sm_90 compilations (bundled ptxas, no GPU), and
benchmarks/triton_compat.sh runs those tests on Triton 3.4 and 3.6. Not thread-safe.
"""
import contextlib
import functools

from triton import knobs
from triton.backends.compiler import GPUTarget
from triton.runtime.driver import driver
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

SM90 = GPUTarget("cuda", 90, 32)


class _SimulatedDriver:   # what JITFunction.run asks of the driver before compiling; a new device id
    def __init__(self, target):
        self.device, self.get_current_target = object(), lambda: target
        self.get_current_device, self.get_current_stream = lambda: self.device, lambda device: 0


@contextlib.contextmanager
def simulated_cuda(target: GPUTarget = SM90):
    """Triton's runtime sees a `target` device (kernels compile, nothing launches); yields its id."""
    previous = _active_driver()
    driver.set_active(sim := _SimulatedDriver(target))
    try:
        yield sim.device
    finally:
        driver.set_active(previous)


def _active_driver():
    """The driver Triton's runtime will use, left uncreated: `driver.active` creates it on Triton 3.5+
    (failing on a machine without a GPU); there it is `_active` (None until first used), on 3.4 the
    plain attribute `active` (a lazy proxy)."""
    state = vars(driver)
    return state["_active"] if "_active" in state else state.get("active")


@functools.cache
def _jit_of(kernel: InterpretedFunction) -> JITFunction:
    """Same options as triton.jit gave it (a bare InterpretedFunction(fn) has no do_not_specialize)."""
    keep = ("do_not_specialize", "do_not_specialize_on_alignment", "debug")
    given = kernel.kwargs if hasattr(kernel, "kwargs") else kernel.rewriter.kwargs   # Triton 3.4: on its rewriter
    return JITFunction(kernel.fn, **{k: v for k, v in given.items() if k in keep})


def compile_info(kernel, *args, target: GPUTarget = SM90, **kwargs) -> dict:
    """key, signature, constexprs and attrs (tt.divisibility) of the binary that kernel[grid](*args,
    **kwargs) would compile or reuse on a `target` device. kernel: JITFunction or InterpretedFunction."""
    jit = kernel if isinstance(kernel, JITFunction) else _jit_of(kernel)
    seen = {}

    def hook(*, key, compile, **_):
        seen.update(key=key, signature=compile["signature"], constexprs=compile["constants"],
                    attrs=compile["configs"][0])
        return True   # skip compiling; run returns None

    with simulated_cuda(target) as device:
        previous, knobs.runtime.jit_cache_hook = knobs.runtime.jit_cache_hook, hook
        try:
            jit.run(*args, grid=(1,), warmup=True, **kwargs)
        finally:
            knobs.runtime.jit_cache_hook = previous
            jit.device_caches.pop(device, None)
    if not seen:
        raise RuntimeError("JITFunction.run never called jit_cache_hook: has Triton's runtime changed?")
    return seen


def compile_key(kernel, *args, **kwargs) -> str:
    """JITFunction.run's cache key for this launch on CUDA (target=SM90 by default): equal keys, one binary."""
    return compile_info(kernel, *args, **kwargs)["key"]
