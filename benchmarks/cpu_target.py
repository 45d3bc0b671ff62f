"""The cpu target against BPTT and the torch backend, in one run (issue 15's targets; docs/cpu.md).

    python -m benchmarks.cpu_target                  # brf and cue suites at T = 4,096 (about 20 min, 2 cores)
    python -m benchmarks.cpu_target --quick          # tiny sizes: checks the script (seconds)
    python -m benchmarks.cpu_target --suites cue --rounds 3   # the cue suite three times over (about 12 min)

Every configuration runs in its own process (benchmarks.perf.measure: warm-up, then --reps timed
sequences, stage timers, RSS high-water mark), one after the other, so every ratio below compares
numbers taken minutes apart on the same machine; the load average is recorded beside each. Sizes
are those of benchmarks/perf/configs.py:
  brf  BRF, n = 256 recurrent, n_in = 64, LI readout (10), B = 32: BPTT; HYPR λ ∈ {16, 32, 128, 512}
       on the cpu target and λ = 128, 512 on the torch backend (the anchor, and the transient memory
       at λ = 512); HYPR with the paper's same-step signal (the rule the issue's anchors measured) and
       with the readout's memory (the default since docs/hypr.md §3a).
  cue  BRF-exp, 15 inputs, 256 recurrent, LI readout (2), B = 32, the delayed cue task, at 1 and 2
       threads: BPTT; HYPR (cpu) λ ∈ {16, 64, 256}.
--rounds N runs the whole list N times over, round after round, so that each configuration is
measured N times at moments spread across the run, and reports for each the result of its median
round (its times in every round beside it): on this project's shared 2-core machine one
configuration's time moved by ±20 % between runs minutes apart.
Writes --out/cpu_target.json (every result and the ratios), prints the table, and --md writes the
markdown table for docs/results (stage times and the P-stage's share of its roofline bound included).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from .perf import roofline
from .perf.configs import Config

ROOT = Path(__file__).resolve().parents[1]


def configs(quick: bool) -> list[Config]:
    T = 256 if quick else 4096
    small = dict(n=16, n_in=8, B=4, warmup_steps=32, piece=64, reps=1) if quick else dict(reps=3)
    brf = Config("brf", "bptt", "brf", T, weight_scale=150.0, **small)
    cue = Config("cue", "bptt", "brf_exp", T, task="cue", n_out=2, weight_scale=200.0, **(small | {"n_in": 15}))
    out = [brf]
    hypr = replace(brf, method="hypr")
    out += [replace(hypr, chunk=lam, backend="cpu", readout_memory=False) for lam in (16, 32, 128, 512)]
    out += [replace(hypr, chunk=lam, backend="torch", readout_memory=False) for lam in (128, 512)]
    # the readout's memory (R = 10 routes: 11·B lanes in the P-stage, G traces 10× ε): the best λ only
    out += [replace(hypr, chunk=lam, backend=backend, readout_memory=True) for lam, backend in
            ((128, "cpu"), (512, "cpu"), (128, "torch"))]
    for threads in (1, 2):
        out.append(replace(cue, threads=threads))
        out += [replace(cue, method="hypr", chunk=lam, backend="cpu", readout_memory=False, threads=threads)
                for lam in (16, 64, 256)]
    return out


def load_average() -> float:
    return os.getloadavg()[0]


def run_one(config: Config, folder: Path, round_: int = 0) -> dict:
    """One configuration's result in one round: measured now, or read from folder when an earlier
    (interrupted) run of this script measured it (delete folder to measure everything again)."""
    stem = f"{config.name}_threads{config.threads or 0}" + (f"_round{round_}" if round_ else "")
    cfg, res = folder / f"{stem}.config.json", folder / f"{stem}.json"
    if res.exists():
        return json.loads(res.read_text())
    cfg.write_text(json.dumps(config.to_dict()))
    before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "benchmarks.perf.measure", str(cfg), f"{tmp}/result.json"], cwd=ROOT,
                       check=True)
        result = json.loads(Path(f"{tmp}/result.json").read_text())
    result["load_before_after"] = [before, load_average()]
    res.write_text(json.dumps(result, indent=1))   # written whole, once measured: a resumed run reuses it
    return result


def median_round(rounds: list[dict]) -> dict:
    """One configuration's result over its rounds: the round of median time (the lower of the two
    middle ones for an even count), whole (stage times, memory), with every round's time per step."""
    ordered = sorted(rounds, key=lambda r: r["time_per_step_s"])
    return ordered[(len(ordered) - 1) // 2] | {"round_times_per_step_s": [r["time_per_step_s"] for r in rounds]}


def find(results: list[dict], **want) -> dict | None:
    for r in results:
        c = r["config"]
        if all(c.get(k) == v for k, v in want.items()):
            return r
    return None


def ratios(results: list[dict]) -> list[dict]:
    """The issue's targets as measured: HYPR (cpu, best λ) / BPTT per suite, rule and threads; λ=16 / best λ;
    cpu / torch at the same λ; transient memory (RSS growth) torch / cpu at λ = 512."""
    out = []
    for suite, threads in (("brf", None), ("cue", 1), ("cue", 2)):
        bptt = find(results, suite=suite, method="bptt", threads=threads)
        for memory in (False, True):
            cpu = [r for r in results if r["config"]["suite"] == suite and r["config"]["backend"] == "cpu"
                   and r["config"]["method"] == "hypr" and r["config"]["threads"] == threads
                   and r["config"]["readout_memory"] == memory]
            if not cpu or bptt is None:
                continue
            best = min(cpu, key=lambda r: r["time_per_step_s"])
            lam16 = next((r for r in cpu if r["config"]["chunk"] == 16), None)
            row = {"suite": suite, "threads": threads or "default", "rule": "readout memory" if memory else "same-step",
                   "bptt_ms_per_step": bptt["time_per_step_s"] * 1e3,
                   "best_chunk": best["config"]["chunk"], "hypr_cpu_ms_per_step": best["time_per_step_s"] * 1e3,
                   "hypr_cpu_over_bptt": best["time_per_step_s"] / bptt["time_per_step_s"],
                   "lambda16_over_best": None if lam16 is None else lam16["time_per_step_s"] / best["time_per_step_s"]}
            for lam in (128, 512):
                torch_r = find(results, suite=suite, method="hypr", backend="torch", chunk=lam, readout_memory=memory)
                cpu_r = find(results, suite=suite, method="hypr", backend="cpu", chunk=lam, readout_memory=memory)
                if torch_r and cpu_r:
                    row[f"torch_over_cpu_time_l{lam}"] = torch_r["time_per_step_s"] / cpu_r["time_per_step_s"]
                    t_mem, c_mem = torch_r["peak_increase_bytes_median"], cpu_r["peak_increase_bytes_median"]
                    if t_mem and c_mem:
                        row[f"torch_over_cpu_transient_memory_l{lam}"] = t_mem / c_mem
            out.append(row)
    return out


def markdown(results: list[dict], table: list[dict], machine: dict | None, roofline_note: bool = True) -> str:
    lines = ["| configuration | threads | ms / step (rounds: median, range) | S-stage | P-stage | merge | load (before, after) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        c, stages = r["config"], r.get("stage_seconds_per_sequence", {})
        per_step = lambda key: (f"{sum(v for k, v in stages.items() if k.endswith(key)) / c['T'] * 1e3:.3f}"  # noqa: E731
                                if stages else "")
        spread = r.get("round_times_per_step_s", [])
        spread = f" ({min(spread) * 1e3:.3f}–{max(spread) * 1e3:.3f})" if len(spread) > 1 else ""
        lines.append(f"| {c['suite']}: {r['label']} | {c['threads'] or 'default'} | {r['time_per_step_s'] * 1e3:.3f}{spread} | "
                     f"{per_step('s_stage')} | {per_step('p_stage')} | {per_step('merge')} | "
                     f"{r['load_before_after'][0]:.1f}, {r['load_before_after'][1]:.1f} |")
    lines += ["", "| suite | threads | rule | BPTT ms/step | HYPR cpu best λ | ms/step | HYPR / BPTT | λ=16 / best |"
              " torch / cpu time (λ=128) | torch / cpu transient memory (λ=512) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        fmt = lambda v, f="{:.2f}": "" if v is None else f.format(v)  # noqa: E731
        lines.append(f"| {t['suite']} | {t['threads']} | {t['rule']} | {t['bptt_ms_per_step']:.3f} | {t['best_chunk']} | "
                     f"{t['hypr_cpu_ms_per_step']:.3f} | {t['hypr_cpu_over_bptt']:.2f} | {fmt(t['lambda16_over_best'])} | "
                     f"{fmt(t.get('torch_over_cpu_time_l128'))} | {fmt(t.get('torch_over_cpu_transient_memory_l512'), '{:.1f}')} |")
    if roofline_note and any(r["config"]["suite"] == "brf" for r in results):
        lines += ["", roofline.markdown([r for r in results if r["config"]["suite"] == "brf"], machine)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cpu_target")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, measures nothing")
    ap.add_argument("--md", type=Path, default=None, help="also write the markdown tables here")
    ap.add_argument("--suites", default="brf,cue", help="the suites to run, comma-separated (brf, cue)")
    ap.add_argument("--rounds", type=int, default=1, help="run the list this many times over (module doc)")
    a = ap.parse_args(argv)
    suites = a.suites.split(",")
    if not set(suites) <= {"brf", "cue"} or a.rounds < 1:
        ap.error(f"--suites takes brf and cue (got {a.suites!r}); --rounds at least 1 (got {a.rounds})")
    a.out.mkdir(parents=True, exist_ok=True)
    runs = a.out / ("runs-quick" if a.quick else "runs")
    runs.mkdir(parents=True, exist_ok=True)
    chosen = [c for c in configs(a.quick) if c.suite in suites]
    measured = [[] for _ in chosen]
    for round_ in range(a.rounds):
        for config, rounds in zip(chosen, measured):
            r = run_one(config, runs, round_)
            rounds.append(r)
            print(f"{r['config']['suite']:>4} {r['label']:<40} threads {config.threads or 'default'}"
                  f"{f', round {round_ + 1}' if a.rounds > 1 else ''}: "
                  f"{r['time_per_step_s'] * 1e3:8.3f} ms/step (load {r['load_before_after'][0]:.1f})", flush=True)
    results = [median_round(rounds) for rounds in measured]
    machine = roofline.machine_peaks(a.out, quick=a.quick, refresh=True)
    table = ratios(results)
    (a.out / "cpu_target.json").write_text(json.dumps({"machine": machine, "ratios": table, "results": results},
                                                      indent=1))
    text = markdown(results, table, machine)
    print(text)
    if a.md:
        a.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
