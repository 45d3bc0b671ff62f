"""`hyprgen build --verify SPEC` and `hyprgen build --aot ARCHS` (no GPU: interpreter and triton.compile)."""
import re

import pytest
import torch

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
    reports = re.findall(r"^(\d+)/(\d+) outputs within tolerance", out.replace("  ", ""), re.M)
    assert "Triton kernels vs torch" in out and "C (cpu target) kernels vs torch" in out
    n_checks = len(re.findall(r"^  (S-stage|P-stage|merge|HYPR step) ", out, re.M))
    assert len(reports) == 2 and all(k == n for k, n in reports) and sum(int(n) for _, n in reports) == n_checks
    assert "FAIL" not in out


def test_verify_catches_kernels_of_another_neuron(capsys):
    """BRF's torch module with brf_exp's kernels (same d and p, b' = exp(·) instead of |·|): the S-stage
    agrees only where both transforms agree, so the verification must fail, naming the outputs."""
    checks, _ = verify(hyprgen.load("brf"), load_triton(hyprgen.load("brf_exp")))
    failed = {(c.stage, c.output) for c in checks if not c.ok}
    assert ("S-stage", "r_out") in failed and ("P-stage", "q0") in failed


def test_aot_report_every_shipped_kernel_for_sm90(tmp_path, capsys):
    """Every kernel variant of every shipped neuron compiles for sm_90 without register spills, the
    fused recurrent S-stage at n = 256 and 512 included (its neuron tiles, docs/kernels.md)."""
    report = tmp_path / "aot.md"
    assert main(["build", "--aot", "sm_90", "--aot-report", str(report)]) == 0
    rows = [line.split("|")[1:-1] for line in report.read_text().splitlines() if line.startswith("| sm_")]
    neurons = {r[1].strip() for r in rows if r[2].strip() == "p_stage"}
    assert neurons == {p.stem for p in shipped_specs()}
    assert {r[3].strip() for r in rows if r[2].strip() == "s_stage"} >= {"recurrent, n=256", "recurrent, n=512"}
    for arch, neuron, kernel, variant, warps, registers, spill_stores, spill_loads, shared in rows:
        assert int(registers) > 0
        assert int(spill_stores) == int(spill_loads) == 0, (neuron, kernel, variant)


@pytest.mark.parametrize("neuron", [p.stem for p in shipped_specs()])
def test_fused_s_stage_tiles_do_not_spill_on_sm80(neuron):
    """The fused recurrent S-stage beyond REGISTER_N (one binary for every n, here 512) keeps one neuron
    tile in registers on sm_80 too: no spills, and one program (16 warps) fits an SM's 64 K registers."""
    from hyprgen.ops.aot import compile_variant, resources, shipped_kernels

    kernels = load_triton(hyprgen.load(neuron))
    tiled = next(v for v in shipped_kernels(kernels) if v.form == "recurrent, n=512")
    assert tiled.config["TILED"]
    res = resources(compile_variant(tiled, 80))
    assert res["spill_stores"] == res["spill_loads"] == 0, res
    assert res["registers"] * 32 * tiled.config["num_warps"] <= 65536


# ----------------------------------------------------------------------------------------------
# What verify says about its own test problem (issue 17, item 5)

FHN = """\
from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import fast_sigmoid

neuron = Neuron("fhn", doc="FitzHugh-Nagumo, Euler dt = 0.5; the cubic diverges under a strong input")
v = neuron.state("v", init=-1.2)
w = neuron.state("w", init=-0.6)
a = neuron.param("a", init=uniform(0.6, 0.8), clamp=(0, 2))
v_new = neuron.let("v_new", v + 0.5 * (v - v**3 / 3 - w + neuron.input))
w_new = neuron.let("w_new", w + 0.5 * 0.08 * (v + a - 0.8 * w))
neuron.spike(v_new - 3.5, surrogate=fast_sigmoid())
neuron.update(v, v_new)
neuron.update(w, w_new)
"""

FIVE_STATES = """\
import sympy as sp
from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import fast_sigmoid

neuron = Neuron("five", doc="a chain of five leaky states: d = 5")
xs = [neuron.state(f"x{i}") for i in range(5)]
tau = neuron.param("tau", init=uniform(5, 25), clamp=(1, None))
alpha = sp.exp(-1 / tau)
new = [neuron.let(f"n{i}", alpha * xs[i] + (1 - alpha) * (neuron.input if i == 0 else xs[i - 1])) for i in range(5)]
neuron.spike(new[4] - 0.1, surrogate=fast_sigmoid())
for x, e in zip(xs, new):
    neuron.update(x, e)
"""


def _reference_at(module, scale):
    """(finite, firing rate) of the torch reference on verify's problem at an input scale, judged here
    with plain forward passes of its network on both of its inputs (the layer's λ steps, and the
    HYPR step's longer sequence): every state and output must be finite."""
    from hyprgen.verify import make_problem

    p = make_problem(module, scale, torch.device("cpu"), seed=0)
    tensors = []
    with torch.no_grad():
        for x in (p.h.transpose(0, 1), p.x_long):
            out, states, recorded = p.net(x, record=True)
            tensors += [out, *recorded] + [t for s in states for t in (*s.r, s.o)]
        rate = p.net(p.h.transpose(0, 1), record=True)[2][0].mean().item()
    return all(torch.isfinite(t).all().item() for t in tensors), rate


def _stated(out: str) -> tuple[float, float]:
    m = re.search(r"input scale (\S+), layer firing rate ([\d.]+)%", out)
    assert m, out
    return float(m.group(1)), float(m.group(2)) / 100


def test_verify_says_when_the_reference_itself_diverges_and_takes_a_smaller_scale(tmp_path, capsys):
    """The issue's FitzHugh–Nagumo case: the scale search reached an input at which the torch reference
    is NaN, and every kernel 'failed'. Verify must name that scale and check at a smaller one."""
    from hyprgen.verify import SCALES

    path = tmp_path / "fhn.py"
    path.write_text(FHN)
    module = hyprgen.load(path)
    first_bad = next(s for s in SCALES if not _reference_at(module, s)[0])
    code = main(["build", "--verify", str(path)])
    out = capsys.readouterr().out
    assert f"the reference itself is not finite at input scale {first_bad:g}" in out, out
    scale, rate = _stated(out)
    finite, expected_rate = _reference_at(module, scale)
    assert scale < first_bad and finite
    assert abs(rate - expected_rate) < 1e-3, (rate, expected_rate)
    assert code == 0 and "FAIL" not in out, out


def test_verify_input_scale_halves_until_the_reference_is_finite(tmp_path, capsys):
    path = tmp_path / "fhn.py"
    path.write_text(FHN)
    module = hyprgen.load(path)
    assert main(["build", "--verify", str(path), "--input-scale", "64"]) == 0
    out = capsys.readouterr().out
    scale, _ = _stated(out)
    tried = [64 / 2**k for k in range(8) if 64 / 2**k > scale]
    assert tried and all(not _reference_at(module, s)[0] for s in tried)
    for s in tried:
        assert f"the reference itself is not finite at input scale {s:g}" in out, out
    assert _reference_at(module, scale)[0]


def test_verify_input_scale_is_used_as_given(tmp_path, capsys):
    path = user_spec(tmp_path)
    assert main(["build", "--verify", str(path), "--input-scale", "3"]) == 0
    scale, rate = _stated(capsys.readouterr().out)
    assert scale == 3 and abs(rate - _reference_at(hyprgen.load(path), 3)[1]) < 1e-3


@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf"])
def test_verify_input_scale_must_be_positive_and_finite(tmp_path, capsys, value):
    assert main(["build", "--verify", str(user_spec(tmp_path)), "--input-scale", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyprgen: error: --input-scale") and err.count("\n") == 1, err


def test_verify_states_a_firing_rate_below_its_bound(tmp_path, capsys):
    """A threshold no input scale reaches: verify still checks the kernels, but says that the layer
    fires on less than the 2 % it aims for, with the rate reached."""
    from hyprgen.verify import ACTIVE

    path = user_spec(tmp_path, theta=1e4)
    assert main(["build", "--verify", str(path)]) == 0
    out = capsys.readouterr().out
    scale, rate = _stated(out)
    assert rate < ACTIVE[0] and abs(rate - _reference_at(hyprgen.load(path), scale)[1]) < 1e-3
    assert re.search(rf"fires on {rate:.1%} .*below the {ACTIVE[0]:.0%}", out.replace("%", "%")), out


def test_verify_of_a_moderate_neuron_has_no_note(tmp_path, capsys):
    assert main(["build", "--verify", str(user_spec(tmp_path))]) == 0
    out = capsys.readouterr().out
    _, rate = _stated(out)
    assert "note:" not in out and 0.02 <= rate <= 0.6


def test_verify_of_a_neuron_the_triton_kernels_do_not_support_checks_the_c_kernels(tmp_path, capsys):
    """d = 5 carried components: the Triton target handles d ≤ 4 (ops/merge.py MAX_D), which verify says in
    one line; the cpu target has no such limit, and its kernels are checked."""
    from hyprgen.ops.merge import MAX_D

    path = tmp_path / "five.py"
    path.write_text(FIVE_STATES)
    assert main(["build", "--verify", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    note = next(line for line in out.splitlines() if "Triton kernels not checked" in line)
    assert "d = 5" in note and f"d ≤ {MAX_D}" in note and "backend='torch' or 'cpu'" in note, note
    assert "five: C (cpu target) kernels vs torch backend" in out and "FAIL" not in out


def test_verify_checks_the_cpu_target_and_catches_kernels_of_another_neuron(capsys):
    """The C kernels are verified too: brf's with brf_exp's C kernels fail where the transforms differ."""
    from hyprgen.runtime.stages import load_cpu_kernels

    checks, _ = verify(hyprgen.load("brf"), load_cpu_kernels(hyprgen.load("brf")), target="cpu")
    assert checks and all(c.ok for c in checks)
    checks, _ = verify(hyprgen.load("brf"), load_cpu_kernels(hyprgen.load("brf_exp")), target="cpu")
    failed = {(c.stage, c.output) for c in checks if not c.ok}
    assert ("S-stage", "r_out") in failed and ("P-stage", "q0") in failed
