"""The study's command line: one subcommand per part (__init__.py lists them)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hyprgen.errors import HyprgenError
from hyprgen.train.learners import NAMES

from .align import cmd_align
from .cue import cmd_cue, cue_memory_child
from .ecg import cmd_ecg, cmd_time
from .report import cmd_report


def parser() -> argparse.ArgumentParser:
    from . import __doc__ as doc

    p = argparse.ArgumentParser(prog="python -m benchmarks.studies.accuracy", description=doc.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("ecg")
    e.add_argument("--neuron", default="brf")
    e.add_argument("--methods", nargs="+", default=["hypr", "bptt"], choices=NAMES)
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
    c.add_argument("--methods", nargs="+", default=["hypr", "bptt"], choices=NAMES)
    c.add_argument("--neuron", default="brf")
    c.add_argument("--hidden", type=int, default=32)
    c.add_argument("--batch", type=int, default=16)
    c.add_argument("--chunk", type=int, default=100)
    c.add_argument("--lr", type=float, default=0.01)
    c.add_argument("--lr-schedule", choices=("constant", "linear"), default="constant",
                   help="linear: lr·(1 − step/steps) after every step")
    c.add_argument("--seeds", nargs="+", type=int, default=[0])
    c.add_argument("--test-samples", type=int, default=64)
    c.add_argument("--skip-memory", action="store_true")
    cc = sub.add_parser("cue-child")  # internal: one memory measurement (cue.py)
    for name, typ in (("--method", str), ("--delay", int), ("--hidden", int), ("--batch", int), ("--chunk", int),
                      ("--neuron", str), ("--lr", float)):
        cc.add_argument(name, type=typ, required=True)
    for part in (c, cc):
        part.add_argument("--weight-scale", type=float, default=1.0, help="initial weight scale of the RSNN")
        part.add_argument("--param", nargs=3, action="append", metavar=("NAME", "LO", "HI"),
                          help="draw the hidden neurons' raw parameter NAME from U[LO, HI] (repeatable)")
    al = sub.add_parser("align")
    al.add_argument("--checkpoint", type=Path, default=None,
                    help="an ECG run's directory OUT/NAME or its checkpoint.pt (default: the initial network)")
    al.add_argument("--neuron", default="brf", help="without --checkpoint")
    al.add_argument("--readout", choices=("li", "linear"), default="li", help="without --checkpoint")
    al.add_argument("--seed", type=int, default=0, help="without --checkpoint")
    al.add_argument("--hidden", type=int, default=36, help="without --checkpoint")
    al.add_argument("--chunk", type=int, default=100)
    al.add_argument("--methods", nargs="+", default=["hypr", "bptt_detach"], choices=NAMES)
    al.add_argument("--reference", default="bptt", choices=NAMES)
    al.add_argument("--batches", type=int, default=4)
    al.add_argument("--batch", type=int, default=16)
    al.add_argument("--batch-seed", type=int, default=12345, help="order of the training batches used")
    al.add_argument("--val-fraction", type=float, default=0.1)
    sub.add_parser("report")
    return p


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    if a.cmd == "cue-child":
        print(json.dumps(cue_memory_child(a)))
        return 0
    try:
        return {"ecg": cmd_ecg, "time": cmd_time, "cue": cmd_cue, "align": cmd_align, "report": cmd_report}[a.cmd](a)
    except HyprgenError as e:  # a damaged checkpoint (align --checkpoint), missing data, ...: one line, as hyprgen's
        print(f"accuracy study: error: {e}", file=sys.stderr)
        return 2
