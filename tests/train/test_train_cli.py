"""`hyprgen train`: every method end to end, option resolution (defaults < --config < command line),
the run directory's files, and the reported numbers against naive recomputations."""
import argparse
import json
from pathlib import Path

import pytest
import torch

from hyprgen.cli import main
from hyprgen.data import make_task
from hyprgen.runtime import RSNN
from hyprgen.train.options import OPTIONS, add_arguments, flag, resolve

TINY = ["--epochs", "1", "--epoch-batches", "2", "--delay", "10", "--hidden", "8", "--batch-size", "4",
        "--test-samples", "8", "--chunk", "7", "--quiet", "--no-plots"]


pytestmark = pytest.mark.usefixtures("one_thread")


def parse(argv):
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return ap.parse_args(argv)


@pytest.mark.parametrize("method", ["hypr", "bptt", "eprop"])
def test_train_command_runs_and_reports(method, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code = main(["train", "--method", method, "--epochs", "1", "--epoch-batches", "2", "--seq-len", "30",
                 "--hidden", "8", "--batch-size", "4", "--test-samples", "8", "--chunk", "7", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "epoch 1/1:" in text and "summary:" in text and "peak memory" in text
    metrics = json.loads(out.read_text())
    assert metrics["method"] == method and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["seq_len"] == 30 and metrics["steps"] == 2


def test_json_without_a_file_goes_to_stdout_and_the_report_to_stderr(capsys):
    assert main(["train", *TINY, "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["task"] == "cue" and summary["seq_len"] == 30
    assert "summary:" in captured.err


def test_train_rejects_a_too_short_sequence(capsys):
    assert main(["train", "--seq-len", "5"]) == 2
    err = capsys.readouterr().err
    assert "--seq-len 5 is too short" in err and "Traceback" not in err


def test_config_file_then_command_line_override_the_defaults(tmp_path):
    pytest.importorskip("tomllib")
    file = tmp_path / "run.toml"
    file.write_text('hidden = 16\nbatch-size = 4\nlr = 0.05\nlr_schedule = "linear"\ndelay = 12\nstream = true\n')
    config = resolve(parse(["--config", str(file), "--lr", "0.02", "--hidden", "8", "9", "--no-stream"]))
    defaults = resolve(parse([]))
    expected = dict(defaults, hidden=[8, 9], batch_size=4, lr=0.02, lr_schedule="linear", delay=12, stream=False)
    assert config == expected
    assert defaults["hidden"] == [32] and defaults["lr"] == 0.01 and defaults["delay"] == 100
    assert "data_dir" not in config and "seq_len" not in config  # other tasks' options; --seq-len became delay


def test_resolved_config_is_written_back_and_reused(tmp_path, capsys):
    tomllib = pytest.importorskip("tomllib")
    file = tmp_path / "run.toml"
    file.write_text("epochs = 1\nepoch_batches = 2\ndelay = 10\nhidden = [8]\nbatch_size = 4\ntest_samples = 8\n"
                    "lr = 0.05\n")
    run = tmp_path / "run"
    assert main(["train", "--config", str(file), "--lr", "0.02", "--out", str(run), "--quiet", "--no-plots"]) == 0
    written = tomllib.loads((run / "config.toml").read_text())
    resolved = resolve(parse(["--config", str(file), "--lr", "0.02"]))
    assert resolved["backend"] == "auto" and written["backend"] in ("cpu", "torch")   # the one auto picked
    assert written == resolved | {"backend": written["backend"]}
    assert written["lr"] == 0.02 and written["hidden"] == [8] and written["delay"] == 10
    # the written file reproduces the run: same options, same final parameters
    again = tmp_path / "again"
    assert main(["train", "--config", str(run / "config.toml"), "--out", str(again), "--quiet", "--no-plots"]) == 0
    first, second = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (run, again))
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("text, message", [
    ("lrr = 0.1\n", "unknown option 'lrr' (did you mean 'lr'?)"),
    ('hidden = "many"\n', "option 'hidden' must be an integer or a list of integers"),
    ("epochs = 1.5\n", "option 'epochs' must be an integer"),
    ('method = "sgd"\n', "option 'method' must be one of hypr, bptt, eprop"),
    ("lr = \n", "not valid TOML"),
])
def test_config_file_errors_name_the_file_and_the_option(tmp_path, capsys, text, message):
    pytest.importorskip("tomllib")
    file = tmp_path / "bad.toml"
    file.write_text(text)
    assert main(["train", "--config", str(file)]) == 2
    err = capsys.readouterr().err
    assert str(file) in err and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--task", "digits", "--delay", "5"], "--delay (given on the command line) applies to task cue, not digits"),
    (["--method", "bptt", "--stream"], "--stream true (given on the command line): needs --method hypr"),
    (["--chunk", "0"], "--chunk 0 (given on the command line): must be at least 1"),
    (["--resume"], "--resume needs --out DIR"),
])
def test_inconsistent_options_are_refused(argv, message, capsys):
    assert main(["train", *argv]) == 2
    assert message in capsys.readouterr().err


def test_run_directory_metrics_and_plots(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--epochs", "2", "--epoch-batches", "3", "--delay", "10", "--hidden", "8", "--batch-size", "4",
            "--test-samples", "8", "--chunk", "7", "--lr-schedule", "linear", "--out", str(run), "--quiet"]
    assert main(argv) == 0
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["step"] for e in steps] == list(range(1, 7)) and [e["epoch"] for e in epochs] == [1, 2]
    for e in steps:
        assert {"epoch", "batch", "loss", "accuracy", "lr", "elapsed", "peak_memory_mb", "rss_mb",
                "learner_bytes"} <= set(e)
    # naive recomputations: the epoch means of the step events, BRF's lr · (1 − epoch/epochs)
    for e in epochs:
        mine = [s for s in steps if s["epoch"] == e["epoch"]]
        assert e["train_loss"] == pytest.approx(sum(s["loss"] for s in mine) / len(mine), rel=1e-12)
        assert e["train_accuracy"] == pytest.approx(sum(s["accuracy"] for s in mine) / len(mine), rel=1e-12)
        assert all(s["lr"] == pytest.approx(0.01 * (1 - (e["epoch"] - 1) / 2)) for s in mine)
    # the final test accuracy against a fresh network with the saved parameters, per sequence by hand
    summary = json.loads((run / "summary.json").read_text())
    net = RSNN(12, [8], 2, neuron="brf", seed=0, weight_scale=10.0)
    net.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=True)["model"])
    correct = total = 0
    for x, y in make_task("cue", delay=10, test_samples=8).test_batches(4):
        out, _ = net(x)
        for b in range(len(y)):
            labelled = y[b] >= 0
            correct += int(out[b][labelled].sum(0).argmax() == y[b][labelled][0])
            total += 1
    assert summary["test_accuracy"] == correct / total == epochs[-1]["test_accuracy"]
    pytest.importorskip("matplotlib")
    for name in ("curves.png", "raster.png", "memory.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_streaming_mode_keeps_the_carried_memory_flat(tmp_path, capsys):
    run = tmp_path / "stream"
    argv = ["train", "--stream", "--epochs", "2", "--epoch-batches", "4", "--delay", "10", "--hidden", "8",
            "--batch-size", "4", "--test-samples", "8", "--chunk", "8", "--out", str(run), "--no-plots"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "steps streamed" in text and "online acc" in text
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    # the stream's tensors: per layer ε [B, n, d, m], ε_b [B, n, d], Θ [B, n, d, p], r d × [B, n], o [B, n];
    # the hidden layer's readout memory (the default): G, G_b, G_θ [R, B, n, m | 1 | p], R = 2 readout neurons
    B, R, layers = 4, 2, [(8, 3, 12 + 8, 2), (2, 1, 8, 1)]  # BRF: d = 3 (u, v, q), p = 2; LI readout: d = 1, p = 1
    expected = 4 * sum(B * n * d * m + B * n * d + B * n * d * p + d * B * n + B * n for n, d, m, p in layers)
    n, _, m, p = layers[0]
    expected += 4 * R * B * n * (m + 1 + p)
    assert [s["learner_bytes"] for s in steps] == [expected] * 8


def test_docs_describe_every_option():
    text = (Path(__file__).parents[2] / "docs" / "training.md").read_text()
    assert [flag(o.name) for o in OPTIONS if f"`{flag(o.name)}" not in text] == []


def test_without_matplotlib_the_run_says_so_and_writes_no_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("hyprgen.train.plots.available", lambda: False)
    run = tmp_path / "run"
    assert main(["train", *[a for a in TINY if a != "--no-plots"], "--out", str(run)]) == 0
    assert capsys.readouterr().out.count("matplotlib is not installed: no plots") == 1
    assert not list(run.glob("*.png")) and (run / "metrics.jsonl").exists()


# ----------------------------------------------------------------------------------------------
# Issue 17, item 10: --out that is a file, the epoch's memory line, counts of one


@pytest.mark.parametrize("below", [False, True])
def test_out_that_is_an_existing_file_is_one_line(tmp_path, capsys, below):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    out = blocker / "run" if below else blocker
    assert main(["train", *TINY, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"hyprgen: error: --out {out}") and captured.err.count("\n") == 1, captured.err
    assert "is a file" in captured.err and "Errno" not in captured.err and captured.out == ""


def test_epoch_memory_line_reports_a_full_batch(tmp_path, capsys):
    """digits: 1438 training images in batches of 1000, the last one 438. The epoch reports what HYPR
    carries for the full batch (the first step's figure), not for the partial one."""
    pytest.importorskip("sklearn")
    run = tmp_path / "run"
    assert main(["train", "--task", "digits", "--batch-size", "1000", "--epochs", "1", "--hidden", "4",
                 "--chunk", "4", "--out", str(run), "--no-plots"]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("epoch 1/1:"))
    events = [json.loads(t) for t in (run / "metrics.jsonl").read_text().splitlines()]
    steps, (epoch,) = [e for e in events if e["event"] == "step"], [e for e in events if e["event"] == "epoch"]
    assert len(steps) == 2 and steps[0]["learner_bytes"] > steps[1]["learner_bytes"]
    assert epoch["learner_bytes"] == steps[0]["learner_bytes"]
    assert f"HYPR carries {steps[0]['learner_bytes'] / 2**10:.1f} KiB" in line, line


def test_counts_of_one_are_singular(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    titles = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, path, **kw: titles.extend(ax.get_title() for ax in fig.axes))
    argv = [a if a != "2" else "1" for a in TINY if a not in ("--quiet", "--no-plots")]
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "1 epoch × 1 batch of 4" in text and "(1 epoch, 1 step)" in text, text
    assert "1 epochs" not in text and "1 batches" not in text and "1 steps" not in text

    from hyprgen.train import plots
    x, hidden = torch.zeros(5, 3), torch.zeros(5, 4)
    x[2, 1], hidden[[0, 3], [1, 2]] = 1, 1
    titles.clear()
    plots.raster(x, hidden, torch.zeros(5, 2), torch.full((5,), -100), tmp_path / "r.png")
    assert titles[:2] == ["input: 1 spike", "hidden layer 1: 2 spikes"], titles
