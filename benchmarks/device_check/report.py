"""device_check.json and device_check.md: written after every step, so a run stopped anywhere leaves
a report of what it finished, and the list of what it did not do and why.

The JSON holds everything (every benchmark result as benchmarks.perf.measure returns it); the
markdown holds the tables a reader wants first: steps, time per sequence and peak memory by method,
memory against T, and each HYPR stage against its roofline bound.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..perf.configs import Config
from .environment import one_line
from .plan import kind

JSON_NAME, MARKDOWN_NAME = "device_check.json", "device_check.md"
MiB = 2.0 ** 20


def write(out: Path, report: dict) -> None:
    for name, text in ((JSON_NAME, json.dumps(report, indent=1)), (MARKDOWN_NAME, markdown(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)   # a reader (or a kill) never sees half a report


def not_done(report: dict) -> list[dict]:
    """Everything skipped or cut off: steps, then benchmark configurations."""
    out = [{"what": s["name"], "why": s.get("reason") or s["status"]} for s in report["steps"]
           if s["status"] in ("skipped", "cut off")]
    out += [{"what": b["name"], "why": b["why"]} for b in report["bench"]["not_measured"]]
    return out


# -- markdown -------------------------------------------------------------------------------------

def _step_result(step: dict) -> str:
    s = step.get("summary") or {}
    if step["name"] == "runtime" and "grad_rel_rms_max" in s:
        return (f"HYPR step, triton vs torch: gradients within {s['grad_rel_rms_max']:.1e} relative RMS "
                f"(tolerance {s['tolerance']:g}), kernels {s['kernels']}; SymPy imported: "
                f"{'yes' if s['sympy_imported'] else 'no'}, compiler imported: {'yes' if s['compiler_imported'] else 'no'}")
    if step["name"] == "tests" and "tests" in s:
        text = f"{s['passed']} passed, {s['failures']} failed, {s['errors']} errors, {s['skipped']} skipped"
        return text + "".join(f"<br>FAILED {f['test']}: {f['message']}" for f in s["failed"][:10])
    if step["name"].startswith("verify") and s.get("outputs"):
        failing = f"; FAIL: {', '.join(s['failing'])}" if s["failing"] else ""
        return f"{s['within']}/{s['outputs']} outputs within tolerance on {s['ran_on']}{failing}"
    if step["name"] == "bench" and "measured" in s:
        return f"{s['measured']} configurations measured, {s['not_measured']} not ({s['errors']} with an error)"
    return (step.get("reason") or step.get("tail", "")[-300:]).replace("\n", " ").replace("|", "\\|")


def _seconds(r: dict | None) -> str:
    return "–" if r is None else f"{r['time_s']['median']:.3f}"


def _mib(r: dict | None) -> str:
    return "–" if r is None or r.get("peak_bytes_max") is None else f"{r['peak_bytes_max'] / MiB:.0f}"


def _speedup(fast: dict | None, slow: dict | None, slow_elsewhere: dict | None) -> str:
    """How many times slower `slow` is than `fast`; where `slow` was not measured at this T, from its
    time per step at another T (these methods' time per step does not depend on T), marked so."""
    if fast is None:
        return "–"
    if slow is not None:
        return f"{slow['time_s']['median'] / fast['time_s']['median']:.3g}×"
    if slow_elsewhere is not None:
        per_step = slow_elsewhere["time_per_step_s"] * fast["config"]["T"]
        return f"{per_step / fast['time_s']['median']:.3g}× (per step, T={slow_elsewhere['config']['T']})"
    return "–"


def _bench_tables(results: list[dict]) -> list[str]:
    by = {(kind_of(r), r["config"]["B"], r["config"]["n"], r["config"]["chunk"], r["config"]["T"]): r for r in results}
    keys = sorted({(c["B"], c["n"], c["chunk"], c["T"]) for c in (r["config"] for r in results) if c["chunk"]},
                  key=lambda k: (-k[0], -k[1], -k[2], k[3]))
    lines = ["## Time per sequence and peak memory", "",
             "Median seconds of one training sequence (gradient of T steps), CUDA events on a GPU; peak: "
             "torch.cuda.max_memory_allocated on a GPU, process RSS in a dry run. BPTT does not depend on λ.", "",
             "| B | n | λ | T | HYPR triton s | HYPR torch s | BPTT s | triton speed-up vs torch | vs BPTT "
             "| peak MiB triton | torch | BPTT |", "|" + "---|" * 12]
    def longest(k, B, n, lam):   # the result of this method and layer at the longest T measured
        found = [r for key, r in by.items() if key[:4] == (k, B, n, lam)]
        return max(found, key=lambda r: r["config"]["T"], default=None)

    for B, n, lam, T in keys:
        tri, tor, bp = by.get(("triton", B, n, lam, T)), by.get(("torch", B, n, lam, T)), by.get(("bptt", B, n, None, T))
        lines.append(f"| {B} | {n} | {lam} | {T} | {_seconds(tri)} | {_seconds(tor)} | {_seconds(bp)} | "
                     f"{_speedup(tri, tor, longest('torch', B, n, lam))} | {_speedup(tri, bp, longest('bptt', B, n, None))} | "
                     f"{_mib(tri)} | {_mib(tor)} | {_mib(bp)} |")
    Ts = sorted({r["config"]["T"] for r in results})
    if len(Ts) >= 2:
        short, long = Ts[0], Ts[-1]
        lines += ["", f"## Memory against T (HYPR triton): peak at T = {short} and T = {long}", "",
                  "| B | n | λ | peak MiB, short T | long T | ratio |", "|---|---|---|---|---|---|"]
        for B, n, lam in sorted({k[:3] for k in keys}, key=lambda k: (-k[0], -k[1], -k[2])):
            a, b = by.get(("triton", B, n, lam, short)), by.get(("triton", B, n, lam, long))
            if a and b and a.get("peak_bytes_max") and b.get("peak_bytes_max"):
                lines.append(f"| {B} | {n} | {lam} | {_mib(a)} | {_mib(b)} | {b['peak_bytes_max'] / a['peak_bytes_max']:.2f} |")
    return lines


def kind_of(result: dict) -> str:
    return kind(Config.from_dict(result["config"]))


def _roofline_table(bench: dict) -> list[str]:
    rows = [r for r in bench.get("roofline", []) if r["backend"] == "triton"]
    if not rows:
        return []
    longest = {}
    for r in rows:   # the longest T measured of each layer and λ
        key = (r["B"], r["n"], r["chunk"])
        longest[key] = max(longest.get(key, 0), r["T"])
    lines = ["", f"## Roofline: HYPR triton, hidden layer, per chunk ({bench['rates']})", "",
             "Each stage's time per chunk (its calls' CUDA-event times on a GPU, wall times in a dry run; launcher "
             "and kernels) against the slower of its FLOPs and its bytes at the datasheet rates "
             "(benchmarks/perf/roofline.py). The P-stage runs twice per chunk under readout memory (the second "
             "sweep for the route signals, not in the counts): its fraction is a lower bound.", "",
             "| B | n | λ | T | stage | calls per chunk | measured µs | bound µs | of bound | bound by |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (-r["B"], -r["n"], -r["chunk"], r["stage"])):
        if r["T"] == longest[(r["B"], r["n"], r["chunk"])]:
            lines.append(f"| {r['B']} | {r['n']} | {r['chunk']} | {r['T']} | {r['stage']} | {r['calls_per_chunk']:g} | "
                         f"{r['measured_s'] * 1e6:.1f} | {r['bound_s'] * 1e6:.3g} | {100 * r['fraction_of_bound']:.3g} % | "
                         f"{r['bound_by']} |")
    notes = {r["note"] for r in rows if r.get("note")}
    return lines + [f"\n{n}" for n in notes]


def markdown(report: dict) -> str:
    env = report.get("environment") or {}
    missing = not_done(report)
    if not report["finished"]:
        state = f"**Running or stopped early** after {report['elapsed_s']:.0f} s."
    elif missing:
        state = (f"**Partial**: {len(missing)} item(s) skipped or cut off (listed at the end); "
                 f"{report['elapsed_s']:.0f} s of the {report['budget_s']:.0f} s budget.")
    else:
        state = f"**Complete** in {report['elapsed_s']:.0f} s of the {report['budget_s']:.0f} s budget."
    lines = [f"# hyprgen device check ({report['mode']})", "",
             one_line(env) if env else "environment not read", "", state, "", f"Command: `{report['command']}`"]
    if report.get("links_made"):
        lines += ["", f"Linked for a run without pip: {', '.join(report['links_made'])} (benchmarks/device_check/checkout.py)."]
    lines += ["", "## Steps", "", "| step | status | s | result |", "|---|---|---|---|"]
    for s in report["steps"]:
        seconds = "" if s.get("seconds") is None else f"{s['seconds']:.0f}"
        lines.append(f"| {s['name']} | {s['status']} | {seconds} | {_step_result(s)} |")
    results = report["bench"]["results"]
    if results:
        lines += [""] + _bench_tables(results)
    lines += _roofline_table(report["bench"])
    errors = [b for b in report["bench"]["not_measured"] if b["why"].startswith("error")]
    if missing:
        lines += ["", "## Not done", ""] + [f"- {m['what']}: {m['why']}" for m in missing]
    if errors:
        lines += ["", "Errors are in device_check.json (bench.not_measured) and bench.log."]
    lines += ["", "## Environment", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in env.items()]
    return "\n".join(lines) + "\n"
