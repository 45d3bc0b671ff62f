"""The HYPR-vs-BPTT accuracy study of issue 5 (not in CI; results in docs/RESULTS.md).

Subcommands (every training process uses one CPU thread):

  ecg     BRF (or ALIF) RSNN, 36 recurrent hidden neurons, LI readout (--readout linear: non-leaky),
          on ECG-QTDB, with one or more methods: hypr (λ = --chunk, hyprgen's exact neuron-local
          spike paths), hypr_drop (HYPR with drop_spike_paths=True, as in the HYPR authors' release)
          and bptt.
          Setup of the BRF repository's experiments/ecg/ecg_train.py: Adam lr 0.1 (ALIF: 0.05, as in
          its ecg_alif_train.py), learning rate decayed linearly per epoch, lr_e = lr·(1 − e/E) with
          E = the number of epochs of the run (BRF: E = 400), batch 16, 10 % of the training file
          held out for validation (557 train / 61 val / 141 test sequences), no gradient clipping,
          per-step cross-entropy over all 1300 steps. Same seed ⇒ same initial network and same batch
          order for every method.
  cue     delayed cue task at the given delays: peak memory of one training step (HYPR vs BPTT,
          each measured in a fresh subprocess) and test accuracy after a training run per seed
          (--weight-scale, --param NAME LO HI and --lr-schedule make BRF-exp learn it).
  report  tables (markdown, stdout) and plots (docs/results_ecg*.png per readout and budget,
          docs/results_alif.png, docs/results_cue.png) from the result files.
  align   gradient alignment on ECG: at a run's checkpoint (or at initialisation), each method's
          gradient on the same training batches against BPTT's (cosine and norm ratio per parameter).
  time    seconds per training batch of each ECG configuration (to plan the budget).

Results: benchmarks/results/accuracy_study/ — one JSON per finished (config, seed); a run that is
stopped keeps a checkpoint (.ckpt.pt) after every epoch and resumes from it when started again;
finished runs are skipped; a finished run's last checkpoint is kept as NAME.final.pt. Examples:

    python -m benchmarks.accuracy_study ecg --neuron brf --methods hypr bptt --seeds 0 1 2 --epochs 25
    python -m benchmarks.accuracy_study ecg --neuron alif --methods hypr hypr_drop --seeds 0 1 2 --epochs 10
    python -m benchmarks.accuracy_study cue --delays 1000 10000
    python -m benchmarks.accuracy_study cue --neuron brf_exp --weight-scale 200 --param b_offset -5.2983 -2.9957 \
        --lr 0.005 --lr-schedule linear --train-steps 300 150 --test-samples 256 --seeds 0 1
    python -m benchmarks.accuracy_study align --checkpoint benchmarks/results/accuracy_study/NAME.final.pt --batches 8
    python -m benchmarks.accuracy_study report
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

import hyprgen  # noqa: E402
from hyprgen.data import make_task  # noqa: E402

from .hypr_memory_time import compare, grads_of  # noqa: E402
from .report import pyplot  # noqa: E402
from .sysmon import hwm_bytes, reset_hwm, rss_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("ACCURACY_STUDY_OUT", ROOT / "benchmarks" / "results" / "accuracy_study"))
DOCS = Path(os.environ.get("ACCURACY_STUDY_DOCS", ROOT / "docs"))
ECG_DIR = os.environ.get("HYPRGEN_ECG_DIR", str(ROOT.parent / "shared" / "data" / "ecg_qtdb"))
DEFAULT_LR = {"brf": 0.1, "alif": 0.05}
# per-step test accuracy (%) of the BRF repository's own BPTT run, epochs 0..25
# (experiments/ecg/csv_files/ecg_best_model_run_0.csv; lr decays over 400 epochs there)
BRF_RUN0_TEST = [23.55, 52.28, 70.18, 76.48, 79.09, 80.56, 81.83, 81.61, 81.56, 80.74, 80.61, 82.17, 82.05,
                 82.54, 81.75, 81.57, 82.30, 81.53, 83.02, 82.08, 82.25, 82.83, 81.39, 82.64, 82.11, 82.73]


# -- ECG ---------------------------------------------------------------------------------------

LEARNERS = {
    "hypr": lambda net, chunk: hyprgen.HYPR(net, chunk=chunk, loss="ce"),
    "hypr_drop": lambda net, chunk: hyprgen.HYPR(net, chunk=chunk, loss="ce", drop_spike_paths=True),
    "bptt": lambda net, chunk: hyprgen.BPTT(net, loss="ce"),
    # diagnostic: BPTT without the paths through W_rec's input o^{t-1}
    "bptt_detach": lambda net, chunk: hyprgen.BPTT(net, loss="ce", detach_recurrent=True),
}


def make_learner(method: str, net, chunk: int):
    return LEARNERS[method](net, chunk)


@torch.no_grad()
def evaluate(net, batches, accuracy) -> tuple[float, float, float]:
    """(per-step accuracy over all labelled steps, mean CE per step, spike rate of layer 0)."""
    correct = total = 0.0
    loss_sum = 0.0
    spikes = steps = 0.0
    for x, y in batches:
        out, _, rec = net(x, record=True)
        labelled = y != -100
        n = labelled.sum().item()
        correct += accuracy(out, y) * n
        total += n
        loss_sum += torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1),
                                                      ignore_index=-100, reduction="sum").item()
        spikes += rec[0].sum().item()
        steps += rec[0].numel()
    return correct / total, loss_sum / total, spikes / steps


def run_name(a, method: str, seed: int) -> str:
    lam = f"_l{a.chunk}" if method.startswith("hypr") else ""
    readout = "" if a.readout == "li" else f"_{a.readout}"
    return f"ecg_{a.neuron}{readout}_{method}{lam}_lr{a.lr}_b{a.batch}_e{a.epochs}_s{seed}"


def run_ecg_one(a, method: str, seed: int) -> dict | None:
    OUT.mkdir(parents=True, exist_ok=True)
    name = run_name(a, method, seed)
    final, ckpt = OUT / f"{name}.json", OUT / f"{name}.ckpt.pt"
    if final.exists():
        print(f"[skip] {name}: finished ({final.name})", flush=True)
        return json.loads(final.read_text())
    task = make_task("ecg", directory=ECG_DIR, val_fraction=a.val_fraction, split_seed=0)
    net = hyprgen.RSNN(task.n_in, a.hidden, task.n_out, neuron=a.neuron, readout=a.readout, recurrent=True, seed=seed)
    learner = make_learner(method, net, a.chunk)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 - e / a.epochs)
    gen = torch.Generator().manual_seed(seed)
    history, start_epoch = [], 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        history, start_epoch = state["history"], state["epoch"]
        print(f"[resume] {name} from epoch {start_epoch}", flush=True)
    else:
        acc, loss, rate = evaluate(net, task.test_batches(a.eval_batch), task.accuracy)
        vacc, vloss, _ = evaluate(net, iter_split(task.val, a.eval_batch), task.accuracy) if task.val else (None, None, None)
        history.append({"epoch": 0, "test_acc": acc, "test_loss": loss, "val_acc": vacc, "val_loss": vloss,
                        "rate": rate, "train_loss": None, "train_acc": None, "train_s": 0.0, "lr": a.lr})
    print(f"[run] {name}: epoch {start_epoch}/{a.epochs}  test acc {history[-1]['test_acc']:.4f}", flush=True)
    for epoch in range(start_epoch, a.epochs):
        lr = opt.param_groups[0]["lr"]
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        tl = ta = tn = 0.0
        nan = False
        for x, y in task.train_batches(a.batch, gen):
            r = learner.step(x, y, opt)
            n = (y != -100).sum().item()
            if not math.isfinite(r.loss.item()):
                nan = True
            tl += r.loss.item() * n
            ta += task.accuracy(r.outputs, y) * n
            tn += n
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        sched.step()
        acc, loss, rate = evaluate(net, task.test_batches(a.eval_batch), task.accuracy)
        vacc, vloss, _ = evaluate(net, iter_split(task.val, a.eval_batch), task.accuracy) if task.val else (None, None, None)
        history.append({"epoch": epoch + 1, "test_acc": acc, "test_loss": loss, "val_acc": vacc, "val_loss": vloss,
                        "rate": rate, "train_loss": tl / tn, "train_acc": ta / tn, "train_s": train_s,
                        "train_cpu_s": train_cpu, "lr": lr, "nan": nan})
        print(f"[run] {name}: epoch {epoch + 1}/{a.epochs}  train loss {tl / tn:.4f} acc {ta / tn:.4f}  "
              f"val {vacc if vacc is None else round(vacc, 4)}  test {acc:.4f}  rate {rate:.3f}  "
              f"{train_s:.1f} s (cpu {train_cpu:.1f} s)", flush=True)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "history": history, "epoch": epoch + 1,
                    "meta": {"name": name, "method": method, "neuron": a.neuron, "seed": seed,
                             "epochs": a.epochs, "readout": a.readout}}, ckpt)
        if nan:
            print(f"[run] {name}: non-finite loss, stopping", flush=True)
            break
    result = {"name": name, "task": "ecg", "neuron": a.neuron, "readout": a.readout, "method": method, "seed": seed,
              "chunk": a.chunk if method.startswith("hypr") else None, "hidden": a.hidden, "lr": a.lr,
              "batch": a.batch, "epochs": a.epochs, "val_fraction": a.val_fraction,
              "n_train": len(task.train), "n_val": len(task.val) if task.val else 0, "n_test": len(task.test),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "history": history}
    final.write_text(json.dumps(result, indent=1))
    if ckpt.exists():                # keep the trained network (for `align`), under a name resume ignores
        ckpt.replace(OUT / f"{name}.final.pt")
    return result


def iter_split(split, batch):
    from hyprgen.data import iterate
    return iterate(split, batch, None, shuffle=False)


def cmd_ecg(a) -> int:
    a.lr = a.lr if a.lr is not None else DEFAULT_LR.get(a.neuron, 0.1)
    for seed in a.seeds:           # seed-major: a partial study still has matched pairs
        for method in a.methods:
            run_ecg_one(a, method, seed)
    return 0


def cmd_time(a) -> int:
    """Seconds per training batch (B=16, T=1300) of each configuration, median of a few batches."""
    task = make_task("ecg", directory=ECG_DIR, val_fraction=0.1, split_seed=0)
    x, y = next(task.train_batches(a.batch, torch.Generator().manual_seed(0)))
    rows = []
    for neuron, method, chunk in [("brf", "hypr", 64), ("brf", "hypr", 100), ("brf", "bptt", 0),
                                  ("alif", "hypr", 100), ("alif", "hypr_drop", 100), ("alif", "bptt", 0)]:
        net = hyprgen.RSNN(4, a.hidden, 6, neuron=neuron, readout="li", seed=0)
        learner = make_learner(method, net, chunk)
        opt = torch.optim.Adam(net.parameters(), lr=DEFAULT_LR[neuron])
        ts = []
        for _ in range(a.reps):
            t = time.perf_counter()
            learner.step(x, y, opt)
            ts.append(time.perf_counter() - t)
        t0 = time.perf_counter()
        evaluate(net, task.test_batches(a.eval_batch), task.accuracy)
        ev = time.perf_counter() - t0
        batches = math.ceil(len(task.train) / a.batch)
        med = sorted(ts)[len(ts) // 2]
        rows.append({"neuron": neuron, "method": method, "chunk": chunk or None, "s_per_batch": med,
                     "epoch_s": med * batches, "eval_test_s": ev})
        print(f"{neuron:5s} {method:10s} λ={chunk or '-':>4}  {med:.3f} s/batch  ≈{med * batches:.1f} s/epoch "
              f"(+ test eval {ev:.1f} s)", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "timing.json").write_text(json.dumps(rows, indent=1))
    return 0


def gradient_alignment(net, batches, chunk: int, methods, reference: str = "bptt") -> dict:
    """Each method's gradient at `net`, summed over `batches` (the same for every method), against the
    reference method's: per parameter tensor and over all of them, cosine and norm ratio ‖g‖/‖g_ref‖.
    Nothing is updated. Returns {method: {parameter: {"cos", "norm_ratio"}}}."""
    grads = {}
    for method in (reference, *methods):
        learner = make_learner(method, net, chunk)
        net.zero_grad(set_to_none=True)
        for x, y in batches:
            learner.step(x, y)           # no optimizer: accumulates into .grad
        grads[method] = grads_of(net)
    net.zero_grad(set_to_none=True)
    ref = grads[reference]
    out = {}
    for method in methods:
        g = grads[method]
        rows = {name: {"cos": c["cos"], "norm_ratio": None if not c["ref_norm"] else c["norm"] / c["ref_norm"]}
                for name, c in compare(g, ref).items()}
        names = [n for n in ref if ref[n] is not None and g.get(n) is not None]
        whole = compare({"all": torch.cat([g[n].flatten() for n in names])},
                        {"all": torch.cat([ref[n].flatten() for n in names])})["all"]
        rows["all parameters"] = {"cos": whole["cos"], "norm_ratio": whole["norm"] / whole["ref_norm"]}
        out[method] = rows
    return out


def cmd_align(a) -> int:
    """Gradient alignment on ECG at a trained network (an ECG run's checkpoint) or at initialisation."""
    task = make_task("ecg", directory=ECG_DIR, val_fraction=a.val_fraction, split_seed=0)
    if a.checkpoint:
        state = torch.load(a.checkpoint, weights_only=False)
        meta, weights = state["meta"], state["net"]
        hidden, epoch = weights["layers.0.W_rec"].shape[0], state["epoch"]
        label = f"{meta['name']}_at{epoch}"
    else:
        meta, weights, hidden, epoch = {"neuron": a.neuron, "readout": a.readout, "seed": a.seed}, None, a.hidden, 0
        label = f"ecg_{a.neuron}_{a.readout}_init_s{a.seed}"
    net = hyprgen.RSNN(task.n_in, hidden, task.n_out, neuron=meta["neuron"], readout=meta.get("readout", "li"),
                       recurrent=True, seed=meta["seed"])
    if weights is not None:
        net.load_state_dict(weights)
    batches = list(task.train_batches(a.batch, torch.Generator().manual_seed(a.batch_seed)))[:a.batches]
    result = {"label": label, "checkpoint": str(a.checkpoint) if a.checkpoint else None, "epoch": epoch,
              "neuron": meta["neuron"], "readout": meta.get("readout", "li"), "seed": meta["seed"], "chunk": a.chunk,
              "batches": len(batches), "batch": a.batch, "reference": a.reference,
              "methods": gradient_alignment(net, batches, a.chunk, a.methods, a.reference)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"align_{label}_b{len(batches)}_vs_{a.reference}.json").write_text(json.dumps(result, indent=1))
    print("\n".join(align_table(result)))
    return 0


def align_table(r) -> list[str]:
    methods = list(r["methods"])
    params = list(r["methods"][methods[0]])
    ref = r["reference"]
    out = [f"#### {r['label']}: {r['batches']} training batches of {r['batch']}, against {ref}'s gradient\n",
           "| parameter | " + " | ".join(f"{m}: cos | {m}: ‖g‖/‖g_{ref}‖" for m in methods) + " |",
           "|---|" + "---|---|" * len(methods)]
    for name in params:
        cells = []
        for m in methods:
            c = r["methods"][m][name]
            cells += ["–" if c["cos"] is None else f"{c['cos']:.3f}",
                      "–" if c["norm_ratio"] is None else f"{c['norm_ratio']:.3f}"]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out + [""]


# -- cue ---------------------------------------------------------------------------------------

def cue_task(delay: int, test_samples: int = 64):
    return make_task("cue", delay=delay, epoch_batches=1, test_samples=test_samples)


def cue_network(a, task, seed: int):
    """The cue RSNN: `a.weight_scale` scales the initial weights (BRF-exp needs ≈200 to spike on the cue,
    its δ = 0.01 makes one step of input move u by 0.01·I); every `a.param NAME LO HI` redraws that
    neuron parameter's raw value of the hidden layer from U[LO, HI] (e.g. b_offset = log b' for a
    damping slow enough to hold the cue over the delay), from a generator of its own (seed + 1).
    This is how the runs in docs/RESULTS.md were drawn; RSNN(param_init=...), which came later, draws
    from the network's generator instead, so it gives other (equally distributed) values."""
    net = hyprgen.RSNN(task.n_in, a.hidden, task.n_out, neuron=a.neuron, readout="li", seed=seed,
                       weight_scale=a.weight_scale)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, lo, hi in a.param or ():
            theta = net.layers[0].theta
            if name not in theta:
                raise SystemExit(f"--param {name}: neuron {a.neuron!r} has no parameter {name!r} "
                                 f"(it has {', '.join(theta)})")
            theta[name].uniform_(float(lo), float(hi), generator=gen)
    net.clamp_()
    return net


def cue_tag(a) -> str:
    """The network settings in a result name (empty for the defaults)."""
    tag = "" if a.weight_scale == 1.0 else f"_w{a.weight_scale:g}"
    return tag + "".join(f"_{n}{float(lo):g},{float(hi):g}" for n, lo, hi in a.param or ())


def cue_memory_child(a) -> dict:
    """One training step (gradient + Adam step) of one method at one delay, in this (fresh) process."""
    task = cue_task(a.delay)
    gen = torch.Generator().manual_seed(0)
    net = cue_network(a, task, seed=0)
    learner = make_learner(a.method, net, a.chunk)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
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

    import gc
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
    name = (f"cue_{a.neuron}{cue_tag(a)}_{method}{lam}_d{delay}_h{a.hidden}_b{a.batch}_lr{a.lr:g}{decay}"
            f"_n{a.steps[str(delay)]}_s{seed}")
    final = OUT / f"{name}.json"
    if final.exists():
        print(f"[skip] {name}", flush=True)
        return json.loads(final.read_text())
    task = cue_task(delay, a.test_samples)
    gen = torch.Generator().manual_seed(seed)
    net = cue_network(a, task, seed)
    learner = make_learner(method, net, a.chunk)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    n_steps = a.steps[str(delay)]
    # linear: lr·(1 − step/steps) after every step (the ECG runs' schedule, per step instead of per epoch)
    schedule = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=n_steps) if a.lr_schedule == "linear" else None
    curve = []
    t0 = time.perf_counter()
    deadline = t0 + a.max_seconds
    done = 0
    for i in range(n_steps):
        x, y = task.cue.batch(a.batch, gen)
        r = learner.step(x, y, opt)
        if schedule is not None:
            schedule.step()
        done = i + 1
        curve.append({"step": done, "loss": r.loss.item(), "train_acc": task.accuracy(r.outputs, y)})
        if done % 10 == 0:
            print(f"[cue] {name}: step {done}/{n_steps} loss {r.loss.item():.4f} "
                  f"acc(last 10) {sum(c['train_acc'] for c in curve[-10:]) / 10:.3f}", flush=True)
        if time.perf_counter() > deadline:
            print(f"[cue] {name}: time limit {a.max_seconds} s reached after {done} steps", flush=True)
            break
    train_s = time.perf_counter() - t0
    correct = n = 0
    with torch.no_grad():
        for x, y in task.test_batches(a.batch):
            out, _ = net(x)
            correct += task.accuracy(out, y) * x.shape[0]
            n += x.shape[0]
    result = {"name": name, "method": method, "delay": delay, "T": task.seq_len, "neuron": a.neuron,
              "weight_scale": a.weight_scale, "param_init": a.param or [], "seed": seed, "lr_schedule": a.lr_schedule,
              "hidden": a.hidden, "batch": a.batch, "lr": a.lr, "steps": done, "steps_planned": n_steps,
              "chunk": a.chunk if method.startswith("hypr") else None, "train_s": train_s,
              "test_acc": correct / n, "test_samples": n, "curve": curve}
    final.write_text(json.dumps(result, indent=1))
    print(f"[cue] {name}: test acc {correct / n:.3f} after {done} steps ({train_s:.0f} s)", flush=True)
    return result


def cmd_cue(a) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    a.steps = dict(zip(map(str, a.delays), a.train_steps))
    if not a.skip_memory:
        for delay in a.delays:
            for method in a.methods:
                path = OUT / f"cuemem_{a.neuron}{cue_tag(a)}_{method}_d{delay}_h{a.hidden}_b{a.batch}.json"
                if path.exists():
                    print(f"[skip] {path.name}", flush=True)
                    continue
                cmd = [sys.executable, "-m", "benchmarks.accuracy_study", "cue-child", "--method", method,
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


# -- report ------------------------------------------------------------------------------------

def mean_std(v):
    v = [x for x in v if x is not None]
    if not v:
        return float("nan"), float("nan")
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, s


def load_runs(prefix: str) -> list[dict]:
    runs = []
    for p in sorted(OUT.glob(f"{prefix}*.json")):
        runs.append(json.loads(p.read_text()))
    for p in sorted(OUT.glob(f"{prefix}*.ckpt.pt")):   # unfinished runs: shown, marked partial
        state = torch.load(p, weights_only=False)
        runs.append({**state["meta"], "partial": True, "history": state["history"]})
    return runs


def group(runs):
    out = {}
    for r in runs:
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
    colors = {"hypr": "tab:blue", "bptt": "tab:red", "hypr_drop": "tab:green", "bptt_detach": "tab:purple"}
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
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ecg_report(runs, neuron: str, epochs: int, png: str, readout: str = "li") -> list[str]:
    """Table, paired gaps, unfinished runs and plot of the ECG runs of one neuron, readout and budget."""
    table, stats = ecg_table(runs, f"{neuron.upper()} method")
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
    if all(r.get("partial") for r in runs):  # nothing finished yet: no plot for docs/
        return out
    plot_ecg(runs, DOCS / png, f"ECG-QTDB, {neuron.upper()} 36 hidden, {readout} readout, {epochs} epochs: HYPR vs "
             + ("BPTT" if neuron == "brf" else "HYPR without spike paths"))
    out.append(f"plot: docs/{png}\n")
    return out


def cmd_report(a) -> int:
    out = []
    for neuron, stem in (("brf", "results_ecg"), ("alif", "results_alif")):
        by_budget = {}
        for r in load_runs(f"ecg_{neuron}_"):
            by_budget.setdefault((r.get("readout", "li"), r["epochs"]), []).append(r)
        first = min(by_budget, default=None)
        for (readout, epochs), runs in sorted(by_budget.items()):
            # the first (li readout, smallest budget) keeps the plain name (the plots docs/RESULTS.md had first)
            suffix = ("" if readout == "li" else f"_{readout}") + ("" if epochs == first[1] else f"_e{epochs}")
            out += ecg_report(runs, neuron, epochs, f"{stem}{suffix}.png", readout)
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
        if learned:
            plot_cue(learned, DOCS / "results_cue.png")
            out.append("plot: docs/results_cue.png\n")
    align = [json.loads(p.read_text()) for p in sorted(OUT.glob("align_*.json"))]
    if align:
        out.append("### ECG: gradient alignment\n")
        for r in align:
            out += align_table(r)
    text = "\n".join(out)
    print(text)
    (OUT / "report.md").write_text(text)
    return 0


# -- CLI ---------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.accuracy_study", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("ecg")
    e.add_argument("--neuron", default="brf")
    e.add_argument("--methods", nargs="+", default=["hypr", "bptt"], choices=list(LEARNERS))
    e.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    e.add_argument("--epochs", type=int, default=25)
    e.add_argument("--chunk", type=int, default=100)
    e.add_argument("--hidden", type=int, default=36)
    e.add_argument("--readout", choices=("li", "linear"), default="li",
                   help="li: leaky integrator (BRF's); linear: non-leaky, no readout memory for HYPR to miss")
    e.add_argument("--batch", type=int, default=16)
    e.add_argument("--lr", type=float, default=None, help="default: 0.1 (brf), 0.05 (alif)")
    e.add_argument("--val-fraction", type=float, default=0.1)
    e.add_argument("--eval-batch", type=int, default=141)
    t = sub.add_parser("time")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--hidden", type=int, default=36)
    t.add_argument("--reps", type=int, default=5)
    t.add_argument("--eval-batch", type=int, default=141)
    c = sub.add_parser("cue")
    c.add_argument("--delays", nargs="+", type=int, default=[1000, 10000])
    c.add_argument("--train-steps", nargs="+", type=int, default=[150, 20],
                   help="training steps per delay (0: memory only)")
    c.add_argument("--max-seconds", type=float, default=300, help="per training run")
    c.add_argument("--methods", nargs="+", default=["hypr", "bptt"])
    c.add_argument("--neuron", default="brf")
    c.add_argument("--hidden", type=int, default=32)
    c.add_argument("--batch", type=int, default=16)
    c.add_argument("--chunk", type=int, default=100)
    c.add_argument("--lr", type=float, default=0.01)
    c.add_argument("--lr-schedule", choices=("constant", "linear"), default="constant")
    c.add_argument("--seeds", nargs="+", type=int, default=[0])
    c.add_argument("--test-samples", type=int, default=64)
    c.add_argument("--skip-memory", action="store_true")
    cc = sub.add_parser("cue-child")
    for name, typ in (("--method", str), ("--delay", int), ("--hidden", int), ("--batch", int), ("--chunk", int),
                      ("--neuron", str), ("--lr", float)):
        cc.add_argument(name, type=typ, required=True)
    for parser in (c, cc):
        parser.add_argument("--weight-scale", type=float, default=1.0, help="initial weight scale of the RSNN")
        parser.add_argument("--param", nargs=3, action="append", metavar=("NAME", "LO", "HI"),
                            help="draw the hidden neurons' raw parameter NAME from U[LO, HI] (repeatable)")
    al = sub.add_parser("align")
    al.add_argument("--checkpoint", type=Path, default=None, help="an ECG run's .ckpt.pt or .final.pt (default: the initial network)")
    al.add_argument("--neuron", default="brf", help="without --checkpoint")
    al.add_argument("--readout", choices=("li", "linear"), default="li", help="without --checkpoint")
    al.add_argument("--seed", type=int, default=0, help="without --checkpoint")
    al.add_argument("--hidden", type=int, default=36, help="without --checkpoint")
    al.add_argument("--chunk", type=int, default=100)
    al.add_argument("--methods", nargs="+", default=["hypr", "bptt_detach"], choices=list(LEARNERS))
    al.add_argument("--reference", default="bptt", choices=list(LEARNERS))
    al.add_argument("--batches", type=int, default=4)
    al.add_argument("--batch", type=int, default=16)
    al.add_argument("--batch-seed", type=int, default=12345, help="order of the training batches used")
    al.add_argument("--val-fraction", type=float, default=0.1)
    sub.add_parser("report")
    a = p.parse_args(argv)
    if a.cmd == "ecg":
        return cmd_ecg(a)
    if a.cmd == "time":
        return cmd_time(a)
    if a.cmd == "cue":
        return cmd_cue(a)
    if a.cmd == "align":
        return cmd_align(a)
    if a.cmd == "cue-child":
        print(json.dumps(cue_memory_child(a)))
        return 0
    return cmd_report(a)


if __name__ == "__main__":
    sys.exit(main())
