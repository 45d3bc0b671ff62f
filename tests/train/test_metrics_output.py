"""What a run writes besides its checkpoint: metrics.jsonl as strict JSON (a NaN loss read by a
parser that refuses NaN, then read back as NaN), and --tensorboard's event files read back by
TensorBoard's own reader against the metrics.jsonl of the same run, fresh and resumed."""
import json
import math
import sys

import numpy as np
import pytest

from hyprgen.cli import main
from hyprgen.train.metrics import TENSORBOARD_MISSING, MetricsLog, decode, encode

from ..helpers import prepared_trainer, tiny_run_argv

TINY = tiny_run_argv(epochs=2, batches=3)

pytestmark = pytest.mark.usefixtures("one_thread")


def trainer(argv):
    return prepared_trainer([*TINY, *argv])


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
    summary = strict((tmp_path / "summary.json").read_text())   # summary.json is strict JSON too
    assert summary["train_loss"] == "NaN"


def test_encode_and_decode_are_inverse_and_leave_finite_values_and_strings_alone():
    value = {"event": "step", "a": [1.5, float("nan"), {"b": -float("inf")}], "c": None, "d": 3, "e": "Inf"}
    text = json.dumps(encode(value), allow_nan=False)
    assert strict(text) == {"event": "step", "a": [1.5, "NaN", {"b": "-Infinity"}], "c": None, "d": 3, "e": "Inf"}
    assert same(decode(json.loads(text)), {**value, "a": [1.5, float("nan"), {"b": -float("inf")}]})


# ---------------------------------------------------------------- TensorBoard

def board(run_dir) -> dict:
    """{tag: [(step, value)]} as TensorBoard's EventAccumulator reads the run directory."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                      reason="tensorboard is not installed (pip install tensorboard)")
    acc = accumulator.EventAccumulator(str(run_dir), size_guidance={accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected(events) -> dict:
    """The scalars --tensorboard promises, from metrics.jsonl: every number but the counters (not the
    per-layer lists such as test_spike_rates), float32, as event files hold them."""
    out = {}
    for e in events:
        kind = "epoch" if e["event"] == "initial" else e["event"]
        for name, value in e.items():
            if name not in ("event", "epoch", "batch", "step") and isinstance(value, (int, float)):
                out.setdefault(f"{kind}/{name}", []).append((e["step"], float(np.float32(value))))
    return out


def test_tensorboard_holds_the_metrics_of_the_run(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    run = tmp_path / "run"
    assert main(["train", *TINY, "--initial-eval", "--out", str(run), "--tensorboard"]) == 0
    events = MetricsLog.read(run / "metrics.jsonl")
    scalars = board(run)
    assert scalars == expected(events)
    assert [s for s, _ in scalars["step/loss"]] == [1, 2, 3, 4, 5, 6]
    assert [s for s, _ in scalars["epoch/test_accuracy"]] == [0, 3, 6]          # initial, epoch 1, epoch 2
    assert {"step/lr", "step/accuracy", "step/peak_memory_mb", "step/learner_bytes"} <= set(scalars)


def test_tensorboard_after_a_resume_holds_each_step_once(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run), "--tensorboard", "--stop-after", "4"]) == 0
    assert main(["train", "--out", str(run), "--resume", "--tensorboard", "--quiet", "--no-plots"]) == 0
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    scalars = board(run)
    assert scalars == expected(MetricsLog.read(run / "metrics.jsonl"))
    assert [s for s, _ in scalars["step/loss"]] == [1, 2, 3, 4, 5, 6]


def test_tensorboard_is_off_without_the_flag_needs_out_and_says_how_to_install(tmp_path, capsys, monkeypatch):
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    assert not list((tmp_path / "a").glob("events.out.tfevents.*"))
    assert main(["train", *TINY, "--tensorboard"]) == 2
    assert "--tensorboard needs --out DIR" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)            # as if not installed
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "b"), "--tensorboard"]) == 0
    assert capsys.readouterr().out.count(TENSORBOARD_MISSING) == 1
    assert not list((tmp_path / "b").glob("events.out.tfevents.*")) and (tmp_path / "b" / "metrics.jsonl").exists()
