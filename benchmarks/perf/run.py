"""Throughput and memory of HYPR vs BPTT, per-step EProp and snnTorch (issue 6; docs/results/performance.md).

    python -m benchmarks.perf                          # every suite (tens of minutes on 2 cores)
    python -m benchmarks.perf --suite cue --reps 7     # one suite
    python -m benchmarks.perf --quick --out /tmp/b     # tiny sizes in seconds: checks the scripts
    python -m benchmarks.perf --report-only            # rebuild tables and plots from saved runs

Every configuration (configs.py) runs in its own process (measure.py) and
writes runs/<name>.json under --out; finished runs are kept, so an interrupted benchmark resumes
where it stopped (--force measures again). Within a group (same method and λ, growing T) the
runner estimates each configuration from the largest T measured so far and skips, saying why,
  - what would not fit in memory (peak growth extrapolated linearly in T against MemAvailable),
  - what would take longer than --budget-s (the time per step of these methods does not depend
    on T, so the smaller T already measures it), except what the targets need (brf suite: HYPR at
    the headline λ and BPTT), which runs at every T that fits.
Then it writes summary.md, summary.json and the plots (report.py) and the roofline note
(roofline.py) into --out.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .configs import SUITES, Config, suite_configs
from .sysmon import mem_available_bytes

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench"
STARTUP_S = 6.0        # process start, imports, model build
MEMORY_HEADROOM = 0.85  # a configuration must fit in this fraction of MemAvailable
GRAPH_METHODS = ("bptt", "snntorch")  # memory linear in T (the autograd graph)


def run_path(out: Path, config: Config) -> Path:
    return out / "runs" / f"{config.name}.json"


def load_done(out: Path) -> dict[str, dict]:
    done = {}
    for p in sorted((out / "runs").glob("*.json")):
        r = json.loads(p.read_text())
        done[r["name"]] = r
    return done


def estimate(config: Config, done: dict[str, dict]) -> dict | None:
    """Seconds and peak RSS of `config`, from the largest smaller T of its group (None: no basis)."""
    base = [r for r in done.values() if "error" not in r and Config.from_dict(r["config"]).group == config.group
            and r["config"]["T"] < config.T]
    if not base:
        return None
    r = max(base, key=lambda r: r["config"]["T"])
    T0 = r["config"]["T"]
    warm = config.T if config.method in ("bptt", "snntorch") else min(config.T, config.warmup_steps)
    seconds = STARTUP_S + r["time_per_step_s"] * (config.reps * config.T + warm)
    increase = r.get("peak_increase_bytes_median") or 0
    if config.method in GRAPH_METHODS:
        increase *= config.T / T0
    elif config.method == "eprop":  # holds the whole input, outputs and targets; the rest is per step
        increase += (config.T - T0) * config.B * (4 * config.n_in + 4 * config.n_out + 8)
    return {"from_T": T0, "seconds": seconds, "time_per_step_s": r["time_per_step_s"],
            "peak_bytes": r["baseline_bytes"] + increase}


def skip_reason(config: Config, est: dict | None, budget_s: float) -> str | None:
    if est is None:
        return None
    available = mem_available_bytes()
    if available is not None and est["peak_bytes"] > MEMORY_HEADROOM * available:
        return (f"would not fit: estimated peak RSS {est['peak_bytes'] / 2**30:.1f} GiB (from T={est['from_T']}) "
                f"> {MEMORY_HEADROOM:.0%} of the {available / 2**30:.1f} GiB available")
    if est["seconds"] > budget_s and not config.required:
        return (f"time budget: estimated {est['seconds']:.0f} s > --budget-s {budget_s:.0f} "
                f"({est['time_per_step_s'] * 1e3:.2f} ms/step measured at T={est['from_T']}; "
                "the time per step does not depend on T)")
    return None


def measure_in_subprocess(config: Config, quiet_wait: float, timeout: float | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="hyprgen_bench_") as tmp:
        cfg, res = Path(tmp) / "config.json", Path(tmp) / "result.json"
        cfg.write_text(json.dumps(config.to_dict()))
        argv = [sys.executable, "-m", "benchmarks.perf.measure", str(cfg), str(res), "--quiet-wait", str(quiet_wait)]
        try:
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"name": config.name, "config": config.to_dict(), "error": f"timed out after {timeout:.0f} s"}
        if proc.returncode != 0 or not res.exists():
            how = "killed (out of memory?)" if proc.returncode in (-9, 137) else f"exit {proc.returncode}"
            return {"name": config.name, "config": config.to_dict(), "error": f"{how}: {proc.stderr[-3000:]}"}
        return json.loads(res.read_text())


def describe(r: dict) -> str:
    if "error" in r:
        return "FAILED: " + r["error"].strip().splitlines()[-1] if r["error"].strip() else "FAILED"
    t = r["time_s"]
    peak = r["peak_bytes_max"]
    return (f"{t['median']:.3f} s [{t['min']:.3f}–{t['max']:.3f}]  {r['time_per_step_s'] * 1e3:.3f} ms/step  "
            f"peak RSS {peak / 2**20:.0f} MiB" if peak else f"{t['median']:.3f} s")


def run_suites(a) -> None:
    out = Path(a.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    cuda = a.device == "cuda"
    configs = [c for s in a.suite for c in suite_configs(s, quick=a.quick, cuda=cuda, reps=a.reps,
                                                          threads=a.threads or None)]
    if a.only:
        configs = [c for c in configs if any(o in c.name for o in a.only)]
    done = load_done(out)
    skipped_path = out / "skipped.json"
    skipped = {s["name"]: s for s in json.loads(skipped_path.read_text())} if skipped_path.exists() else {}
    if a.force:  # measure the selected configurations again (the others' results stay)
        for c in configs:
            done.pop(c.name, None)
            skipped.pop(c.name, None)
    for i, config in enumerate(configs, 1):
        head = f"[{i}/{len(configs)}] {config.name:<40}"
        if config.name in done:
            print(f"{head} kept   {describe(done[config.name])}", flush=True)
            continue
        est = estimate(config, done)
        reason = skip_reason(config, est, a.budget_s)
        if reason:
            skipped[config.name] = {"name": config.name, "config": config.to_dict(), "skipped": reason}
            print(f"{head} skip   {reason}", flush=True)
            continue
        timeout = None if config.required else max(4 * a.budget_s, 600)
        t0 = time.perf_counter()
        r = measure_in_subprocess(config, a.quiet_wait, timeout)
        r["wall_s"] = time.perf_counter() - t0
        run_path(out, config).write_text(json.dumps(r, indent=1))
        done[config.name] = r
        skipped.pop(config.name, None)
        print(f"{head} {r['wall_s']:5.0f}s {describe(r)}", flush=True)
        skipped_path.write_text(json.dumps(list(skipped.values()), indent=1))
    skipped_path.write_text(json.dumps(list(skipped.values()), indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--suite", nargs="+", default=list(SUITES), choices=SUITES)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (checks the scripts; not a measurement)")
    ap.add_argument("--out", default=None, help=f"results directory (default {DEFAULT_OUT.relative_to(ROOT)}, "
                                                "…/bench_quick with --quick)")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per configuration (default 5)")
    ap.add_argument("--budget-s", type=float, default=150.0,
                    help="skip a configuration whose estimated time exceeds this (default 150)")
    ap.add_argument("--quiet-wait", type=float, default=0.0,
                    help="before each timed repetition wait up to S seconds for other processes to go quiet")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads per process (default 1: the ops of these networks are small, "
                         "and a second thread that waits for a busy core makes single calls many times slower; "
                         "0: torch's default)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--only", nargs="+", default=None, help="only configurations whose name contains one of these")
    ap.add_argument("--force", action="store_true",
                    help="measure the selected configurations again (and the machine's peaks)")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the report from saved runs")
    a = ap.parse_args(argv)
    if a.reps < 1:
        ap.error("--reps must be at least 1")
    a.out = a.out or str(DEFAULT_OUT.with_name("bench_quick") if a.quick else DEFAULT_OUT)
    if a.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda: torch sees no CUDA device")
    from . import report, roofline

    if not a.report_only:
        roofline.machine_peaks(Path(a.out), quick=a.quick, refresh=a.force, threads=a.threads or None)
        run_suites(a)
    written = report.write(Path(a.out))
    for p in written:
        print(f"wrote {p}")
    return 0

