"""Gradient alignment on ECG (`align`): at a run's checkpoint (or at initialisation), each method's
gradient on the same training batches against a reference method's (BPTT by default): cosine and
norm ratio ‖g‖/‖g_ref‖ per parameter tensor and over all of them. Nothing is updated.

Writes OUT/align_<label>_b<batches>_vs_<reference>.json and prints the table.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from hyprgen.data import make_task
from hyprgen.train import assemble
from hyprgen.train.learners import make_learner, method_of

from . import runs
from .ecg import train_options
from .settings import ECG_DIR, OUT

# the network's parameter names as the tables show them (one hidden layer and a readout)
PRETTY = {"layers.0.W_in": "hidden.W_in", "layers.0.W_rec": "hidden.W_rec", "layers.0.bias": "hidden.bias",
          "layers.1.W_in": "readout.W_out", "layers.1.bias": "readout.b_out"}


def pretty(name: str) -> str:
    if name in PRETTY:
        return PRETTY[name]
    parts = name.split(".")
    if len(parts) == 4 and parts[2] == "theta":
        return ("hidden." if parts[1] == "0" else "readout.") + parts[3]
    return name


def grads_of(net) -> dict:
    """{parameter name: a copy of its .grad on the CPU, or None}."""
    return {name: (p.grad.detach().cpu().clone() if p.grad is not None else None)
            for name, p in net.named_parameters()}


def compare(g: dict, ref: dict) -> dict:
    """Per parameter (pretty names): cosine similarity, ‖g − ref‖/‖ref‖ and both norms, in float64
    (None where undefined: a missing gradient, or a zero one for the cosine)."""
    out = {}
    for name, r in ref.items():
        a = g.get(name)
        if a is None or r is None:
            out[pretty(name)] = {"cos": None, "rel_diff": None, "norm": None, "ref_norm": None}
            continue
        a, r = a.double().flatten(), r.double().flatten()
        na, nr = a.norm().item(), r.norm().item()
        cos = (a @ r).item() / (na * nr) if na > 0 and nr > 0 else None
        rel = (a - r).norm().item() / nr if nr > 0 else (0.0 if na == 0 else math.inf)
        out[pretty(name)] = {"cos": cos, "rel_diff": rel, "norm": na, "ref_norm": nr}
    return out


def gradient_alignment(net, batches, chunk: int, methods, reference: str = "bptt") -> dict:
    """Each method's gradient at `net`, summed over `batches` (the same for every method), against the
    reference method's: per parameter tensor and over all of them, cosine and norm ratio ‖g‖/‖g_ref‖.
    Nothing is updated. Returns {method: {parameter: {"cos", "norm_ratio"}}}."""
    grads = {}
    for method in (reference, *methods):
        learner = make_learner(method, net, loss="ce", **({"chunk": chunk} if method_of(method) == "hypr" else {}))
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


def trained_network(path: Path, task):
    """(network, label, epoch, config) of an ECG run: its directory, or the checkpoint.pt in it."""
    meta, saved = runs.saved_run(path if path.is_dir() else path.parent)
    net = assemble.build_network(saved["config"], task, torch.device("cpu"))
    net.load_state_dict(saved["model"])
    epoch = saved["progress"]["epoch"]
    return net, f"{meta['name']}_at{epoch}", epoch, saved["config"]


def cmd_align(a) -> int:
    """Gradient alignment on ECG at a trained network (an ECG run) or at initialisation."""
    task = make_task("ecg", directory=ECG_DIR, val_fraction=a.val_fraction, split_seed=0)
    if a.checkpoint:
        net, label, epoch, config = trained_network(a.checkpoint, task)
    else:
        config = runs.config_of(runs.argv(train_options(neuron=a.neuron, method="bptt", seed=a.seed, hidden=a.hidden,
                                                        chunk=None, readout=a.readout)))
        net, epoch = assemble.build_network(config, task, torch.device("cpu")), 0
        label = f"ecg_{a.neuron}_{a.readout}_init_s{a.seed}"
    batches = list(task.train_batches(a.batch, torch.Generator().manual_seed(a.batch_seed)))[:a.batches]
    result = {"label": label, "checkpoint": str(a.checkpoint) if a.checkpoint else None, "epoch": epoch,
              "neuron": config["neuron"], "readout": config["readout"], "seed": config["seed"], "chunk": a.chunk,
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
