"""What a run writes besides its checkpoint: metrics.jsonl as strict JSON (a NaN loss read by a
parser that refuses NaN, then read back as NaN)."""
import argparse
import json
import math
import sys

import numpy as np
import pytest

from hyprgen.cli import main
from hyprgen.train.metrics import MetricsLog, decode, encode
from hyprgen.train.options import add_arguments
from hyprgen.train.trainer import prepare

TINY = ["--epochs", "2", "--epoch-batches", "3", "--delay", "10", "--hidden", "8", "--batch-size", "4",
        "--test-samples", "8", "--chunk", "7", "--quiet", "--no-plots"]

pytestmark = pytest.mark.usefixtures("one_thread")


def trainer(argv):
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return prepare(ap.parse_args([*TINY, *argv]))


def strict(line: str) -> dict:
    """json.loads that refuses NaN, Infinity and -Infinity, as JSON itself does (RFC 8259)."""
    def refuse(token):
        raise ValueError(f"bare {token} in {line!r}")
    return json.loads(line, parse_constant=refuse)


def same(a, b) -> bool:
    """Equal events, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_a_nan_loss_is_written_as_strict_json_and_read_back(tmp_path, monkeypatch):
    t = trainer(["--out", str(tmp_path), "--epochs", "1"])
    step = t.learner.step
    poison = {1: float("nan"), 2: float("inf"), 3: -float("inf")}             # the loss of steps 1, 2, 3

    def poisoned(x, y, optimizer):
        result = step(x, y, optimizer)
        return type(result)(result.loss * 0 + poison[t.progress.step + 1], result.outputs)

    monkeypatch.setattr(t.learner, "step", poisoned)
    assert t.run() == 0
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    events = [strict(line) for line in lines]
    assert [e["loss"] for e in events if e["event"] == "step"] == ["NaN", "Infinity", "-Infinity"]
    assert events[-1]["event"] == "epoch" and events[-1]["train_loss"] == "NaN"     # nan + inf - inf
    back = MetricsLog.read(tmp_path / "metrics.jsonl")
    assert len(back) == len(t.log.events) and all(same(a, b) for a, b in zip(back, t.log.events))
    assert math.isnan(back[0]["loss"]) and back[1]["loss"] == math.inf and back[2]["loss"] == -math.inf


def test_encode_and_decode_are_inverse_and_leave_finite_values_and_strings_alone():
    value = {"event": "step", "a": [1.5, float("nan"), {"b": -float("inf")}], "c": None, "d": 3, "e": "Inf"}
    text = json.dumps(encode(value), allow_nan=False)
    assert strict(text) == {"event": "step", "a": [1.5, "NaN", {"b": "-Infinity"}], "c": None, "d": 3, "e": "Inf"}
    assert same(decode(json.loads(text)), {**value, "a": [1.5, float("nan"), {"b": -float("inf")}]})
