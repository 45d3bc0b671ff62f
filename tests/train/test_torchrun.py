"""`hyprgen train` under torchrun (train/distributed.py): 2 gloo processes, each on half of every batch,
train the network one process trains on the whole batches (float32: equal up to the rounding of
summing two halves), rank 0 alone writes the run directory, and a stopped run resumes to the same end
as an uninterrupted torchrun run, bit for bit, in sequence and in streaming mode."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hyprgen.train import checkpoint

ROOT = Path(__file__).resolve().parents[2]
RUN = ["train", "--task", "cue", "--delay", "10", "--hidden", "8", "--batch-size", "4", "--chunk", "8",
       "--epochs", "2", "--epoch-batches", "3", "--test-samples", "8", "--quiet", "--no-plots"]


def launch(argv, nproc: int) -> subprocess.CompletedProcess:
    """`python -m hyprgen ARGV`, alone (nproc 1) or under torchrun with nproc gloo processes."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    runner = [sys.executable, "-m"] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                        f"--nproc_per_node={nproc}", "-m"]
    proc = subprocess.run([*runner, "hyprgen", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def model(run: Path) -> dict:
    return checkpoint.load(run / checkpoint.FILENAME)["model"]


def steps_logged(run: Path) -> list[dict]:
    return [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["event"] == "step"]


@pytest.mark.parametrize("mode", [[], ["--stream"]], ids=["sequence", "stream"])
def test_two_ranks_train_as_one_process_and_resume_bit_identical(tmp_path, mode):
    alone, ranks, stopped = tmp_path / "alone", tmp_path / "ranks", tmp_path / "stopped"
    launch([*RUN, *mode, "--out", str(alone)], 1)
    out = launch([*RUN, *mode, "--out", str(ranks)], 2)
    assert out.stdout.count("summary:") == 1          # rank 0 alone reports
    one, two = model(alone), model(ranks)
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-6, msg=k)
    for a, b in zip(steps_logged(alone), steps_logged(ranks)):   # the whole batch's loss and accuracy
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4) and b["accuracy"] == pytest.approx(a["accuracy"])
    # stopped after 4 of 6 steps and resumed under torchrun: the uninterrupted torchrun run, bit for bit
    launch([*RUN, *mode, "--out", str(stopped), "--stop-after", "4"], 2)
    assert checkpoint.load(stopped / checkpoint.FILENAME)["progress"]["step"] == 4
    launch(["train", "--out", str(stopped), "--resume", "--quiet", "--no-plots"], 2)
    resumed = model(stopped)
    assert all(torch.equal(two[k], resumed[k]) for k in two)
