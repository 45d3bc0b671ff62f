"""Which merge_kernel launches share a compiled binary on CUDA, checked on CPU (hyprgen.ops.compile_keys).

B and λ are do_not_specialize, so batch size and chunk length never recompile; constexprs do; n and m
get Triton's usual variants (divisible by 16 or not, equal to 1). `test_keys_match_real_compilations`
compiles merge_kernel for sm_90 on this machine (JITFunction.run under a simulated driver, the
triton wheel's ptxas, no GPU) and counts the compilations, so compile_key is checked against
Triton's real behaviour, not against a copy of its rules.
"""
import re

import pytest
import torch
import triton
from triton import knobs
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

from hyprgen.ops.merge import NOT_SPECIALIZED, compiled_merge_kernel, merge_config
from hyprgen.ops.compile_keys import compile_info, compile_key, simulated_cuda

D = 2
POINTERS = [torch.zeros(16) for _ in range(8)]   # CPU tensors stand in for the 8 pointers


def args(B=3, n=40, m=48, lam=7, pointers=POINTERS):
    return (*pointers, B, n, m, lam)


def key(B=3, n=40, m=48, lam=7, config_lam=7, pointers=POINTERS, **overrides):
    """compile_key of a launch; the constexprs as merge_config sets them for chunk length config_lam."""
    config = {**merge_config(40, 48, D, config_lam), **overrides}
    return compile_key(compiled_merge_kernel(), *args(B, n, m, lam, pointers), **config)


def test_pointers_are_aligned():
    assert all(p.data_ptr() % 16 == 0 for p in POINTERS)


@pytest.mark.parametrize("config_lam", [7, 64])   # the rank-1 (USE_DOT=False) and the tl.dot variant
def test_batch_and_chunk_length_share_one_binary(config_lam):
    keys = {key(B, lam=lam, config_lam=config_lam) for B in (3, 16, 32, 1) for lam in (7, 16, 64, 1)}
    assert len(keys) == 1


def test_at_most_two_variants_over_chunk_lengths():
    """merge_config switches USE_DOT at λ = 16: two binaries for all λ (and B)."""
    keys = {compile_key(compiled_merge_kernel(), *args(B, lam=lam), **merge_config(40, 48, D, lam))
            for lam in range(1, 80) for B in (1, 5)}
    assert len(keys) == 2


def test_one_is_not_special_for_do_not_specialize_args():
    """B = λ = 1 stays a runtime i32 (no constexpr, no divisibility); n = 1 becomes a constexpr."""
    info = compile_info(compiled_merge_kernel(), *args(B=1, lam=1), **merge_config(40, 48, D, 7))
    assert info["signature"]["B"] == info["signature"]["lam"] == "i32"
    B, n, lam = (compiled_merge_kernel().arg_names.index(a) for a in ("B", "n", "lam"))
    assert (B,) not in info["attrs"] and (lam,) not in info["attrs"]   # ("i32", None): no attribute at all
    assert key(B=1, lam=1) == key(B=3, lam=7)
    one = compile_info(compiled_merge_kernel(), *args(n=1), **merge_config(40, 48, D, 7))
    assert one["signature"]["n"] == "constexpr" and one["constexprs"][(n,)] == 1
    assert key(n=1) != key(n=40)


def test_int32_overflow_changes_the_type():
    """Even a do_not_specialize int becomes i64 at 2^31: a second binary (not reachable for B or λ in practice)."""
    assert compile_info(compiled_merge_kernel(), *args(B=2**31), **merge_config(40, 48, D, 7))["signature"]["B"] == "i64"
    assert key(B=2**31) != key(B=3)


@pytest.mark.parametrize("override", [dict(BLOCK_M=32), dict(BLOCK_N=4), dict(USE_DOT=True), dict(D=1, D_PAD=1),
                                      dict(DOT_PRECISION="tf32"), dict(num_warps=8)])
def test_constexprs_and_options_change_the_binary(override):
    assert key(**override) != key()


def test_divisibility_by_16_of_n_and_m():
    assert key(n=40) == key(n=56) != key(n=48) == key(n=32)
    assert key(m=48) == key(m=1024) != key(m=47) == key(m=100)
    n = compiled_merge_kernel().arg_names.index("n")
    attrs = lambda n_: compile_info(compiled_merge_kernel(), *args(n=n_), **merge_config(40, 48, D, 7))["attrs"]  # noqa: E731
    assert attrs(48)[(n,)] == [["tt.divisibility", 16]] and attrs(40)[(n,)] == []


def test_pointer_alignment():
    misaligned = [*POINTERS[:-1], torch.zeros(17)[1:]]   # data_ptr ≡ 4 (mod 16)
    assert key(pointers=misaligned) != key()
    info = compile_info(compiled_merge_kernel(), *args(pointers=misaligned), **merge_config(40, 48, D, 7))
    assert info["attrs"][(7,)] == [] and info["attrs"][(6,)] == [["tt.divisibility", 16]]


def test_interpreted_function_gives_the_same_key():
    """An InterpretedFunction is keyed as the JITFunction of its fn with the options triton.jit gave it."""
    fn, config = compiled_merge_kernel().fn, merge_config(40, 48, D, 7)
    interpreted = InterpretedFunction(fn, do_not_specialize=NOT_SPECIALIZED)
    assert compile_key(interpreted, *args(), **config) == compile_key(compiled_merge_kernel(), *args(), **config)
    assert compile_key(interpreted, *args(B=5), **config) == compile_key(interpreted, *args(B=6), **config)


@pytest.mark.skipif("nvidia" not in triton.backends.backends, reason="needs Triton's NVIDIA backend (not a GPU)")
def test_keys_match_real_compilations(monkeypatch, tmp_path):
    """Launch a fresh merge_kernel on a simulated sm_90 device: JITFunction.run compiles for real (to a cubin) and
    only skips the launch. It compiles once per distinct compile_key, and caches the binaries under those keys."""
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))   # compile, don't reuse a developer's cache
    compiled = []
    monkeypatch.setattr(knobs.runtime, "jit_post_compile_hook", lambda *, key, **_: compiled.append(key))
    kernel = JITFunction(compiled_merge_kernel().fn, do_not_specialize=NOT_SPECIALIZED)
    launches = [args(B, n, 48, lam) for B, n, lam in
                [(3, 40, 7), (1, 40, 1), (32, 40, 5), (16, 40, 16), (1, 40, 64), (3, 48, 7), (2, 48, 3)]]
    configs = [merge_config(a[9], a[10], D, a[11]) for a in launches]
    with simulated_cuda() as device:
        binaries = [kernel.run(*a, grid=(1,), warmup=True, **c) for a, c in zip(launches, configs)]
        cache = kernel.device_caches[device][0]
    keys = [compile_key(kernel, *a, **c) for a, c in zip(launches, configs)]
    assert len(set(keys)) == 3                         # rank-1 path, tl.dot path, rank-1 path with 16 | n
    assert compiled == list(dict.fromkeys(keys))       # one compilation per new key, in launch order
    assert set(cache) == set(keys)
    assert all(b is cache[k] for b, k in zip(binaries, keys))
    for binary, a in zip(binaries, launches):          # what the compiler got: B and λ plain runtime i32s
        sig = re.search(r"tt\.func public @merge_kernel\((.*?)\) attributes", binary.asm["ttir"], re.S).group(1)
        found = re.findall(r"%\w+: ([^ ,{]+)( \{tt\.divisibility = 16)?", sig)   # %B, or %arg8 before Triton 3.5
        params = {p: (ty, bool(div)) for p, (ty, div) in zip(kernel.arg_names, found)}  # in argument order
        assert params["B"] == params["lam"] == ("i32", False) and params["m"] == ("i32", True)
        assert params["n"] == ("i32", a[9] % 16 == 0) and "cubin" in binary.asm
