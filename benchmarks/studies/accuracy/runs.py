"""The study's runs are `hyprgen train` runs: the study spells each as the command line of
`hyprgen train`, and hyprgen.train resolves it (defaults, checks), builds, trains, evaluates and
checkpoints it. There is no training loop here; `history` reads the Trainer's metrics as the
per-epoch history of the study's result files (docs/results/accuracy.md).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from hyprgen.train import checkpoint, trainer
from hyprgen.train.learners import VARIANTS
from hyprgen.train.options import BY_NAME, add_arguments, flag, resolve

META = "study.json"  # in a run directory: the study's name for the run and what it lists it by


def argv(options: dict) -> list[str]:
    """{option: value} as `hyprgen train` arguments: True → --flag, False → --no-flag where the
    default is on (else left out), None or [] → left out, a list → several values; method may be a
    variant (hypr_drop → --method hypr --drop-spike-paths, hypr_same_step → --no-readout-memory)."""
    out = []
    for name, value in options.items():
        if name == "method":
            method, option, setting = VARIANTS.get(value, (value, None, None))
            out += ["--method", method]
            if option is not None:
                out.append(flag(option) if setting else "--no-" + flag(option)[2:])
        elif value is True:
            out.append(flag(name))
        elif value is False:
            out += ["--no-" + flag(name)[2:]] if BY_NAME[name].default is True else []
        elif value is not None and value != []:
            out += [flag(name), *map(str, value if isinstance(value, list) else [value])]
    return out


def parse(args: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="hyprgen train")
    add_arguments(ap)
    return ap.parse_args(args)


def config_of(args: list[str]) -> dict:
    """The resolved config of `hyprgen train ARGS` (for the parts a study builds without training)."""
    return resolve(parse(args))


def start(args: list[str], run_dir: Path | None = None, meta: dict | None = None) -> trainer.Trainer:
    """The Trainer of `hyprgen train ARGS [--out run_dir]`, begun: resumed when run_dir holds a
    checkpoint, else fresh (meta, the study's description of the run, is written beside it)."""
    if run_dir is not None:
        resume = (run_dir / checkpoint.FILENAME).exists()
        args = [*args, "--out", str(run_dir), *(["--resume"] if resume else [])]
        if not resume and meta is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / META).write_text(json.dumps(meta, indent=1))
    return trainer.prepare(parse(args))


def saved_run(run_dir: Path) -> tuple[dict, dict]:
    """(the study's meta, the checkpoint) of a run directory, read by hyprgen's checkpoint loader (weights_only,
    CRCs and payload digest checked; a damaged file is a CheckpointError naming it)."""
    meta = json.loads((run_dir / META).read_text()) if (run_dir / META).exists() else {"name": run_dir.name}
    return meta, checkpoint.load(run_dir / checkpoint.FILENAME)


def history(events: list[dict]) -> list[dict]:
    """The per-epoch history of a run's metrics events: epoch 0 from the initial evaluation, then one
    entry per epoch. train_s and train_cpu_s are the wall and CPU seconds from the previous epoch's
    end (or the start) to the epoch's last step: its training steps, without its evaluation."""
    out, steps, before = [], [], {"elapsed": 0.0, "cpu_s": 0.0}
    for e in events:
        if e["event"] == "step":
            steps.append(e)
            continue
        entry = {"epoch": e["epoch"], "test_acc": e["test_accuracy"], "test_loss": e["test_loss"],
                 "val_acc": e.get("val_accuracy"), "val_loss": e.get("val_loss"), "rate": e["test_spike_rate"]}
        if e["event"] == "initial":
            entry.update(train_loss=None, train_acc=None, train_s=0.0, lr=e["lr"])
        else:
            entry.update(train_loss=e["train_loss"], train_acc=e["train_accuracy"],
                         train_s=steps[-1]["elapsed"] - before["elapsed"],
                         train_cpu_s=steps[-1]["cpu_s"] - before["cpu_s"], lr=e["lr"],
                         nan=not all(math.isfinite(s["loss"]) for s in steps))
        out.append(entry)
        steps, before = [], e
    return out
