"""The accuracy study (benchmarks/studies/accuracy/), built on hyprgen.train: its cue runs' options,
result files and report; the ECG runs' history from the Trainer's metrics; gradient alignment."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_thread")


def cue_trainer(hidden, weight_scale, params, seed=0):
    """The Trainer of a cue run as the study configures it (not run)."""
    from benchmarks.studies.accuracy import cue, runs

    options = cue.train_options(neuron="brf_exp", hidden=hidden, weight_scale=weight_scale, params=params,
                                method="hypr", chunk=4, lr=0.01, lr_schedule="constant", batch=2, delay=5, steps=1,
                                test_samples=4, seed=seed)
    return runs.start(runs.argv(options))


def test_cue_network_redraws_the_named_parameter_and_refuses_unknown_ones(capsys):
    lo, hi = math.log(0.005), math.log(0.05)
    net = cue_trainer(300, 200.0, [["b_offset", str(lo), str(hi)]]).net
    b = net.layers[0].theta["b_offset"]
    assert lo <= b.min() and b.max() <= hi and b.max() - b.min() > 0.9 * (hi - lo)
    plain = cue_trainer(300, 1.0, None).net
    # weight_scale scales the initial weights: same draws, 200× the bound
    assert abs(net.layers[0].W_in.abs().max() / plain.layers[0].W_in.abs().max() - 200) < 1e-3
    with pytest.raises(SystemExit, match="neuron 'brf_exp' has no parameter 'tau_a'"):
        cue_trainer(4, 1.0, [["tau_a", "1", "2"]])


def test_cue_run_writes_its_result_and_the_report_plots_it(tmp_path):
    env = dict(os.environ, ACCURACY_STUDY_OUT=str(tmp_path / "out"), ACCURACY_STUDY_DOCS=str(tmp_path / "docs"))
    (tmp_path / "docs").mkdir()
    cmd = [sys.executable, "-m", "benchmarks.studies.accuracy", "cue", "--neuron", "brf_exp", "--weight-scale", "200",
           "--param", "b_offset", "-5.3", "-3.0", "--delays", "5", "--train-steps", "3", "--hidden", "4",
           "--batch", "2", "--chunk", "4", "--test-samples", "4", "--lr", "0.005", "--lr-schedule", "linear",
           "--seeds", "0", "1", "--methods", "hypr", "bptt", "--skip-memory"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("cue_*.json"))]
    assert sorted((r["method"], r["seed"]) for r in results) == [("bptt", 0), ("bptt", 1), ("hypr", 0), ("hypr", 1)]
    for r in results:
        assert r["steps"] == 3 and len(r["curve"]) == 3 and r["test_samples"] == 4 and r["T"] == 25
        assert r["param_init"] == [["b_offset", "-5.3", "-3.0"]] and r["lr_schedule"] == "linear"
        assert "_w200_b_offset-5.3,-3_" in r["name"]
    # same seed ⇒ same network and batches: both methods start from the same loss
    first = {(r["method"], r["seed"]): r["curve"][0]["loss"] for r in results}
    assert first["hypr", 0] == pytest.approx(first["bptt", 0], rel=1e-5)
    assert first["hypr", 0] != pytest.approx(first["hypr", 1], rel=1e-5)
    report = subprocess.run([sys.executable, "-m", "benchmarks.studies.accuracy", "report"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "### Cue: training runs" in report.stdout
    assert (tmp_path / "docs" / "img" / "results_cue.png").stat().st_size > 0
    figures = json.loads((tmp_path / "docs" / "results" / "accuracy.json").read_text())
    for r in results:   # the cue figures are the result files' test accuracies, per seed in seed order
        f = figures["cue_brf_exp_d5"][r["method"]]
        assert f["per_seed"][f["seeds"].index(r["seed"])] == r["test_acc"] and f["seeds"] == [0, 1]
        assert f["mean"] == pytest.approx(sum(f["per_seed"]) / 2)
    archived = figures["ecg_brf_li_e60"]["bptt"]   # earlier runs, from the committed archive, marked as such
    assert archived["source"].startswith("docs/results/accuracy.md") and len(archived["per_seed"]) == 3


def test_history_reads_the_trainers_metrics_as_the_studys_epochs():
    from benchmarks.studies.accuracy.runs import history

    step = lambda loss, elapsed, cpu: {"event": "step", "loss": loss, "elapsed": elapsed, "cpu_s": cpu}  # noqa: E731
    evaluated = {"test_accuracy": 0.5, "test_loss": 1.5, "test_spike_rate": 0.1, "val_accuracy": 0.4, "val_loss": 1.6}
    events = [{"event": "initial", "epoch": 0, "lr": 0.1, **evaluated, "elapsed": 0.0, "cpu_s": 0.0},
              step(1.0, 2.0, 1.5), step(0.5, 4.0, 3.0),
              {"event": "epoch", "epoch": 1, "lr": 0.1, "train_loss": 0.75, "train_accuracy": 0.6, **evaluated,
               "elapsed": 5.0, "cpu_s": 3.5},
              step(float("nan"), 7.0, 5.0),
              {"event": "epoch", "epoch": 2, "lr": 0.05, "train_loss": float("nan"), "train_accuracy": 0.6,
               **evaluated, "elapsed": 8.0, "cpu_s": 6.0}]
    h = history(events)
    assert [e["epoch"] for e in h] == [0, 1, 2]
    assert h[0] == {"epoch": 0, "test_acc": 0.5, "test_loss": 1.5, "val_acc": 0.4, "val_loss": 1.6, "rate": 0.1,
                    "train_loss": None, "train_acc": None, "train_s": 0.0, "lr": 0.1}
    assert (h[1]["train_s"], h[1]["train_cpu_s"], h[1]["nan"]) == (4.0, 3.0, False)
    assert (h[2]["train_s"], h[2]["train_cpu_s"], h[2]["nan"], h[2]["lr"]) == (2.0, 1.5, True, 0.05)


def test_gradient_alignment_is_exact_where_hypr_equals_bptt_and_leaves_the_network_unchanged():
    import torch
    import hyprgen
    from benchmarks.studies.accuracy.align import gradient_alignment

    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(3, 12, 4, generator=gen), torch.randint(0, 3, (3, 12), generator=gen)) for _ in range(2)]
    # linear readout, recurrent paths detached: HYPR computes BPTT's gradient exactly (docs/hypr.md §8)
    net = hyprgen.RSNN(4, 5, 3, neuron="alif", readout="linear", seed=0, weight_scale=3.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = gradient_alignment(net, batches, chunk=5, methods=["hypr", "bptt"], reference="bptt_detach")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    for name, c in r["hypr"].items():
        assert c["cos"] == pytest.approx(1.0, abs=1e-5) and c["norm_ratio"] == pytest.approx(1.0, rel=1e-4), name
    # the recurrent paths are a real difference: BPTT's hidden-layer gradient is not the detached one
    assert r["bptt"]["hidden.W_rec"]["cos"] < 0.999
    assert r["bptt"]["readout.W_out"]["cos"] == pytest.approx(1.0, abs=1e-6)


def write_fake_ecg(directory: Path, seed: int) -> None:
    """QTDB_train.mat (10 sequences) and QTDB_test.mat (3) in the layout of hyprgen.data.ecg: random
    spikes and segment classes; the real files' shapes, so that a study run takes seconds."""
    import numpy as np
    import scipy.io

    rng = np.random.default_rng(seed)
    directory.mkdir()
    for name, n in (("QTDB_train.mat", 10), ("QTDB_test.mat", 3)):
        x = (rng.random((n, 1301, 4)) < 0.1).astype(np.int16)
        y = np.eye(6, dtype=np.uint8)[rng.integers(0, 6, (n, 1301))]
        scipy.io.savemat(directory / name, {"x": x, "y": y})


def test_ecg_runs_resume_skip_and_feed_align_and_the_report(tmp_path, monkeypatch):
    """Two methods on a tiny ECG stand-in: result files with the history of every epoch (epoch 0 the
    initial network), run directories whose checkpoints load with weights_only; a run stopped
    mid-epoch resumes to the same result; align at a run; the report."""
    import torch

    from benchmarks.studies.accuracy import ecg as study_ecg, runs

    write_fake_ecg(tmp_path / "ecg", seed=0)
    env = dict(os.environ, ACCURACY_STUDY_OUT=str(tmp_path / "out"), ACCURACY_STUDY_DOCS=str(tmp_path / "docs"),
               HYPRGEN_ECG_DIR=str(tmp_path / "ecg"))

    def study(*args):
        return subprocess.run([sys.executable, "-m", "benchmarks.studies.accuracy", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    ecg = ["ecg", "--methods", "hypr", "bptt_detach", "--seeds", "0", "--epochs", "2", "--hidden", "3", "--batch", "4",
           "--chunk", "300"]
    proc = study(*ecg)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "out"
    results = {r["method"]: r for r in (json.loads(p.read_text()) for p in out.glob("ecg_*.json"))}
    assert set(results) == {"hypr", "bptt_detach"}
    for method, r in results.items():
        assert (r["n_train"], r["n_val"], r["n_test"]) == (9, 1, 3) and r["hidden"] == 3 and r["lr"] == 0.1
        assert [e["epoch"] for e in r["history"]] == [0, 1, 2] and r["history"][0]["train_loss"] is None
        assert r["history"][1]["lr"] == 0.1 and r["history"][2]["lr"] == pytest.approx(0.05)
        assert all(0 <= e["rate"] <= 1 and not e.get("nan") for e in r["history"])
        saved = torch.load(out / r["name"] / "checkpoint.pt", weights_only=True)
        assert saved["progress"]["epoch"] == 2 and saved["config"]["detach_recurrent"] == (method == "bptt_detach")
    # same seed: the same initial network for both methods
    assert results["hypr"]["history"][0] == results["bptt_detach"]["history"][0]
    again = study(*ecg)
    assert again.returncode == 0 and again.stdout.count("[skip]") == 2
    run = out / results["hypr"]["name"]
    aligned = study("align", "--checkpoint", str(run), "--batches", "1", "--batch", "4", "--chunk", "300")
    assert aligned.returncode == 0, aligned.stderr[-2000:]
    r = json.loads((out / f"align_{run.name}_at2_b1_vs_bptt.json").read_text())
    assert r["epoch"] == 2 and r["neuron"] == "brf" and set(r["methods"]) == {"hypr", "bptt_detach"}
    # a run stopped after 4 of its 6 steps (as by a kill) resumes when the study starts again
    stopped = tmp_path / "stopped"
    monkeypatch.setattr(study_ecg, "ECG_DIR", str(tmp_path / "ecg"))
    options = study_ecg.train_options(neuron="brf", method="hypr", seed=0, hidden=3, chunk=300, batch=4, epochs=2)
    name = results["hypr"]["name"]
    first = runs.start([*runs.argv(options), "--stop-after", "4"], stopped / name, {"name": name, "method": "hypr"})
    assert first.run() == 0 and first.progress.step == 4
    env["ACCURACY_STUDY_OUT"] = str(stopped)
    resumed = study(*ecg[:3], *ecg[4:])  # hypr only
    assert resumed.returncode == 0 and f"[resume] {name}: epoch 1/2" in resumed.stdout, resumed.stderr[-2000:]
    env["ACCURACY_STUDY_OUT"] = str(out)

    def untimed(result):
        return [{k: v for k, v in e.items() if k not in ("train_s", "train_cpu_s")} for e in result["history"]]

    assert untimed(json.loads((stopped / f"{name}.json").read_text())) == untimed(results["hypr"])
    report = study("report")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "### ECG, BRF, li readout, 2 epochs" in report.stdout and "#### " + run.name in report.stdout
    assert (tmp_path / "docs" / "img" / "results_ecg.png").stat().st_size > 0
    figures = json.loads((tmp_path / "docs" / "results" / "accuracy.json").read_text())["ecg_brf_li_e2"]
    for method, r in results.items():   # the figures a script reads are the result files' final accuracies
        assert figures[method]["per_seed"] == [r["history"][-1]["test_acc"] * 100] and figures[method]["seeds"] == [0]
        assert figures[method]["mean"] == figures[method]["per_seed"][0] and figures[method]["epochs"] == 2


def test_the_study_reads_checkpoints_only_through_the_training_loader(tmp_path, capsys, monkeypatch):
    """Run directories (the report's, `align --checkpoint`'s user-given path) are read by
    hyprgen.train.checkpoint.load: weights_only, the archive's CRCs and the payload digest checked, so a
    damaged checkpoint is refused with the file named, in one line; no other torch.load in benchmarks/."""
    import ast

    from benchmarks.studies.accuracy import align, cli as study_cli, runs
    from hyprgen.cli import main
    from hyprgen.train import checkpoint

    from ..helpers import flip_bytes_in_the_middle

    run = tmp_path / "run"
    assert main(["train", "--delay", "10", "--hidden", "8", "--batch-size", "4", "--chunk", "8", "--epochs", "1",
                 "--epoch-batches", "4", "--test-samples", "8", "--quiet", "--no-plots", "--out", str(run),
                 "--stop-after", "2"]) == 0
    meta, saved = runs.saved_run(run)
    assert meta == {"name": "run"} and saved["progress"]["step"] == 2
    path = run / checkpoint.FILENAME
    entry = flip_bytes_in_the_middle(path)
    for read in (lambda: runs.saved_run(run), lambda: align.trained_network(path, task=None)):
        with pytest.raises(checkpoint.CheckpointError, match=f"{path}: corrupted checkpoint: entry {entry} "):
            read()
    monkeypatch.setattr(align, "make_task", lambda *a, **k: None)   # no ECG data here; refused before it is used
    capsys.readouterr()
    assert study_cli.main(["align", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"accuracy study: error: {path}: corrupted checkpoint: entry {entry} ") and err.count("\n") == 1
    loads = []
    for file in sorted((ROOT / "benchmarks").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "load" and getattr(node.value, "id", None) == "torch":
                loads.append(f"{file.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "torch" and any(a.name == "load" for a in node.names):
                loads.append(f"{file.relative_to(ROOT)}:{node.lineno}")
    assert loads == [], f"read checkpoints with hyprgen.train.checkpoint.load, not torch.load: {loads}"
