"""Options of `hyprgen train` (kept free of torch so that the CLI starts quickly)."""
from __future__ import annotations

import argparse

METHODS = ("hypr", "bptt", "eprop")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--task", default="cue", choices=["cue"], help="built-in task (default: cue)")
    ap.add_argument("--neuron", default="brf", help="shipped neuron name or spec file (default: brf)")
    ap.add_argument("--method", default="hypr", choices=METHODS, help="learning rule (default: hypr)")
    ap.add_argument("--chunk", type=int, default=64, help="HYPR chunk length λ (default: 64)")
    ap.add_argument("--seq-len", type=int, default=120, help="sequence length T; cue task: delay = T − 20 (default: 120)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[32], help="hidden layer sizes (default: 32)")
    ap.add_argument("--epochs", type=int, default=8, help="epochs (default: 8)")
    ap.add_argument("--batches", type=int, default=40, help="batches per epoch (default: 40)")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    ap.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default: 0.01)")
    ap.add_argument("--weight-scale", type=float, default=10.0, help="initial weight scale (default: 10)")
    ap.add_argument("--test-size", type=int, default=256, help="test samples (default: 256)")
    ap.add_argument("--seed", type=int, default=0, help="seed of weights and data (default: 0)")
    ap.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ap.add_argument("--json", default=None, help="also write the final metrics to this JSON file")
