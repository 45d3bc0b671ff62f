"""ECG-QTDB runs of the accuracy study (`ecg`) and their cost per batch (`time`).

The setup of the BRF repository's experiments/ecg/ecg_train.py: an RSNN with 36 recurrent BRF (or
ALIF) neurons and an LI readout (--readout linear: non-leaky), Adam with lr 0.1 (ALIF: 0.05, its
ecg_alif_train.py), the learning rate decayed linearly per epoch, lr_e = lr·(1 − e/E) with E the
run's epochs (BRF: E = 400), batch 16, 10 % of the training file held out for validation (557 train
/ 61 val / 141 test sequences), no gradient clipping, per-step cross-entropy over all 1300 steps.
Same seed ⇒ same initial network and the same batch order for every method (--data-seed = seed).

Each run is `hyprgen train` in OUT/NAME (config.toml, metrics.jsonl, checkpoint.pt): a stopped run
resumes from its checkpoint when started again, a finished one writes OUT/NAME.json and is skipped
after that; its run directory keeps the trained network (for `align`).
"""
from __future__ import annotations

import json
import math
import sys
import time

import torch

from hyprgen.data import make_task
from hyprgen.train import assemble
from hyprgen.train.evaluation import evaluate
from hyprgen.train.learners import method_of

from . import runs
from .settings import DEFAULT_LR, ECG_DIR, ECG_WEIGHT_SCALE, OUT

# `time`: the configurations of docs/results/accuracy.md (neuron, method, λ or None)
TIMED = [("brf", "hypr", 64), ("brf", "hypr", 100), ("brf", "bptt", None),
         ("alif", "hypr", 100), ("alif", "hypr_drop", 100), ("alif", "bptt", None)]


def train_options(*, neuron: str, method: str, seed: int, hidden: int, chunk: int | None, readout: str = "li",
                  lr: float = 0.1, batch: int = 16, epochs: int = 1, val_fraction: float = 0.1,
                  eval_batch: int = 141) -> dict:
    """The `hyprgen train` options of one ECG run (runs.argv spells them)."""
    return {"task": "ecg", "data_dir": ECG_DIR, "val_fraction": val_fraction, "split_seed": 0,
            "neuron": neuron, "hidden": hidden, "readout": readout, "weight_scale": ECG_WEIGHT_SCALE,
            "method": method, "chunk": chunk if method_of(method) == "hypr" else None,
            "epochs": epochs, "batch_size": batch, "optimizer": "adam", "lr": lr, "lr_schedule": "linear",
            "seed": seed, "data_seed": seed, "eval_batch_size": eval_batch, "initial_eval": True,
            "stop_on_nonfinite": True, "threads": 1, "plots": False}


def run_name(a, method: str, seed: int) -> str:
    lam = f"_l{a.chunk}" if method.startswith("hypr") else ""
    readout = "" if a.readout == "li" else f"_{a.readout}"
    return f"ecg_{a.neuron}{readout}_{method}{lam}_lr{a.lr}_b{a.batch}_e{a.epochs}_s{seed}"


def run_ecg_one(a, method: str, seed: int) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    name = run_name(a, method, seed)
    final = OUT / f"{name}.json"
    if final.exists():
        print(f"[skip] {name}: finished ({final.name})", flush=True)
        return json.loads(final.read_text())
    options = train_options(neuron=a.neuron, method=method, seed=seed, hidden=a.hidden, chunk=a.chunk,
                            readout=a.readout, lr=a.lr, batch=a.batch, epochs=a.epochs,
                            val_fraction=a.val_fraction, eval_batch=a.eval_batch)
    meta = {"name": name, "method": method, "neuron": a.neuron, "seed": seed, "epochs": a.epochs,
            "readout": a.readout}
    trainer = runs.start(runs.argv(options), OUT / name, meta)
    done = trainer.progress.epoch
    print(f"[{'resume' if trainer.progress.step else 'run'}] {name}: epoch {done}/{a.epochs}", flush=True)
    code = trainer.run()
    if code != 0:  # stopped by a signal: the checkpoint is saved, the next start resumes it
        sys.exit(code)
    task = trainer.task
    result = {"name": name, "task": "ecg", "neuron": a.neuron, "readout": a.readout, "method": method, "seed": seed,
              "chunk": a.chunk if method.startswith("hypr") else None, "hidden": a.hidden, "lr": a.lr,
              "batch": a.batch, "epochs": a.epochs, "val_fraction": a.val_fraction,
              "n_train": len(task.train), "n_val": len(task.val) if task.val else 0, "n_test": len(task.test),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "history": runs.history(trainer.log.events)}
    final.write_text(json.dumps(result, indent=1))
    return result


def cmd_ecg(a) -> int:
    a.lr = a.lr if a.lr is not None else DEFAULT_LR.get(a.neuron, 0.1)
    for seed in a.seeds:           # seed-major: a partial study still has matched pairs
        for method in a.methods:
            run_ecg_one(a, method, seed)
    return 0


def cmd_time(a) -> int:
    """Seconds per training batch (B = 16, T = 1300) of each configuration, median of a few batches,
    and of one evaluation of the test set; the networks are the runs' (seed 0)."""
    task = make_task("ecg", directory=ECG_DIR, val_fraction=0.1, split_seed=0)
    x, y = next(task.train_batches(a.batch, torch.Generator().manual_seed(0)))
    device = torch.device("cpu")
    rows = []
    for neuron, method, chunk in TIMED:
        config = runs.config_of(runs.argv(train_options(neuron=neuron, method=method, seed=0, hidden=a.hidden,
                                                        chunk=chunk, lr=DEFAULT_LR[neuron], batch=a.batch)))
        net = assemble.build_network(config, task, device)
        learner, opt = assemble.build_learner(config, net, task), assemble.build_optimizer(config, net)
        ts = []
        for _ in range(a.reps):
            t = time.perf_counter()
            learner.step(x, y, opt)
            ts.append(time.perf_counter() - t)
        t0 = time.perf_counter()
        evaluate(net, task, task.test_batches(a.eval_batch), device)
        ev = time.perf_counter() - t0
        batches = math.ceil(len(task.train) / a.batch)
        med = sorted(ts)[len(ts) // 2]
        rows.append({"neuron": neuron, "method": method, "chunk": chunk, "s_per_batch": med,
                     "epoch_s": med * batches, "eval_test_s": ev})
        print(f"{neuron:5s} {method:10s} λ={chunk or '-':>4}  {med:.3f} s/batch  ≈{med * batches:.1f} s/epoch "
              f"(+ test eval {ev:.1f} s)", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "timing.json").write_text(json.dumps(rows, indent=1))
    return 0
