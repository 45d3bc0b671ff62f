"""The device check's steps, in order of value, each within what the budget has left.

    1. environment   GPU, driver, torch, triton, Python (printed first)
    2. runtime       one HYPR step on the device, triton vs torch; no SymPy, no compiler imported
    3. tests         the ops tests' cases for this device: every shipped neuron's kernels, compiled on a GPU
    4. verify        `hyprgen build --verify` of two neurons
    5. bench         the benchmark grid (plan.py), one worker process (bench.py), restarted after a crash
    6. roofline      each measured HYPR stage against its bound

A step whose estimate exceeds the time left is skipped; one that runs past min(its cap, the time
left) is killed. The report (report.py) is rewritten after each step and the benchmark's results
stream into bench.jsonl as they come, so a stop at any point leaves what was done and a list of
what was not. Exit status: 1 if something failed (a test, a verification, the runtime probe), else
0, also for a partial run.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from . import report as report_file
from .budget import Budget
from .checkout import ROOT, make_importable, subprocess_env
from .plan import DRY_RUN, GPU, VERIFY_NEURONS, Plan, bench_configs
from .steps import hyprgen_cli, junit_summary, pytest_command, python, run_command, verify_summary, xdist_workers

RESERVE_S = {"gpu": 15.0, "dry-run": 5.0}   # kept for the last report
BENCH_EVENTS = "bench.jsonl"   # with device_check.json/.md, tests.log, verify_<neuron>.log ×2, bench.log: 7 files


def command_step(name: str, argv: list[str], estimate: float, cap: float, budget: Budget, env: dict,
                 log: Path | None = None, summarize=None) -> dict:
    """Run one step's command within the budget: {name, status, seconds, summary, tail, reason}."""
    reason = budget.rules_out(estimate)
    if reason:
        return {"name": name, "status": "skipped", "reason": reason}
    print(f"[{budget.elapsed():5.0f} s] {name}: up to {budget.limit(cap):.0f} s", flush=True)
    outcome = run_command(argv, budget.limit(cap), env, log)
    summary = summarize(outcome.output) if summarize else {}
    step = {"name": name, "seconds": round(outcome.seconds, 1), "summary": summary, "tail": outcome.tail(),
            "returncode": outcome.returncode}
    if outcome.timed_out:
        step.update(status="cut off", reason=f"cut off after {outcome.seconds:.0f} s (its limit)")
    else:
        step["status"] = "passed" if outcome.returncode == 0 and summary.get("ok", True) else "FAILED"
    return step


def runtime_summary(output: str) -> dict:
    last = [line for line in output.splitlines() if line.startswith("{")]
    return json.loads(last[-1]) if last else {}


def tests_step(plan: Plan, budget: Budget, env: dict, out: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="device_check_") as tmp:
        junit = Path(tmp) / "tests.xml"
        workers = xdist_workers() if plan.device == "cuda" else 0
        step = command_step("tests", pytest_command(plan.tests, junit, workers), plan.estimate("tests"),
                            plan.cap("tests"), budget, env, out / "tests.log", summarize=lambda _: junit_summary(junit))
    if step["status"] == "FAILED" and not step["summary"].get("tests"):
        step["reason"] = "no test ran (pytest exit 5: nothing selected)" if step["returncode"] == 5 else "pytest failed"
    return step


def verify_step(neuron: str, plan: Plan, budget: Budget, env: dict, out: Path) -> dict:
    def summarize(output):
        s = verify_summary(output)
        return {**s, "ok": s["within"] is not None and s["within"] == s["outputs"]}

    return command_step(f"verify {neuron}", hyprgen_cli("build", "--verify", neuron), plan.estimate("verify"),
                        plan.cap("verify"), budget, env, out / f"verify_{neuron}.log", summarize)


def read_events(path: Path, offset: int) -> tuple[list[dict], int]:
    if not path.exists():
        return [], offset
    with open(path) as f:
        f.seek(offset)
        text = f.read()
        end = f.tell()
    return [json.loads(line) for line in text.splitlines() if line.strip()], end


def bench_step(plan: Plan, budget: Budget, env: dict, out: Path, bench: dict) -> dict:
    """Fill bench["results"] and bench["not_measured"] with the grid's configurations, in order."""
    pending = bench_configs(plan)
    results, not_measured, offset = {}, [], 0
    events_path, log = out / BENCH_EVENTS, out / "bench.log"
    events_path.write_text("")
    log.write_text("")
    print(f"[{budget.elapsed():5.0f} s] bench: {len(pending)} configurations", flush=True)
    seconds = 0.0
    while pending and budget.left() > 0:
        with tempfile.TemporaryDirectory(prefix="device_check_") as tmp:
            spec = Path(tmp) / "plan.json"
            spec.write_text(json.dumps({"configs": [c.to_dict() for c in pending], "deadline": budget.deadline(),
                                        "priors": plan.bench_prior_s, "done": results}))
            outcome = run_command(python("-m", "benchmarks.device_check.bench", str(spec), str(events_path)),
                                  budget.left(), env)
        seconds += outcome.seconds
        with open(log, "a") as f:
            f.write(outcome.output + f"\n[worker: {'killed at the time budget' if outcome.timed_out else f'exit {outcome.returncode}'}]\n")
        events, offset = read_events(events_path, offset)
        final, started = set(), None
        for e in events:
            if e.get("started"):
                started = e["name"]
            elif "result" in e:
                results[e["name"]] = e["result"]
                final.add(e["name"])
                r = e["result"]
                print(f"           {e['name']:<48} {r['time_s']['median']:8.3f} s  "
                      f"peak {(r['peak_bytes_max'] or 0) / 2**20:7.0f} MiB", flush=True)
            else:
                why = (f"skipped: {e['skipped']}" if "skipped" in e else
                       f"out of memory: {e['out_of_memory']}" if "out_of_memory" in e else f"error: {e['error']}")
                not_measured.append({"name": e["name"], "why": why, **({"traceback": e["traceback"]} if "traceback" in e else {})})
                final.add(e["name"])
        if started is not None and started not in final:
            why = ("cut off by the time budget" if outcome.timed_out else
                   f"error: the worker ended (exit {outcome.returncode}) during it: {outcome.tail(500)}")
            not_measured.append({"name": started, "why": why})
            final.add(started)
        if not events and not outcome.timed_out:   # the worker could not even start: no point in another
            not_measured += [{"name": c.name, "why": f"error: the worker failed: {outcome.tail(500)}"} for c in pending]
            final.update(c.name for c in pending)
        pending = [c for c in pending if c.name not in final]
        if outcome.timed_out or outcome.returncode == 0:
            break
    not_measured += [{"name": c.name, "why": "not reached: time budget used up"} for c in pending]
    order = {c.name: i for i, c in enumerate(bench_configs(plan))}
    bench["results"] = sorted(results.values(), key=lambda r: order[r["name"]])
    bench["not_measured"] = sorted(not_measured, key=lambda b: order[b["name"]])
    errors = [b for b in not_measured if b["why"].startswith("error")]
    status = "FAILED" if errors else "passed" if results else "skipped"
    return {"name": "bench", "status": status, "seconds": round(seconds, 1),
            "summary": {"measured": len(results), "not_measured": len(not_measured), "errors": len(errors)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.device_check", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--dry-run", action="store_true", help="on the CPU (Triton's interpreter), tiny sizes")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks" / "results" / "device_check"),
                    help="report folder (default $OUT, else benchmarks/results/device_check)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help=f"wall-time budget of the whole check (default {GPU.budget_s:.0f}; {DRY_RUN.budget_s:.0f} with --dry-run)")
    a = ap.parse_args(argv)
    plan = DRY_RUN if a.dry_run else GPU
    budget = Budget(a.budget_s if a.budget_s is not None else plan.budget_s, RESERVE_S[plan.mode])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    links = make_importable()
    env = subprocess_env()

    import torch

    if plan.device == "cuda" and not torch.cuda.is_available():
        ap.error("torch sees no CUDA device: run with --dry-run on a machine without a GPU")
    from .environment import describe, one_line

    report = {"check": "hyprgen device check (issue 16)", "mode": plan.mode,
              "command": shlex.join(["python", "-m", "benchmarks.device_check", *(argv if argv is not None else sys.argv[1:])]),
              "budget_s": budget.seconds, "elapsed_s": 0.0, "finished": False, "links_made": links,
              "environment": describe(plan.device), "steps": [], "bench": {"results": [], "not_measured": []}}

    def save():
        report["elapsed_s"] = round(budget.elapsed(), 1)
        report["not_done"] = report_file.not_done(report)
        report_file.write(out, report)

    print(f"device check ({plan.mode}), budget {budget.seconds:.0f} s: {one_line(report['environment'])}", flush=True)
    save()
    steps = [lambda: command_step("runtime", python("-m", "benchmarks.device_check.runtime_probe", plan.device),
                                  plan.estimate("runtime"), plan.cap("runtime"), budget, env, summarize=runtime_summary),
             lambda: tests_step(plan, budget, env, out)]
    steps += [lambda neuron=neuron: verify_step(neuron, plan, budget, env, out) for neuron in VERIFY_NEURONS]
    steps.append(lambda: bench_step(plan, budget, env, out, report["bench"]))
    for step in steps:
        result = step()
        report["steps"].append(result)
        print(f"[{budget.elapsed():5.0f} s] {result['name']}: {result['status']}"
              + (f" ({result['reason']})" if result.get("reason") else ""), flush=True)
        save()
    if report["bench"]["results"]:
        from .roofline_rows import rows

        report["bench"]["roofline"], report["bench"]["rates"] = rows(report["bench"]["results"],
                                                                     report["environment"].get("gpu"))
    report["finished"] = True
    save()
    print(f"wrote {out / report_file.JSON_NAME} and {out / report_file.MARKDOWN_NAME} "
          f"({len(report['not_done'])} item(s) not done) in {budget.elapsed():.0f} s", flush=True)
    return 1 if any(s["status"] == "FAILED" for s in report["steps"]) else 0
