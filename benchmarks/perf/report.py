"""Tables, targets and plots from the saved benchmark runs (run.py writes them).

    python -m benchmarks.perf --report-only [--out DIR]

Writes DIR/summary.md (markdown tables, the issue-6 targets with their measured ratios, the roofline
note), DIR/summary.json and DIR/time_per_step_vs_lambda.png, DIR/peak_memory_vs_T.png (log-log).
"""
from __future__ import annotations

import json
from pathlib import Path

from . import roofline
from .configs import HEADLINE_CHUNK, Config

MiB = 2.0 ** 20
ORDER = {"hypr": 0, "bptt": 1, "eprop": 2, "snntorch": 3}


def load(out: Path) -> tuple[list[dict], list[dict]]:
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    skipped_path = out / "skipped.json"
    skipped = json.loads(skipped_path.read_text()) if skipped_path.exists() else []
    measured = {r["name"] for r in runs}
    return runs, [s for s in skipped if s["name"] not in measured]


def ok(r: dict) -> bool:
    return "error" not in r and "skipped" not in r


def group_key(r: dict):
    c = r["config"]
    return (ORDER.get(c["method"], 9), c["backend"] != "torch", c["chunk"] or 0)


def label(r: dict) -> str:
    return Config.from_dict(r["config"]).label


def by_suite(entries: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in entries:
        out.setdefault(e["config"]["suite"], []).append(e)
    return out


def cell(entry: dict | None, fmt) -> str:
    if entry is None:
        return ""
    if "skipped" in entry:
        return "skip¹" if entry["skipped"].startswith("would not fit") else "skip²"
    if "error" in entry:
        return "failed"
    return fmt(entry)


def table(entries: list[dict], title: str, fmt) -> list[str]:
    Ts = sorted({e["config"]["T"] for e in entries})
    groups: dict[str, dict[int, dict]] = {}
    for e in sorted(entries, key=group_key):
        groups.setdefault(label(e), {})[e["config"]["T"]] = e
    lines = [f"**{title}**", "", "| method | " + " | ".join(f"T={T}" for T in Ts) + " |",
             "|---|" + "---|" * len(Ts)]
    for name, row in groups.items():
        lines.append(f"| {name} | " + " | ".join(cell(row.get(T), fmt) for T in Ts) + " |")
    return lines + [""]


def time_cell(r: dict) -> str:
    t, T = r["time_s"], r["config"]["T"]
    return f"{t['median'] / T * 1e3:.3f} ({t['min'] / T * 1e3:.3f}–{t['max'] / T * 1e3:.3f})"


def mem_cell(r: dict) -> str:
    inc = r.get("peak_increase_bytes_median")
    return f"{r['peak_bytes_max'] / MiB:.0f} / +{inc / MiB:.0f}" if inc is not None else f"{r['peak_bytes_max'] / MiB:.0f}"


def learner_cell(r: dict) -> str:
    b = r["learner_bytes"]["bytes"]
    return "–" if b is None else f"{b / MiB:.1f}"


# -- targets ----------------------------------------------------------------------------------------

def find(runs: list[dict], **want) -> dict | None:
    for r in runs:
        if ok(r) and all(r["config"].get(k) == v for k, v in want.items()):
            return r
    return None


def best_chunk(runs: list[dict], suite: str, T: int) -> int | None:
    hypr = [r for r in runs if ok(r) and r["config"]["suite"] == suite and r["config"]["method"] == "hypr"
            and r["config"]["backend"] == "torch" and r["config"]["T"] == T]
    return min(hypr, key=lambda r: r["time_per_step_s"])["config"]["chunk"] if hypr else None


def targets(runs: list[dict]) -> list[dict]:
    """The four targets of issue 6, each with its measured ratio (None where a run is missing)."""
    hypr = dict(suite="brf", method="hypr", backend="torch")
    best = best_chunk(runs, "brf", 4096) or HEADLINE_CHUNK
    out = []

    def add(name, value, limit, better, detail):
        met = None if value is None else (value <= limit if better == "≤" else value >= limit)
        out.append({"target": name, "ratio": value, "limit": f"{better} {limit}", "met": met, "detail": detail})

    a, b = find(runs, **hypr, chunk=HEADLINE_CHUNK, T=65536), find(runs, **hypr, chunk=HEADLINE_CHUNK, T=1024)
    add(f"HYPR (λ={HEADLINE_CHUNK}) peak RSS at T=65,536 ÷ at T=1,024",
        a and b and a["peak_bytes_max"] / b["peak_bytes_max"], 1.1, "≤",
        a and b and f"{a['peak_bytes_max'] / MiB:.0f} MiB vs {b['peak_bytes_max'] / MiB:.0f} MiB; increase over "
                    f"the baseline {a['peak_increase_bytes_median'] / MiB:.1f} vs {b['peak_increase_bytes_median'] / MiB:.1f} MiB")
    h = find(runs, **hypr, chunk=HEADLINE_CHUNK, T=16384)
    bp = find(runs, suite="brf", method="bptt", T=16384)
    add(f"BPTT peak RSS ÷ HYPR (λ={HEADLINE_CHUNK}) peak RSS at T=16,384",
        h and bp and bp["peak_bytes_max"] / h["peak_bytes_max"], 10, "≥",
        h and bp and f"{bp['peak_bytes_max'] / MiB:.0f} MiB vs {h['peak_bytes_max'] / MiB:.0f} MiB; increase over "
                     f"the baseline {bp['peak_increase_bytes_median'] / MiB:.0f} vs {h['peak_increase_bytes_median'] / MiB:.1f} MiB "
                     f"({bp['peak_increase_bytes_median'] / max(h['peak_increase_bytes_median'], 1):.0f}×)")
    eprop = [r for r in runs if ok(r) and r["config"]["suite"] == "brf" and r["config"]["method"] == "eprop"]
    e = max(eprop, key=lambda r: r["config"]["T"]) if eprop else None
    hb = e and find(runs, **hypr, chunk=best, T=e["config"]["T"])
    add(f"EProp time per step ÷ HYPR (best λ={best}) time per step",
        hb and e["time_per_step_s"] / hb["time_per_step_s"], 10, "≥",
        hb and f"T={e['config']['T']}: {e['time_per_step_s'] * 1e3:.2f} vs {hb['time_per_step_s'] * 1e3:.3f} ms/step")
    h4, b4 = find(runs, **hypr, chunk=best, T=4096), find(runs, suite="brf", method="bptt", T=4096)
    add(f"HYPR (best λ={best}) time per step ÷ BPTT's at T=4,096",
        h4 and b4 and h4["time_per_step_s"] / b4["time_per_step_s"], 1.5, "≤",
        h4 and b4 and f"{h4['time_per_step_s'] * 1e3:.3f} vs {b4['time_per_step_s'] * 1e3:.3f} ms/step")
    return out


# -- plots --------------------------------------------------------------------------------------------

def pyplot():
    """matplotlib.pyplot with the file-only backend, or None where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_time_vs_lambda(runs: list[dict], path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    suites = [s for s in ("brf", "cue") if any(ok(r) and r["config"]["suite"] == s for r in runs)]
    if not suites:
        return False
    fig, axes = plt.subplots(1, len(suites), figsize=(6.5 * len(suites), 4.6), squeeze=False)
    for ax, suite in zip(axes[0], suites):
        rs = [r for r in runs if ok(r) and r["config"]["suite"] == suite]
        Ts = sorted({r["config"]["T"] for r in rs})
        colors = dict(zip(Ts, plt.cm.viridis([i / max(len(Ts) - 1, 1) for i in range(len(Ts))])))
        for T in Ts:
            h = sorted((r for r in rs if r["config"]["method"] == "hypr" and r["config"]["T"] == T
                        and r["config"]["backend"] == "torch"), key=lambda r: r["config"]["chunk"])
            if h:
                ax.plot([r["config"]["chunk"] for r in h], [r["time_per_step_s"] * 1e3 for r in h], "o-",
                        color=colors[T], label=f"HYPR, T={T}")
            for method, style in (("bptt", "--"), ("eprop", ":")):
                m = [r for r in rs if r["config"]["method"] == method and r["config"]["T"] == T]
                if m:
                    ax.axhline(m[0]["time_per_step_s"] * 1e3, ls=style, color=colors[T], lw=1,
                               label=f"{label(m[0])}, T={T}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("chunk length λ")
        ax.set_ylabel("time per step (ms), median")
        ax.set_title(f"suite {suite}: time per training step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_memory_vs_T(runs: list[dict], path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    suites = [s for s in ("brf", "lif", "cue") if any(ok(r) and r["config"]["suite"] == s for r in runs)]
    if not suites:
        return False
    fig, axes = plt.subplots(1, len(suites), figsize=(6 * len(suites), 4.6), squeeze=False)
    for ax, suite in zip(axes[0], suites):
        groups: dict[str, list[dict]] = {}
        for r in sorted((r for r in runs if ok(r) and r["config"]["suite"] == suite), key=group_key):
            groups.setdefault(label(r), []).append(r)
        for name, rs in groups.items():
            rs.sort(key=lambda r: r["config"]["T"])
            ax.plot([r["config"]["T"] for r in rs], [r["peak_bytes_max"] / MiB for r in rs], "o-", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("peak RSS of the process (MiB)")
        ax.set_title(f"suite {suite}: peak memory")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- summary --------------------------------------------------------------------------------------------

def write(out: Path) -> list[Path]:
    runs, skipped = load(out)
    entries = runs + skipped
    machine_path = out / "machine.json"
    machine = json.loads(machine_path.read_text()) if machine_path.exists() else {}
    lines = ["# Benchmark summary", ""]
    if machine:
        lines += [f"Machine: {machine.get('lscpu Model name', '?')}, {machine.get('nproc')} cores, "
                  f"{machine.get('MemTotal', '?')}; torch {machine.get('torch')}, {machine.get('torch_threads')} threads.", ""]
    tg = targets(runs)
    lines += ["## Targets (issue 6)", "", "| target | measured | limit | met |", "|---|---|---|---|"]
    for t in tg:
        ratio = "not measured" if t["ratio"] is None else f"{t['ratio']:.2f}×"
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {ratio} | {t['limit']} | {met} |")
    lines += [""] + [f"- {t['target']}: {t['detail']}" for t in tg if t["detail"]] + [""]
    for suite, es in by_suite(entries).items():
        lines += [f"## Suite {suite}", ""]
        lines += table(es, "Time per step, ms: median (min–max) over the repetitions", time_cell)
        lines += table(es, "Sample-steps per second (B·T / median time)",
                       lambda r: f"{r['sample_steps_per_s']:,.0f}")
        lines += table(es, "Peak RSS of the process, MiB / its increase over the baseline (after imports and model build)", mem_cell)
        lines += table(es, "Bytes held by the learner, MiB (HYPR/EProp: carried traces and state; "
                           "BPTT/snnTorch: tensors saved for backward)", learner_cell)
        rates = [r["hidden_spike_rate"] for r in es if ok(r) and r.get("hidden_spike_rate") is not None]
        if rates:
            lines += [f"Hidden-layer spike rate of hyprgen's network on the first 512 steps: {rates[0]:.1%} "
                      "(the same network and data for every method).", ""]
    if skipped:
        lines += ["## Skipped", ""] + [f"- {s['name']}: {s['skipped']}" for s in skipped] + [""]
        lines += ["¹ would not fit in memory; ² over the time budget (see the list).", ""]
    failed = [r for r in runs if "error" in r]
    if failed:
        lines += ["## Failed", ""] + [f"- {r['name']}: {r['error'].strip().splitlines()[-1] if r['error'].strip() else ''}"
                                      for r in failed] + [""]
    if machine and any(ok(r) for r in runs):
        lines += [roofline.markdown([r for r in runs if ok(r)], machine)]
    written = []
    md = out / "summary.md"
    md.write_text("\n".join(lines))
    written.append(md)
    js = out / "summary.json"
    js.write_text(json.dumps({"targets": tg, "machine": machine, "runs": runs, "skipped": skipped}, indent=1))
    written.append(js)
    for name, fn in (("time_per_step_vs_lambda.png", plot_time_vs_lambda), ("peak_memory_vs_T.png", plot_memory_vs_T)):
        if fn(runs, out / name):
            written.append(out / name)
    return written
