"""The accuracy study's report (`report`): markdown tables on stdout and in OUT/report.md, and the
plots in DOCS/img/: results_ecg*.png (BRF, per readout and budget; the first li budget keeps the
plain name), results_alif.png, results_cue.png. Unfinished ECG runs (a run directory with a
checkpoint and no result file yet) are shown in the tables' notes and dashed in the plots.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks.perf.report import pyplot
from hyprgen.train import checkpoint

from .align import align_table
from .runs import history, saved_run
from .settings import DOCS, IMG, OUT

ARCHIVED = Path(__file__).with_name("archived.json")

# per-step test accuracy (%) of the BRF repository's own BPTT run, epochs 0..25
# (experiments/ecg/csv_files/ecg_best_model_run_0.csv; lr decays over 400 epochs there)
BRF_RUN0_TEST = [23.55, 52.28, 70.18, 76.48, 79.09, 80.56, 81.83, 81.61, 81.56, 80.74, 80.61, 82.17, 82.05,
                 82.54, 81.75, 81.57, 82.30, 81.53, 83.02, 82.08, 82.25, 82.83, 81.39, 82.64, 82.11, 82.73]


def mean_std(v):
    v = [x for x in v if x is not None]
    if not v:
        return float("nan"), float("nan")
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, s


def load_runs(prefix: str) -> list[dict]:
    """The finished runs' result files, and the unfinished runs (marked partial) from their checkpoints."""
    found = [json.loads(p.read_text()) for p in sorted(OUT.glob(f"{prefix}*.json"))]
    for p in sorted(OUT.glob(f"{prefix}*/{checkpoint.FILENAME}")):
        if not (OUT / f"{p.parent.name}.json").exists():  # (names hold dots: lr0.1)
            meta, saved = saved_run(p.parent)
            found.append({**meta, "partial": True, "history": history(saved["metrics"])})
    return found


def group(results):
    out = {}
    for r in results:
        out.setdefault(r["method"], []).append(r)
    return out


def ecg_table(runs, label):
    lines = [f"| {label} | seeds | epochs | final test acc (%) | test acc at best-val epoch (%) | best test acc (%) "
             f"| train acc (%) | s/epoch (train, wall) |", "|---|---|---|---|---|---|---|---|"]
    stats = {}
    for method, rs in sorted(group(runs).items()):
        rs = [r for r in rs if not r.get("partial")]
        if not rs:
            continue
        final = [r["history"][-1]["test_acc"] * 100 for r in rs]
        at_val = []
        for r in rs:
            h = [e for e in r["history"] if e["val_loss"] is not None and e["epoch"] > 0]
            if h:
                at_val.append(min(h, key=lambda e: e["val_loss"])["test_acc"] * 100)
        best = [max(e["test_acc"] for e in r["history"]) * 100 for r in rs]
        train = [r["history"][-1]["train_acc"] * 100 for r in rs]
        secs = [e["train_s"] for r in rs for e in r["history"] if e["epoch"] > 0]
        m, s = mean_std(final)
        stats[method] = {"final": final, "mean": m, "std": s, "seeds": [r["seed"] for r in rs]}
        lines.append(f"| {method} | {len(rs)} ({', '.join(str(r['seed']) for r in rs)}) | {rs[0]['epochs']} | "
                     f"{m:.2f} ± {s:.2f} ({', '.join(f'{v:.2f}' for v in final)}) | "
                     "{:.2f} ± {:.2f} | {:.2f} ± {:.2f} | {:.2f} ± {:.2f} | {:.1f} (median {:.1f}) |".format(
                         *mean_std(at_val), *mean_std(best), *mean_std(train),
                         sum(secs) / len(secs), sorted(secs)[len(secs) // 2]))
    return "\n".join(lines), stats


def plot_ecg(runs, path: Path, title: str):
    plt = plots_pyplot()
    colors = {"hypr": "tab:blue", "bptt": "tab:red", "hypr_drop": "tab:green", "bptt_detach": "tab:purple",
              "hypr_same_step": "tab:cyan"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        h = r["history"]
        c = colors.get(r["method"], "k")
        ls = "--" if r.get("partial") else "-"
        ep = [e["epoch"] for e in h]
        axes[0].plot(ep, [e["test_acc"] * 100 for e in h], ls, color=c, alpha=0.8, lw=1.2,
                     label=f"{r['method']} s{r['seed']}" + (" (partial)" if r.get("partial") else ""))
        axes[1].plot([e["epoch"] for e in h[1:]], [e["train_loss"] for e in h[1:]], ls, color=c, alpha=0.8, lw=1.2)
    if any(r["neuron"] == "brf" for r in runs):
        axes[0].plot(range(len(BRF_RUN0_TEST)), BRF_RUN0_TEST, ":", color="k", lw=1.2,
                     label="BRF repo BPTT run 0 (lr decay over 400 ep.)")
        axes[0].axhline(85, color="gray", ls=":", lw=1, label="BRF paper BPTT ≈85 % (400 ep.)")
        axes[0].axhline(84, color="gray", ls="-.", lw=0.8, label="target 84 %")
    late = [e["test_acc"] * 100 for r in runs for e in r["history"][3:]]  # after the first epochs' climb
    axes[0].set_ylim(min([70.0] + [v - 2 for v in late]), 87)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("per-step test accuracy (%)")
    axes[0].legend(fontsize=7, ncol=2, loc="lower right")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("train loss (mean CE per step)")
    axes[1].set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plots_pyplot():
    """matplotlib.pyplot (file-only backend) for the report's plots, or a clear exit without it."""
    plt = pyplot()
    if plt is None:
        raise SystemExit("the report's plots need matplotlib: pip install -e '.[bench]'")
    return plt


def plot_cue(runs, path: Path) -> None:
    """Training accuracy (moving mean over 10 steps) and loss per step, one panel pair per delay."""
    plt = plots_pyplot()
    delays = sorted({r["delay"] for r in runs})
    fig, axes = plt.subplots(2, len(delays), figsize=(5.5 * len(delays), 6), squeeze=False)
    colors = {"hypr": "tab:blue", "bptt": "tab:red"}
    for col, delay in enumerate(delays):
        for r in (r for r in runs if r["delay"] == delay):
            steps = [c["step"] for c in r["curve"]]
            acc = [c["train_acc"] for c in r["curve"]]
            smooth = [sum(acc[max(0, i - 9):i + 1]) / len(acc[max(0, i - 9):i + 1]) for i in range(len(acc))]
            label = f"{r['method']} s{r.get('seed', 0)} (test {r['test_acc']:.3f})"
            style = dict(color=colors.get(r["method"], "k"), ls=("-", "--", ":")[r.get("seed", 0) % 3])  # line: seed
            axes[0, col].plot(steps, smooth, lw=1.2, label=label, **style)
            axes[1, col].plot(steps, [c["loss"] for c in r["curve"]], lw=0.8, **style)
        axes[0, col].set_title(f"delay {delay:,} (T = {delay + 20:,})")
        axes[0, col].set_ylabel("train accuracy (mean of 10 steps)")
        axes[0, col].set_ylim(0.3, 1.02)
        axes[0, col].legend(fontsize=8, loc="lower right")
        axes[1, col].set_ylabel("train loss")
        axes[1, col].set_yscale("log")
        axes[1, col].set_xlabel("training step (batch of 16)")
    fig.suptitle("Delayed cue task, BRF-exp 32 hidden: HYPR (λ = 100) vs BPTT")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ecg_report(runs, neuron: str, epochs: int, png: str, readout: str = "li", figures: dict | None = None
               ) -> list[str]:
    """Table, paired gaps, unfinished runs and plot of the ECG runs of one neuron, readout and budget;
    the table's final test accuracies also go into `figures` (docs/results/accuracy.json)."""
    table, stats = ecg_table(runs, f"{neuron.upper()} method")
    if figures is not None and stats:
        figures[f"ecg_{neuron}_{readout}_e{epochs}"] = {
            method: {"mean": s["mean"], "std": s["std"], "per_seed": s["final"], "seeds": s["seeds"],
                     "epochs": epochs, "metric": "final per-step test accuracy (%)"}
            for method, s in stats.items()}
    out = [f"### ECG, {neuron.upper()}, {readout} readout, {epochs} epochs\n\n{table}\n"]
    ms = sorted(stats)
    for i in range(len(ms)):
        for j in range(i + 1, len(ms)):
            s1, s2 = stats[ms[i]], stats[ms[j]]
            common = sorted(set(s1["seeds"]) & set(s2["seeds"]))
            d = [s1["final"][s1["seeds"].index(s)] - s2["final"][s2["seeds"].index(s)] for s in common]
            m, s = mean_std(d)
            out.append(f"gap {ms[i]} − {ms[j]} (paired by seed, {len(common)} seeds): {m:+.2f} ± {s:.2f} points "
                       f"({', '.join(f'{v:+.2f}' for v in d)})\n")
    partial = [r["name"] + f" (epoch {r['history'][-1]['epoch']})" for r in runs if r.get("partial")]
    if partial:
        out.append("unfinished: " + ", ".join(partial) + "\n")
    if all(r.get("partial") for r in runs):  # nothing finished yet: no plot for docs/img/
        return out
    plot_ecg(runs, IMG / png, f"ECG-QTDB, {neuron.upper()} 36 hidden, {readout} readout, {epochs} epochs: HYPR vs "
             + ("BPTT" if neuron == "brf" else "HYPR without spike paths"))
    out.append(f"plot: docs/img/{png}\n")
    return out


def cue_figures(runs) -> dict:
    """accuracy.json's cue studies: per delay, method → test accuracy over the seeds run."""
    out = {}
    for r in sorted(runs, key=lambda r: (r["delay"], r["method"], r.get("seed", 0))):
        f = out.setdefault(f"cue_{r['neuron']}_d{r['delay']}", {}).setdefault(
            r["method"], {"per_seed": [], "seeds": [], "steps": r["steps"],
                          "metric": f"test accuracy on {r.get('test_samples', 64)} sequences"})
        f["per_seed"].append(r["test_acc"])
        f["seeds"].append(r.get("seed", 0))
    for methods in out.values():
        for f in methods.values():
            f["mean"], f["std"] = mean_std(f["per_seed"])
    return out


def archived_figures() -> dict:
    """Figures of earlier runs (docs/results/accuracy.md) whose result files were not kept: ARCHIVED,
    per-seed values as the tables give them (2–3 decimals), each marked with its source."""
    out = {}
    for study, methods in json.loads(ARCHIVED.read_text()).items():
        for method, f in methods.items():
            m, s = mean_std(f["per_seed"])
            out.setdefault(study, {})[method] = {**f, "mean": m, "std": s}
    return out


def cmd_report(a) -> int:
    out, figures = [], {}
    for neuron, stem in (("brf", "results_ecg"), ("alif", "results_alif")):
        by_budget = {}
        for r in load_runs(f"ecg_{neuron}_"):
            by_budget.setdefault((r.get("readout", "li"), r["epochs"]), []).append(r)
        first = min(by_budget, default=None)
        for (readout, epochs), runs in sorted(by_budget.items()):
            # the first (li readout, smallest budget) keeps the plain name (the plots docs/results/accuracy.md had first)
            suffix = ("" if readout == "li" else f"_{readout}") + ("" if epochs == first[1] else f"_e{epochs}")
            out += ecg_report(runs, neuron, epochs, f"{stem}{suffix}.png", readout, figures)
    mem = [json.loads(p.read_text()) for p in sorted(OUT.glob("cuemem_*.json"))]
    if mem:
        out.append("### Cue: one training step\n\n| neuron | method | delay | T | batch | hidden | peak RSS increase (MiB) | "
                   "autograd saved tensors (MiB) | step (s) | error |\n|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(mem, key=lambda r: (r.get("neuron", ""), r["delay"], r["method"])):
            pk = r.get("peak_rss_increase_bytes")
            sv = r.get("autograd_saved_bytes")
            out.append(f"| {r.get('neuron', '')} | {r['method']} | {r['delay']} | {r.get('T', '')} | {r.get('batch', '')} | {r.get('hidden', '')} | "
                       f"{'' if pk is None else f'{pk / 2**20:.1f}'} | {'' if sv is None else f'{sv / 2**20:.1f}'} | "
                       f"{r.get('step_s', float('nan')):.2f} | {r.get('error') or ''} |")
        out.append("")
    cue = [json.loads(p.read_text()) for p in sorted(OUT.glob("cue_*.json"))]
    if cue:
        out.append("### Cue: training runs\n\n| neuron | weight scale | parameter init | method | delay | seed | steps | "
                   "batch | lr (schedule) | train time (s) | train acc, last 20 steps | test acc | test sequences |\n"
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(cue, key=lambda r: (r["neuron"], r.get("weight_scale", 1.0), r["delay"], r.get("seed", 0), r["method"])):
            last = r["curve"][-20:]
            init = "; ".join(f"{n} ~ U[{lo}, {hi}]" for n, lo, hi in r.get("param_init", []))
            out.append(f"| {r['neuron']} | {r.get('weight_scale', 1.0):g} | {init} | {r['method']} | {r['delay']} | "
                       f"{r.get('seed', 0)} | {r['steps']} | {r['batch']} | {r['lr']} ({r.get('lr_schedule', 'constant')}) | {r['train_s']:.0f} | "
                       f"{sum(c['train_acc'] for c in last) / len(last):.3f} | {r['test_acc']:.3f} | "
                       f"{r.get('test_samples', 64)} |")
        out.append("")
        learned = [r for r in cue if r["neuron"] == "brf_exp" and r.get("lr_schedule") == "linear"]
        figures.update(cue_figures(learned))
        if learned:
            plot_cue(learned, IMG / "results_cue.png")
            out.append("plot: docs/img/results_cue.png\n")
    align = [json.loads(p.read_text()) for p in sorted(OUT.glob("align_*.json"))]
    if align:
        out.append("### ECG: gradient alignment\n")
        for r in align:
            out += align_table(r)
    text = "\n".join(out)
    print(text)
    (OUT / "report.md").write_text(text)
    for study, methods in archived_figures().items():   # earlier runs whose result files were not kept
        for method, f in methods.items():
            figures.setdefault(study, {}).setdefault(method, f)
    if figures:   # the figures a script reads: study → method → {mean, std, per_seed, seeds, epochs}
        (DOCS / "results").mkdir(parents=True, exist_ok=True)
        (DOCS / "results" / "accuracy.json").write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
        print(f"figures: {DOCS / 'results' / 'accuracy.json'}")
    return 0


