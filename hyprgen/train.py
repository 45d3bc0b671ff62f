"""`hyprgen train`: train an RSNN on a built-in task with HYPR, BPTT or per-step e-prop.

Default: a BRF network trained with HYPR (λ = 64) on the delayed cue task (delay 100 steps); about a
minute on a laptop CPU. Prints a progress bar, loss and accuracy per epoch, the final test accuracy
and the peak memory.
"""
from __future__ import annotations

import json
import resource
import sys
import time

import torch
from tqdm import tqdm

from .data import CueTask
from .errors import HyprgenError
from .runtime import BPTT, HYPR, RSNN, EProp

def make_task(args) -> CueTask:
    task = CueTask()
    delay = args.seq_len - task.cue - task.recall
    if delay < 1:
        raise HyprgenError(f"--seq-len {args.seq_len} is too short: the cue task needs more than "
                           f"{task.cue + task.recall} steps (cue {task.cue} + recall {task.recall})")
    return CueTask(delay=delay)


def make_learner(method: str, net: RSNN, chunk: int):
    if method == "hypr":
        return HYPR(net, chunk=chunk)
    return BPTT(net) if method == "bptt" else EProp(net)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def evaluate(net: RSNN, task: CueTask, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        out, _ = net(x)
    return task.accuracy(out, y)


def main(args) -> int:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    task = make_task(args)
    net = RSNN(task.n_in, args.hidden, task.n_classes, neuron=args.neuron, seed=args.seed,
               weight_scale=args.weight_scale).to(device)
    learner = make_learner(args.method, net, args.chunk)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    data_gen = torch.Generator().manual_seed(args.seed + 1)
    x_test, y_test = (t.to(device) for t in task.batch(args.test_size, torch.Generator().manual_seed(args.seed + 2)))
    print(f"task: delayed cue, {task.n_classes} classes, T = {task.seq_len} (delay {task.delay}); "
          f"network: {task.n_in} → {args.hidden} {args.neuron} → {task.n_classes} (li readout); "
          f"method: {args.method}" + (f", λ = {args.chunk}" if args.method == "hypr" else ""))
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        losses, accs = [], []
        bar = tqdm(range(args.batches), desc=f"epoch {epoch}/{args.epochs}", leave=False, file=sys.stdout,
                   disable=None)
        for _ in bar:
            x, y = (t.to(device) for t in task.batch(args.batch_size, data_gen))
            result = learner.step(x, y, optimizer)
            losses.append(result.loss.item())
            accs.append(task.accuracy(result.outputs, y))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        test_acc = evaluate(net, task, x_test, y_test)
        print(f"epoch {epoch}: loss {sum(losses) / len(losses):.4f}  train acc {sum(accs) / len(accs):.3f}  "
              f"test acc {test_acc:.3f}")
    elapsed = time.perf_counter() - start
    metrics = {"test_accuracy": evaluate(net, task, x_test, y_test), "seconds": elapsed,
               "peak_memory_mb": peak_memory_mb(device), "method": args.method, "neuron": args.neuron,
               "chunk": args.chunk, "seq_len": task.seq_len}
    mem_kind = "GPU allocated" if device.type == "cuda" else "process RSS"
    print(f"final test accuracy: {metrics['test_accuracy']:.3f}  ({elapsed:.1f} s, peak memory "
          f"{metrics['peak_memory_mb']:.0f} MB {mem_kind})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=1)
    return 0
