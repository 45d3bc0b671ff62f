"""`hyprgen build --verify SPEC` and `hyprgen build --aot ARCHS` (no GPU: interpreter and triton.compile)."""
import re

import hyprgen
from hyprgen.loader import load_kernels as load_triton
from hyprgen.paths import shipped_specs
from hyprgen.cli import main
from hyprgen.verify import verify

from ..compiler.test_build import user_spec

STAGES = ("S-stage", "P-stage", "merge", "HYPR step")


def test_verify_a_user_spec(tmp_path, capsys):
    """A new neuron is built and each of its kernels checked against the torch backend."""
    assert main(["build", "--verify", str(user_spec(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert all(stage in out for stage in STAGES)
    n_checks = len(re.findall(r"^  (S-stage|P-stage|merge|HYPR step) ", out, re.M))
    assert f"{n_checks}/{n_checks} outputs within tolerance" in out and "FAIL" not in out


def test_verify_catches_kernels_of_another_neuron(capsys):
    """BRF's torch module with brf_exp's kernels (same d and p, b' = exp(·) instead of |·|): the S-stage
    agrees only where both transforms agree, so the verification must fail, naming the outputs."""
    checks, _ = verify(hyprgen.load("brf"), load_triton(hyprgen.load("brf_exp")))
    failed = {(c.stage, c.output) for c in checks if not c.ok}
    assert ("S-stage", "r_out") in failed and ("P-stage", "q0") in failed


def test_aot_report_every_shipped_kernel_for_sm90(tmp_path, capsys):
    """Every kernel variant of every shipped neuron compiles for sm_90; no spills except the fused
    recurrent S-stage beyond n = 128 (docs/kernels.md)."""
    report = tmp_path / "aot.md"
    assert main(["build", "--aot", "sm_90", "--aot-report", str(report)]) == 0
    rows = [line.split("|")[1:-1] for line in report.read_text().splitlines() if line.startswith("| sm_")]
    neurons = {r[1].strip() for r in rows if r[2].strip() == "p_stage"}
    assert neurons == {p.stem for p in shipped_specs()}
    for arch, neuron, kernel, variant, warps, registers, spill_stores, spill_loads, shared in rows:
        assert int(registers) > 0
        large_fused = kernel.strip() == "s_stage" and (m := re.search(r"recurrent, n=(\d+)", variant)) \
            and int(m.group(1)) > 128
        if not large_fused:
            assert int(spill_stores) == int(spill_loads) == 0, (neuron, kernel, variant)
