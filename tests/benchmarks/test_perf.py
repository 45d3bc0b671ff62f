"""The performance suite (benchmarks/perf/): FLOP counts against torch's own counter, the runner's skip
rules, the targets' ratios, and a tiny end-to-end run (numbers are not asserted: CI is no benchmark)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import hyprgen
from benchmarks.perf import report, roofline, run
from benchmarks.perf.configs import HEADLINE_CHUNK, Config, suite_configs
from hyprgen.ops.merge import Traces
from hyprgen.runtime.stages import TorchStages

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("neuron", ["brf", "lif", "alif"])
def test_gemm_flops_of_the_roofline_model_equal_torch_flop_counter(neuron, one_thread):
    """The matrix-product FLOPs of stage_counts equal what torch counts on the torch backend's
    S-stage and merge (the elementwise neuron work c_f is not a matmul and not counted by torch)."""
    B, n, n_in, lam = 3, 5, 4, 6
    net = hyprgen.RSNN(n_in, n, 2, neuron=neuron, seed=0)
    layer, stages = net.layers[0], TorchStages(False)
    shape = roofline.layer_shape(dict(neuron=neuron, B=B, n=n, n_in=n_in))
    counts = roofline.stage_counts(lam=lam, c_f=0, c_J=0, **shape)
    x = torch.rand(lam, B, n_in)
    with torch.no_grad(), FlopCounterMode(display=False) as s_flops:  # as HYPR runs the stages
        _, kept, _ = stages.s_stage(layer, x, layer.init_state(B))
    with torch.no_grad():
        sweep, _ = stages.p_stage(layer, kept, torch.randn(lam, B, n))
    traces = Traces.zeros(B, n, layer.d, layer.m, len(layer.neuron.META["params"]), layer.W_in)
    with torch.no_grad(), FlopCounterMode(display=False) as m_flops:
        stages.merge(traces, sweep, kept.pre)
    assert s_flops.get_total_flops() == counts["s_stage"]["flops"]
    assert m_flops.get_total_flops() == counts["merge"]["flops"]


def test_elementwise_op_counts_grow_with_the_model():
    (lif_f, lif_j), (brf_f, brf_j) = roofline.elementwise_ops("lif"), roofline.elementwise_ops("brf")
    assert 0 < lif_f < brf_f and 0 < lif_j < brf_j


def result(config: Config, seconds: float, peak: float, baseline: float = 100e6) -> dict:
    return {"name": config.name, "config": config.to_dict(), "time_per_step_s": seconds / config.T,
            "time_s": {"median": seconds, "min": seconds, "max": seconds}, "baseline_bytes": baseline,
            "peak_bytes_max": peak, "peak_increase_bytes_median": peak - baseline, "learner_bytes": {"bytes": 1}}


def test_runner_estimates_from_the_largest_smaller_T_and_skips_with_a_reason(monkeypatch):
    monkeypatch.setattr(run, "mem_available_bytes", lambda: 10 * 2**30)
    bptt = {T: Config("brf", "bptt", "brf", T) for T in (256, 1024, 4096)}
    done = {bptt[256].name: result(bptt[256], 0.5, 200e6), bptt[1024].name: result(bptt[1024], 2.0, 1100e6)}
    est = run.estimate(bptt[4096], done)
    assert est["from_T"] == 1024
    assert est["peak_bytes"] == pytest.approx(100e6 + 1000e6 * 4)  # growth linear in T
    assert est["seconds"] == pytest.approx(run.STARTUP_S + 2.0 / 1024 * (5 * 4096 + 4096))
    assert run.skip_reason(bptt[4096], est, budget_s=1e9) is None
    monkeypatch.setattr(run, "mem_available_bytes", lambda: 3 * 2**30)
    assert run.skip_reason(bptt[4096], est, budget_s=1e9).startswith("would not fit")
    hypr = {T: Config("lif", "hypr", "lif", T, chunk=8) for T in (1024, 65536)}
    done = {hypr[1024].name: result(hypr[1024], 2.0, 300e6)}
    est = run.estimate(hypr[65536], done)
    assert est["peak_bytes"] == 300e6  # HYPR's memory does not grow with T
    assert "time budget" in run.skip_reason(hypr[65536], est, budget_s=60)
    required = Config("brf", "hypr", "brf", 65536, chunk=HEADLINE_CHUNK, required=True)
    assert run.skip_reason(required, est, budget_s=60) is None
    assert run.estimate(hypr[1024], done) is None  # nothing smaller measured: run it
    eprop = {T: Config("brf", "eprop", "brf", T) for T in (256, 1024)}
    est = run.estimate(eprop[1024], {eprop[256].name: result(eprop[256], 8.0, 400e6)})
    per_step = 32 * (4 * 64 + 4 * 10 + 8)  # EProp holds the whole input, outputs and targets
    assert est["peak_bytes"] == pytest.approx(400e6 + 768 * per_step)


def test_suites_mark_what_the_targets_need_as_required():
    brf = suite_configs("brf")
    required = {c.name for c in brf if c.required}
    # issue 6's targets read the torch backend's HYPR at the headline λ (the cpu target's rows are not required)
    assert required == {c.name for c in brf if (c.method == "hypr" and c.chunk == HEADLINE_CHUNK and c.backend == "torch")
                        or c.method == "bptt"}
    assert {c.backend for c in brf if c.method == "hypr"} == {"torch", "cpu"}
    assert not any(c.required for c in suite_configs("lif") + suite_configs("cue"))
    assert {c.T for c in suite_configs("cue")} == {256, 1024, 4096}


def test_targets_are_the_measured_ratios():
    runs = []
    for T, peak in ((1024, 300e6), (16384, 305e6), (65536, 310e6)):
        runs.append(result(Config("brf", "hypr", "brf", T, chunk=HEADLINE_CHUNK), 1e-3 * T, peak))
    runs.append(result(Config("brf", "hypr", "brf", 4096, chunk=HEADLINE_CHUNK), 4.096, 300e6))
    runs.append(result(Config("brf", "hypr", "brf", 4096, chunk=32), 8.192, 300e6))  # slower: not the best λ
    runs.append(result(Config("brf", "bptt", "brf", 16384), 20.0, 6100e6))
    runs.append(result(Config("brf", "bptt", "brf", 4096), 3.2, 1600e6))
    runs.append(result(Config("brf", "eprop", "brf", 1024), 51.2, 400e6))
    runs.append(result(Config("brf", "hypr", "brf", 1024, chunk=HEADLINE_CHUNK), 1.024, 300e6))
    got = {t["target"].split(" ")[0] + str(i): t for i, t in enumerate(report.targets(runs))}
    ratios = [t["ratio"] for t in got.values()]
    assert ratios == pytest.approx([310 / 300, 6100 / 305, 50e-3 / 1e-3, 1e-3 / (3.2 / 4096)])
    assert [t["met"] for t in got.values()] == [True, True, True, True]


def test_quick_benchmark_writes_results_tables_and_plots(tmp_path):
    out = tmp_path / "bench"
    only = ["lif_lif_hypr_l8_T64", "lif_lif_bptt_T64", "lif_lif_snntorch_T64", "lif_lif_bptt_T256"]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.perf", "--quick", "--suite", "lif", "--reps", "1",
                           "--out", str(out), "--only", *only], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in only:
        r = json.loads((out / "runs" / f"{name}.json").read_text())
        assert "error" not in r, r.get("error")
        assert len(r["times_s"]) == 1 and r["time_s"]["median"] > 0 and r["peak_bytes_max"] > 0
        assert r["learner_bytes"]["bytes"] > 0
    bptt = json.loads((out / "runs" / "lif_lif_bptt_T256.json").read_text())
    small = json.loads((out / "runs" / "lif_lif_bptt_T64.json").read_text())
    assert bptt["learner_bytes"]["bytes"] > 3 * small["learner_bytes"]["bytes"]  # BPTT's graph grows with T
    summary = (out / "summary.md").read_text()
    assert "| HYPR λ=8 |" in summary and "| snnTorch BPTT |" in summary
    assert (out / "peak_memory_vs_T.png").stat().st_size > 0
    # a second run keeps what is measured
    again = subprocess.run([sys.executable, "-m", "benchmarks.perf", "--quick", "--suite", "lif", "--reps", "1",
                            "--out", str(out), "--only", only[0]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "kept" in again.stdout


def test_workloads_build_their_learners_with_the_one_factory():
    from benchmarks.perf.workloads import Workload
    from hyprgen.runtime import BPTT, HYPR, EProp

    small = dict(n=4, n_in=3, n_out=2, B=2)
    hypr = Workload(Config("lif", "hypr", "lif", 16, chunk=8, backend="triton", **small)).learner
    assert isinstance(hypr, HYPR) and (hypr.chunk, hypr.backend) == (8, "triton")
    assert isinstance(Workload(Config("lif", "bptt", "lif", 16, **small)).learner, BPTT)
    assert isinstance(Workload(Config("lif", "eprop", "lif", 16, **small)).learner, EProp)


@pytest.mark.parametrize("readout_memory", [False, True], ids=["same_step", "readout_memory"])
def test_learner_bytes_count_the_configurations_rule(readout_memory):
    """A same-step HYPR configuration reports the traces it carries (ε, ε_b, Θ and the states), not
    those of the default rule, whose readout memory adds the traces G (R·ε under an LI readout)."""
    from benchmarks.perf.workloads import Workload
    config = Config("brf", "hypr", "brf", 16, chunk=4, n=6, n_in=3, n_out=4, B=2, readout_memory=readout_memory)
    workload = Workload(config)
    expected = hyprgen.HYPR(workload.model, chunk=4, backend="torch", readout_memory=readout_memory).carried_bytes(2)
    assert workload.learner_bytes()["bytes"] == expected
    if not readout_memory:
        with_memory = hyprgen.HYPR(workload.model, chunk=4, backend="torch", readout_memory=True).carried_bytes(2)
        assert expected < with_memory, "the premise: readout memory carries more"
