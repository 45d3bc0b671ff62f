"""The device check (benchmarks/device_check/): its dry run end to end (the CI run that keeps the GPU
script from rotting), the partial report of a budget that runs out, and the rules it decides by: the
grid's order and coverage, what an estimate rules out, a step killed at its limit, running from a
checkout without pip, the roofline bound. Numbers are not asserted: CI is no benchmark."""
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.device_check import bench, plan, steps
from benchmarks.device_check.budget import Budget
from benchmarks.device_check.run import command_step
from benchmarks.perf import roofline
from benchmarks.perf.configs import Config

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["runtime", "tests", "verify brf", "verify adex", "bench"]


def device_check(out: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.device_check", "--dry-run", "--out", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_dry_run_writes_the_report_of_every_step(tmp_path):
    proc = device_check(tmp_path, "--budget-s", "400", timeout=600)   # its default (110 s) is for an idle machine
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["bench.jsonl", "bench.log", "device_check.json", "device_check.md", "tests.log",
                     "verify_adex.log", "verify_brf.log"]   # at most 8 files come back from the GPU machine
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["mode"] == "dry-run" and report["finished"] and report["not_done"] == [], report["not_done"]
    assert [s["name"] for s in report["steps"]] == STEPS
    assert all(s["status"] == "passed" for s in report["steps"]), [(s["name"], s.get("tail")) for s in report["steps"]]
    env = report["environment"]
    assert {"python", "torch", "triton", "gpu"} <= env.keys() and env["gpu"] is None

    runtime = report["steps"][0]["summary"]
    assert runtime["kernels"] == "interpreted" and runtime["ok"]
    assert not runtime["sympy_imported"] and not runtime["compiler_imported"]   # no build on the runtime path
    tests = report["steps"][1]["summary"]
    assert tests["passed"] > 0 and tests["failures"] == tests["errors"] == 0
    for verify in report["steps"][2:4]:
        assert verify["summary"]["within"] == verify["summary"]["outputs"] > 0

    results = {r["name"]: r for r in report["bench"]["results"]}
    assert list(results) == [c.name for c in plan.bench_configs(plan.DRY_RUN)]
    for r in results.values():
        assert r["time_s"]["median"] > 0 and r["peak_bytes_max"] > 0
    for name, r in results.items():   # the same sequence through both backends: the same loss
        if r["config"]["backend"] == "triton":
            torch_loss = results[name.replace("_triton", "")]["loss"]
            assert r["loss"] == pytest.approx(torch_loss, rel=1e-5)
    rows = report["bench"]["roofline"]
    assert {r["stage"] for r in rows} == {"s_stage", "p_stage", "merge"}
    assert all(r["bound_s"] > 0 and r["measured_s"] > 0 for r in rows)
    events = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    assert {e["name"] for e in events if "result" in e} == set(results)

    md = (tmp_path / "device_check.md").read_text()
    for heading in ("## Steps", "## Time per sequence and peak memory", "## Memory against T", "## Roofline",
                    "## Environment"):
        assert heading in md
    assert "**Complete**" in md and "## Not done" not in md


def test_a_budget_that_runs_out_gives_a_partial_report_of_what_was_skipped(tmp_path):
    proc = device_check(tmp_path, "--budget-s", "6", timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["finished"] and report["environment"]["torch"]
    assert [(s["name"], s["status"]) for s in report["steps"][:4]] == [(name, "skipped") for name in STEPS[:4]]
    assert all("time budget" in s["reason"] for s in report["steps"][:4])
    assert report["bench"]["results"] == []
    skipped = {d["what"]: d["why"] for d in report["not_done"]}
    assert set(STEPS[:4]) | {c.name for c in plan.bench_configs(plan.DRY_RUN)} <= set(skipped)
    md = (tmp_path / "device_check.md").read_text()
    assert "**Partial**" in md and "## Not done" in md and "- verify brf: time budget" in md


def test_a_step_past_its_limit_is_killed_and_reported_as_cut_off():
    budget = Budget(seconds=1.0, reserve=0.0)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    step = command_step("sleep", sleeper, estimate=0.0, cap=60.0, budget=budget, env=None)
    assert step["status"] == "cut off" and step["returncode"] is None
    assert command_step("again", sleeper, 0.0, 60.0, budget, None)["status"] == "skipped"   # nothing left


def test_budget_rules_out_what_would_not_fit():
    now = [0.0]
    budget = Budget(seconds=100.0, reserve=10.0, clock=lambda: now[0])
    assert budget.left() == 90 and budget.rules_out(80) is None and budget.limit(200) == 90
    now[0] = 50.0
    assert "estimated 80 s > 40 s left" in budget.rules_out(80) and budget.limit(30) == 30
    now[0] = 95.0
    assert budget.left() == 0 and budget.rules_out(None) == "time budget used up"


def test_the_gpu_grid_is_the_issues_and_runs_the_short_sequences_first():
    configs = plan.bench_configs(plan.GPU)
    hypr = {(c.backend, c.B, c.n, c.T, c.chunk) for c in configs if c.method == "hypr"}
    bptt = {(c.B, c.n, c.T) for c in configs if c.method == "bptt"}
    issue = dict(B=(32, 128), n=(256, 1024), T=(1024, 16384), lam=(64, 128))
    assert hypr == set(itertools.product(("triton", "torch"), issue["B"], issue["n"], issue["T"], issue["lam"]))
    assert bptt == set(itertools.product(issue["B"], issue["n"], issue["T"]))
    assert len({c.name for c in configs}) == len(configs) == 40
    assert all(c.device == "cuda" and c.neuron == "brf" for c in configs)
    first = configs[0]
    assert (first.backend, first.B, first.n, first.chunk, first.T) == ("triton", 128, 1024, 128, 1024)
    Ts = [c.T for c in configs]
    assert Ts == sorted(Ts)                       # every short T before any long one
    long = [plan.kind(c) for c in configs if c.T == 16384]
    assert long == sorted(long, key=["triton", "bptt", "torch"].index)


def measured(config: Config, time_per_step: float, peak: float) -> dict:
    return {"name": config.name, "config": config.to_dict(), "time_per_step_s": time_per_step,
            "baseline_bytes": 0, "peak_increase_bytes_median": peak}


def test_the_worker_fits_each_configuration_to_the_time_and_memory_left():
    short = Config("device_B2_n8", "bptt", "brf", 1000, reps=3, warmup_steps=10)
    long = Config("device_B2_n8", "bptt", "brf", 10000, reps=3, warmup_steps=10)
    done = {short.name: measured(short, 1e-3, 1e9)}   # 1 ms per step, 1 GB at T = 1000
    # BPTT: warm-up of the whole T plus 3 repetitions: 6 s + 40,000 steps · 1 ms = 46 s; 10 GB
    assert bench.fitted(long, done, 60.0, 100e9, prior_s=0.0) == (long, None)
    chosen, note = bench.fitted(long, done, 30.0, 100e9, prior_s=0.0)   # one repetition: 6 + 20 s
    assert chosen.reps == 1 and "1 repetition instead of 3" in note
    assert bench.fitted(long, done, 20.0, 100e9, prior_s=0.0)[0] is None
    chosen, why = bench.fitted(long, done, 60.0, 10e9, prior_s=0.0)
    assert chosen is None and why.startswith("would not fit: estimated peak 9.3 GiB")
    # nothing of its group measured yet: the prior decides
    assert bench.fitted(short, {}, 5.0, None, prior_s=10.0)[0] is None
    assert bench.fitted(short, {}, 50.0, None, prior_s=10.0) == (short, None)


def test_roofline_rates_and_rows_of_a_gpu():
    assert roofline.gpu_rates("NVIDIA H200") is roofline.H200
    assert roofline.gpu_rates("NVIDIA H100 80GB HBM3") is roofline.H100
    assert roofline.gpu_rates("Tesla T4") is None
    config = Config("device", "hypr", "brf", 256, chunk=64, B=2, n=8)
    result = {"config": config.to_dict(),
              "stage_calls_per_sequence": {"layer0.s_stage": 4, "layer0.p_stage": 8, "layer0.merge": 4},
              "stage_seconds_per_sequence": {"layer0.s_stage": 4e-3, "layer0.p_stage": 8e-3, "layer0.merge": 2e-3}}
    shape = dict(B=2, n=8, m=72, d=3, p=2)
    rows = {r["stage"]: r for r in roofline.gpu_rows(result, shape, (0, 0), roofline.H200)}
    merge = rows["merge"]   # bytes 4·(2·B·n·m·d + λ·B·m + λ·B·n·(d+1)) at 4.8 TB/s
    merge_bytes = 4 * (2 * 2 * 8 * 72 * 3 + 64 * 2 * 72 + 64 * 2 * 8 * 4)
    assert merge["bytes"] == merge_bytes and merge["bound_by"] == "memory"
    assert merge["measured_s"] == pytest.approx(0.5e-3) and merge["bound_s"] == pytest.approx(merge_bytes / 4.8e12)
    assert rows["p_stage"]["calls_per_chunk"] == 2 and rows["p_stage"]["measured_s"] == pytest.approx(2e-3)


def test_a_checkout_without_pip_gets_its_data_packages_linked(tmp_path):
    for folder in ("hyprgen", "generated", "neurons", "templates"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text(f"WHERE = {folder!r}\n")
    script = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("checkout", {str(ROOT / 'benchmarks/device_check/checkout.py')!r})
        checkout = importlib.util.module_from_spec(spec); spec.loader.exec_module(checkout)
        root = checkout.Path({str(tmp_path)!r})
        print(checkout.make_importable(root))
        import hyprgen.generated, hyprgen.templates
        print(hyprgen.generated.WHERE, hyprgen.templates.WHERE, checkout.make_importable(root))
    """)
    # -S: no site-packages, so no installed (or editable) hyprgen can answer instead of the checkout's
    proc = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['hyprgen/generated', 'hyprgen/neurons', 'hyprgen/templates']",
                                        "generated templates []"]
    assert (tmp_path / "hyprgen" / "generated").resolve() == (tmp_path / "generated").resolve()


def test_junit_and_verify_summaries(tmp_path):
    xml = """<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">
        <testcase classname="tests.ops.test_merge" name="test_a[cuda-1]"/>
        <testcase classname="tests.ops.test_merge" name="test_b[cuda-2]"><failure message="assert 1 == 2">x</failure></testcase>
        <testcase classname="tests.ops.test_merge" name="test_c"><skipped/></testcase>
        </testsuite></testsuites>"""
    (tmp_path / "tests.xml").write_text(xml)
    got = steps.junit_summary(tmp_path / "tests.xml")
    assert (got["tests"], got["passed"], got["failures"], got["skipped"]) == (3, 1, 1, 1)
    assert got["failed"] == [{"test": "tests.ops.test_merge::test_b[cuda-2]", "message": "assert 1 == 2"}]
    output = ("brf: Triton kernels vs torch backend on NVIDIA H200; B=3, n=37\n"
              "  HYPR step  layers.0.W_in                3.06e-03   1.02e-10   FAIL\n"
              "  21/22 outputs within tolerance, 1 FAILED\n")
    assert steps.verify_summary(output) == {"ran_on": "NVIDIA H200", "within": 21, "outputs": 22,
                                            "failing": ["HYPR step layers.0.W_in"]}
