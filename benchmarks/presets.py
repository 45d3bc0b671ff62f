"""Do the task presets learn? `hyprgen train --task X` for every task, with nothing but the data's place.

    python -m benchmarks.presets [--tasks cue ecg shd digits] [--epochs N] [--out FILE] [--dry-run]

Each run is `hyprgen train --task X --quiet --no-plots` (in this process, through the CLI's own entry
point), so it gets exactly the preset of hyprgen/train/presets.py on the default single thread;
--epochs N overrides the presets' epochs (a smaller budget), --dry-run ends each run after its first
step (the epoch evaluated: what the test suite runs). ECG reads $HYPRGEN_ECG_DIR, else
../shared/data/ecg_qtdb beside the repository; SHD reads $HYPRGEN_SHD_DIR. A task whose data is not
there is skipped with the reason. Printed and written (--out, JSON) per task: the final test accuracy,
its chance level, the hidden layers' spike rates on the test set, training seconds, epochs and steps;
with the load average before and after each run, since the times depend on what else runs (the
presets' table in docs/training.md gives the load of each measured run).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import tempfile
from pathlib import Path

from hyprgen.cli import main as hyprgen_main
from hyprgen.data import TASKS
from hyprgen.train.metrics import MetricsLog

from .studies.accuracy.settings import ECG_DIR

# What guessing scores, the bar a preset must clear: one of n classes, except ECG, scored per step, whose
# most frequent class holds 30.5 % of the test steps (docs/data.md), what a network that learned nothing
# but the bias reaches.
CHANCE = {"cue": 1 / 2, "ecg": 0.305, "shd": 1 / 20, "digits": 1 / 10}
DATA_DIRS = {"ecg": ECG_DIR, "shd": os.environ.get("HYPRGEN_SHD_DIR")}


def run_task(task: str, epochs: int | None, dry_run: bool) -> dict:
    """One preset run: its summary, the last epoch's spike rates and the load around it (or why it was skipped)."""
    argv = ["train", "--task", task, "--quiet", "--no-plots"]
    if task in DATA_DIRS:
        folder = DATA_DIRS[task]
        if not folder or not Path(folder).is_dir():
            return {"skipped": f"no {task} data ({folder or 'no folder given'}; docs/data.md)"}
        argv += ["--data-dir", folder]
    argv += ["--epochs", str(epochs)] if epochs else []
    argv += ["--time-limit", "1e-9"] if dry_run else []   # ends after the first step, that epoch evaluated
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        report = io.StringIO()
        with contextlib.redirect_stdout(report):
            code = hyprgen_main([*argv, "--out", str(out)])
        if code != 0:
            return {"skipped": f"hyprgen train exited with {code}", "argv": argv, "report": report.getvalue()}
        summary = json.loads((out / "summary.json").read_text())
        last = MetricsLog.read(out / "metrics.jsonl")[-1]
        config = (out / "config.toml").read_text()
    return {"argv": argv, "test_accuracy": summary["test_accuracy"], "chance": CHANCE[task],
            "spike_rates": last["test_spike_rates"], "seconds": summary["seconds"], "epochs": summary["epochs"],
            "steps": summary["steps"], "load_before": load_before, "load_after": os.getloadavg(),
            "config_toml": config, "hints": [line for line in report.getvalue().splitlines() if "hint:" in line]}


def line(task: str, r: dict) -> str:
    if "skipped" in r:
        return f"{task:<7} skipped: {r['skipped']}"
    rates = ", ".join(f"{rate:.3f}" for rate in r["spike_rates"])
    return (f"{task:<7} test accuracy {r['test_accuracy']:.3f} (chance {r['chance']:.3f})  spike rates {rates}  "
            f"{r['seconds']:.1f} s ({r['epochs']} epochs, {r['steps']} steps)  load {r['load_before'][0]:.2f} → "
            f"{r['load_after'][0]:.2f}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--epochs", type=int, default=None, help="instead of each preset's epochs (a smaller budget)")
    ap.add_argument("--dry-run", action="store_true", help="one step per run, then its evaluation (tests)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores", flush=True)
    results = {}
    for task in args.tasks:
        results[task] = run_task(task, args.epochs, args.dry_run)
        print(line(task, results[task]), flush=True)
        for hint in results[task].get("hints", ()):
            print(f"        {hint}", flush=True)
    data = {"config": vars(args), "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "results": results}
    if args.out:
        Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    return data


if __name__ == "__main__":
    main()
