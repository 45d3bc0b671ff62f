"""Which backend HYPR runs (runtime/hypr.py resolve_backend) and the cpu target's build (ops/native.py):
"auto" resolves once and says why, an explicit backend that cannot run raises with the reason, a
machine without a C compiler (simulated with $CC and PATH) gets torch under "auto", the library
cache is content-addressed, and `hyprgen train` prints and records the backend it ran."""
import os
import tomllib

import pytest
import torch

import hyprgen
from hyprgen.cli import main
from hyprgen.errors import GeneratedFileError, HyprgenError
from hyprgen.ops import native

from ..helpers import tiny_run_argv

HAS_CC = native.compiler_problem() is None
needs_cc = pytest.mark.skipif(not HAS_CC, reason="no C compiler")


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """A machine without a C compiler: $CC unset and nothing on PATH."""
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))


@needs_cc
def test_auto_on_the_cpu_picks_the_compiled_target_and_says_why():
    learner = hyprgen.HYPR(hyprgen.RSNN(3, 5, 2, seed=0), chunk=4)
    assert (learner.requested_backend, learner.backend) == ("auto", "cpu")
    assert "C compiler" in learner.backend_reason
    assert [type(s).__name__ for s in learner.stages] == ["CpuStages", "CpuStages"]


def test_without_a_compiler_auto_is_torch_and_cpu_is_refused(no_compiler):
    net = hyprgen.RSNN(3, 5, 2, seed=0)
    learner = hyprgen.HYPR(net, chunk=4)
    assert learner.backend == "torch" and "no C compiler found" in learner.backend_reason
    with pytest.raises(ValueError, match=r"backend='cpu' compiles the neuron's C kernels, and here it cannot: "
                                         r"no C compiler found \(cc, gcc or clang on PATH; or set \$CC\)"):
        hyprgen.HYPR(net, chunk=4, backend="cpu")


def test_a_cc_that_is_not_a_compiler_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert native.compiler_problem() == f"no C compiler: $CC={str(tmp_path / 'no-such-cc')!r} is not an executable"
    fake = tmp_path / "fakecc"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    assert "exited with 3" in native.compiler_problem()


@needs_cc
def test_cpu_refuses_what_it_cannot_run():
    net = hyprgen.RSNN(3, 5, 2, seed=0)
    with pytest.raises(ValueError, match="backend='cpu' computes in float32 or float64; the network is torch.bfloat16"):
        hyprgen.HYPR(net.to(torch.bfloat16), chunk=4, backend="cpu")
    learner = hyprgen.HYPR(net.float(), chunk=4, backend="cpu")
    net.double()   # cast after the backend was chosen: refused, not switched
    x, y = torch.rand(2, 8, 3, dtype=torch.float64), torch.zeros(2, 8, dtype=torch.long)
    learner.step(x, y)   # float64 is a cpu dtype: runs
    net.half()
    with pytest.raises(ValueError, match="backend='cpu' runs float32 or float64 CPU tensors; the input is torch.float16"):
        learner.step(x.half(), y)


def test_options_that_belong_to_one_backend():
    net = hyprgen.RSNN(3, 5, 2, seed=0)
    assert hyprgen.HYPR(net, chunk=4, drop_spike_paths=True).backend == "torch"   # auto: the comparison option's
    with pytest.raises(ValueError, match="drop_spike_paths is a comparison option of backend='torch'"):
        hyprgen.HYPR(net, chunk=4, backend="cpu", drop_spike_paths=True)
    with pytest.raises(ValueError, match="bfloat16 needs backend='triton' on a CUDA device"):
        hyprgen.HYPR(net, chunk=4, trace_dtype=torch.bfloat16)


@needs_cc
def test_the_library_cache_is_content_addressed_and_never_rebuilt():
    source = "int hg_answer(void) { return 42; }\n"
    path = native.build_library(source, "answer")
    stamp = path.stat().st_mtime_ns
    assert native.build_library(source, "answer") == path and path.stat().st_mtime_ns == stamp
    assert native.load_library(source, "answer").hg_answer() == 42
    other = native.build_library(source.replace("42", "43"), "answer")
    assert other != path and other.parent == path.parent
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]   # no temporary left behind


@needs_cc
def test_a_compiler_error_is_one_clear_message():
    with pytest.raises(native.CompilerError, match="broken: the C compiler .* failed on the generated kernels"):
        native.build_library("int broken(void) { return }\n", "broken")


@needs_cc
def test_a_damaged_generated_c_file_is_not_compiled(tmp_path):
    spec = tmp_path / "myl.py"
    spec.write_text((hyprgen.paths.neurons_dir() / "lif.py").read_text().replace('Neuron("lif"', 'Neuron("myl"'))
    neuron = hyprgen.load(spec)
    c_file = os.path.join(os.path.dirname(neuron.__file__), "myl_cpu.c")
    with open(c_file, "a") as f:
        f.write("/* edited */\n")
    from hyprgen.runtime.stages import load_cpu_kernels
    with pytest.raises(GeneratedFileError, match="myl_cpu.c: not compiled: its content does not match the sha256"):
        load_cpu_kernels(neuron)


@needs_cc
@pytest.mark.parametrize("change", ["other", "none"])
def test_c_kernels_for_other_signatures_are_refused_not_called(change):
    """A compiled C file whose kernels take other arguments than this hyprgen passes (generated by
    another version: its <name>_abi() differs, or it has none) is refused when loaded, with the reason,
    instead of being called (a crash). The sealed file is bypassed here: the text goes to the compiler."""
    from hyprgen import loader
    from hyprgen.contract import CPU_ABI
    from hyprgen.ops.cpu_kernels import CpuKernels
    module = hyprgen.load("lif")
    source = loader.cpu_source(module)
    line = f'const char *lif_abi(void) {{ return "{CPU_ABI}"; }}'
    assert line in source
    source = source.replace(line, 'const char *lif_abi(void) { return "0123456789abcdef"; }' if change == "other" else "")
    found = "0123456789abcdef" if change == "other" else r"none \(written before kernels carried one\)"
    with pytest.raises(HyprgenError, match=rf"the cpu kernels of 'lif' were generated for other kernel signatures "
                                           rf"\(abi {found}; this hyprgen's: {CPU_ABI}\): rebuild them"):
        CpuKernels.load("lif", source, module.META["spec_hash"])


@needs_cc
def test_train_prints_and_records_the_backend_auto_picked(tmp_path, capsys, one_thread):
    assert main(["train", *tiny_run_argv(1, 1), "--out", str(tmp_path / "run")]) == 0
    assert "cpu backend" in capsys.readouterr().out
    config = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert config["backend"] == "cpu"
