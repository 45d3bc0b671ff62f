"""Delayed cue task runs of the accuracy study (`cue`): the peak memory of one training step (HYPR
vs BPTT, each in a fresh subprocess: `cue-child`) and the test accuracy after a training run per
seed and delay.

A training run is `hyprgen train --task cue` with one epoch of --train-steps batches, the learning
rate constant or decayed linearly after every step (--lr-schedule linear: train's linear_step), at
most --max-seconds of training (train's --time-limit), the data drawn from --data-seed = seed.
--weight-scale scales the initial weights (BRF-exp needs ≈200 to spike on the cue, its δ = 0.01
makes one step of input move u by 0.01·I); every --param NAME LO HI redraws that raw parameter of
the hidden neurons from U[LO, HI] (e.g. b_offset = log b' for a damping slow enough to hold the cue
over the delay) from a generator of its own seeded with seed + 1 (train's --param-init-seed): the
draws of the runs in docs/results/accuracy.md.

Writes OUT/cuemem_<config>.json (memory) and OUT/cue_<config>_s<seed>.json (training runs).
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import time

import torch

import hyprgen
from benchmarks.perf.sysmon import hwm_bytes, reset_hwm, rss_bytes
from hyprgen.train import assemble

from . import runs
from .settings import OUT, ROOT


def param_init(neuron: str, params) -> list[str]:
    """--param NAME LO HI (repeatable) as train's --param-init NAME=uniform(LO, HI); a SystemExit for a
    parameter the neuron does not have (before any run starts)."""
    names = [p["name"] for p in hyprgen.load(neuron).META["params"]]
    for name, _, _ in params or ():
        if name not in names:
            raise SystemExit(f"--param {name}: neuron {neuron!r} has no parameter {name!r} (it has {', '.join(names)})")
    return [f"{name}=uniform({lo}, {hi})" for name, lo, hi in params or ()]


def train_options(*, neuron: str, hidden: int, weight_scale: float, params, method: str, chunk: int, lr: float,
                  lr_schedule: str, batch: int, delay: int, steps: int, test_samples: int, seed: int) -> dict:
    """The `hyprgen train` options of one cue run (runs.argv spells them)."""
    return {"task": "cue", "delay": delay, "epoch_batches": steps, "test_samples": test_samples,
            "neuron": neuron, "hidden": hidden, "readout": "li", "weight_scale": weight_scale,
            "param_init": param_init(neuron, params), "param_init_seed": seed + 1 if params else None,
            "method": method, "chunk": chunk if method.startswith("hypr") else None, "epochs": 1,
            "batch_size": batch, "optimizer": "adam", "lr": lr,
            "lr_schedule": "linear_step" if lr_schedule == "linear" else "constant",
            "seed": seed, "data_seed": seed, "threads": 1, "plots": False}


def cue_tag(a) -> str:
    """The network settings in a result name (empty for the defaults)."""
    tag = "" if a.weight_scale == 1.0 else f"_w{a.weight_scale:g}"
    return tag + "".join(f"_{n}{float(lo):g},{float(hi):g}" for n, lo, hi in a.param or ())


def cue_memory_child(a) -> dict:
    """One training step (gradient + Adam step) of one method at one delay, in this (fresh) process."""
    config = runs.config_of(runs.argv(train_options(
        neuron=a.neuron, hidden=a.hidden, weight_scale=a.weight_scale, params=a.param, method=a.method, chunk=a.chunk,
        lr=a.lr, lr_schedule="constant", batch=a.batch, delay=a.delay, steps=1, test_samples=64, seed=0)))
    task = assemble.build_task(config)
    gen = torch.Generator().manual_seed(0)
    net = assemble.build_network(config, task, torch.device("cpu"))
    learner, opt = assemble.build_learner(config, net, task), assemble.build_optimizer(config, net)
    # warm-up on a tiny input: loads lazily initialised code paths, optimizer state
    xw, yw = task.cue.batch(2, gen)
    learner.step(xw[:, -(a.chunk + 13):].contiguous(), yw[:, -(a.chunk + 13):].contiguous(), opt)
    x, y = task.cue.batch(a.batch, gen)
    input_bytes = x.numel() * x.element_size() + y.numel() * y.element_size()
    saved = {"bytes": 0}
    seen = set()

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            saved["bytes"] += t.numel() * t.element_size()
        return t

    gc.collect()
    ok = reset_hwm()
    before = rss_bytes()
    t = time.perf_counter()
    error = None
    try:
        if a.method == "bptt":
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                learner.step(x, y, opt)
        else:
            learner.step(x, y, opt)
    except (RuntimeError, MemoryError) as e:  # out of memory
        error = f"{type(e).__name__}: {str(e)[:200]}"
    wall = time.perf_counter() - t
    peak = hwm_bytes() - before if ok else None
    return {"method": a.method, "delay": a.delay, "T": task.seq_len, "batch": a.batch, "hidden": a.hidden,
            "neuron": a.neuron, "weight_scale": a.weight_scale, "param_init": a.param or [],
            "chunk": a.chunk if a.method.startswith("hypr") else None,
            "peak_rss_increase_bytes": peak, "hwm_reset_ok": ok, "rss_before_bytes": before,
            "input_bytes": input_bytes, "autograd_saved_bytes": saved["bytes"] if a.method == "bptt" else None,
            "step_s": wall, "error": error}


def cue_train_one(a, method: str, delay: int, seed: int) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    lam = f"_l{a.chunk}" if method.startswith("hypr") else ""
    decay = "_linear" if a.lr_schedule == "linear" else ""
    n_steps = a.steps[str(delay)]
    name = (f"cue_{a.neuron}{cue_tag(a)}_{method}{lam}_d{delay}_h{a.hidden}_b{a.batch}_lr{a.lr:g}{decay}"
            f"_n{n_steps}_s{seed}")
    final = OUT / f"{name}.json"
    if final.exists():
        print(f"[skip] {name}", flush=True)
        return json.loads(final.read_text())
    options = train_options(neuron=a.neuron, hidden=a.hidden, weight_scale=a.weight_scale, params=a.param,
                            method=method, chunk=a.chunk, lr=a.lr, lr_schedule=a.lr_schedule, batch=a.batch,
                            delay=delay, steps=n_steps, test_samples=a.test_samples, seed=seed)
    print(f"[cue] {name}", flush=True)
    trainer = runs.start(runs.argv({**options, "time_limit": a.max_seconds}))
    code = trainer.run()
    if code != 0:
        sys.exit(code)
    steps = trainer.log.of("step")
    test_acc = trainer.log.of("epoch")[-1]["test_accuracy"]
    result = {"name": name, "method": method, "delay": delay, "T": trainer.task.seq_len, "neuron": a.neuron,
              "weight_scale": a.weight_scale, "param_init": a.param or [], "seed": seed, "lr_schedule": a.lr_schedule,
              "hidden": a.hidden, "batch": a.batch, "lr": a.lr, "steps": len(steps), "steps_planned": n_steps,
              "chunk": a.chunk if method.startswith("hypr") else None, "train_s": steps[-1]["elapsed"],
              "test_acc": test_acc, "test_samples": trainer.task.test_samples,
              "curve": [{"step": e["step"], "loss": e["loss"], "train_acc": e["accuracy"]} for e in steps]}
    final.write_text(json.dumps(result, indent=1))
    print(f"[cue] {name}: test acc {test_acc:.3f} after {len(steps)} steps ({result['train_s']:.0f} s)", flush=True)
    return result


def cmd_cue(a) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    param_init(a.neuron, a.param)  # refuse an unknown --param before anything runs
    a.steps = dict(zip(map(str, a.delays), a.train_steps))
    if not a.skip_memory:
        for delay in a.delays:
            for method in a.methods:
                path = OUT / f"cuemem_{a.neuron}{cue_tag(a)}_{method}_d{delay}_h{a.hidden}_b{a.batch}.json"
                if path.exists():
                    print(f"[skip] {path.name}", flush=True)
                    continue
                cmd = [sys.executable, "-m", "benchmarks.studies.accuracy", "cue-child", "--method", method,
                       "--delay", str(delay), "--hidden", str(a.hidden), "--batch", str(a.batch),
                       "--chunk", str(a.chunk), "--neuron", a.neuron, "--lr", str(a.lr),
                       "--weight-scale", str(a.weight_scale)]
                for name, lo, hi in a.param or ():
                    cmd += ["--param", name, lo, hi]
                p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                if p.returncode == 0:
                    res = json.loads(p.stdout.strip().splitlines()[-1])
                else:  # killed (e.g. by the OOM killer) or crashed
                    res = {"method": method, "delay": delay, "error": f"exit {p.returncode}: {p.stderr[-500:]}"}
                res["child_returncode"] = p.returncode
                path.write_text(json.dumps(res, indent=1))
                peak = res.get("peak_rss_increase_bytes")
                print(f"[cue-mem] {method} delay {delay}: peak +{(peak or 0) / 2**20:.1f} MiB, "
                      f"step {res.get('step_s', float('nan')):.1f} s, error {res.get('error')}", flush=True)
    for seed in a.seeds:
        for delay in a.delays:
            for method in a.methods:
                if a.steps[str(delay)] > 0:
                    cue_train_one(a, method, delay, seed)
    return 0
