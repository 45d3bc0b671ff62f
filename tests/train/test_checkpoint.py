"""Checkpoints of `hyprgen train`: a run killed (SIGINT, SIGTERM; real subprocesses) or stopped
mid-epoch and resumed ends bit-identical to an uninterrupted run of the same config (parameters
by torch.equal, every metrics.jsonl event but its timings); damaged, foreign or mismatching
checkpoints are refused with an error that names the file."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hyprgen.train import checkpoint
from hyprgen.cli import main
from hyprgen.train.metrics import TIMING

from ..helpers import flip_bytes_in_the_middle

ROOT = Path(__file__).parents[2]
# 2 epochs × 15 batches, a linear LR decay across them: a resumed run crosses an epoch boundary
KILLED = ["train", "--task", "cue", "--delay", "20", "--hidden", "8", "--batch-size", "4", "--chunk", "8",
          "--epochs", "2", "--epoch-batches", "15", "--test-samples", "8", "--lr-schedule", "linear", "--quiet",
          "--no-plots"]
# 3 epochs × 4 batches; stopped after step 7 (epoch 2): the LR schedule's state decides epoch 3's lr
SMALL = ["train", "--delay", "10", "--hidden", "8", "--batch-size", "4", "--chunk", "8", "--epochs", "3",
         "--epoch-batches", "4", "--test-samples", "8", "--lr-schedule", "linear", "--quiet", "--no-plots"]


pytestmark = pytest.mark.usefixtures("one_thread")


def cli(argv, background=False) -> subprocess.CompletedProcess | subprocess.Popen:
    """`python -m hyprgen.cli ARGV` in a subprocess, with one thread (the same arithmetic as the
    in-process runs); finished, or running in the background."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "hyprgen.cli", *argv]
    if background:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def final_state(run: Path) -> tuple[dict, list[dict]]:
    """(model parameters, metrics events without their timing fields) of a run directory."""
    model = checkpoint.load(run / checkpoint.FILENAME)["model"]
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return model, [{k: v for k, v in e.items() if k not in TIMING} for e in events]


def assert_identical(run: Path, reference: Path) -> None:
    (model, events), (ref_model, ref_events) = final_state(run), final_state(reference)
    assert model.keys() == ref_model.keys()
    assert all(torch.equal(model[k], ref_model[k]) for k in model)
    assert events == ref_events


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """reference(argv): the directory of an uninterrupted in-process run of `hyprgen train ARGV`
    (cached; in-process with one thread computes exactly what a subprocess with one thread does)."""
    runs = {}

    def run(*argv) -> Path:
        if argv not in runs:
            runs[argv] = tmp_path_factory.mktemp("reference") / "run"
            assert main([*argv, "--out", str(runs[argv])]) == 0
        return runs[argv]
    return run


def kill_when(proc: subprocess.Popen, path: Path, step: int, sig: signal.Signals) -> int:
    """Send sig once the checkpoint at path has reached `step`; the step the run stopped at."""
    deadline = time.monotonic() + 60
    while not (path.exists() and checkpoint.load(path)["progress"]["step"] >= step):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err  # 130 for SIGINT, 143 for SIGTERM
    assert f"stopped by {sig.name}" in err and f"train --out {path.parent} --resume" in err
    return checkpoint.load(path)["progress"]["step"]


def test_killed_run_resumes_bit_identical(reference, tmp_path, capsys):
    """SIGINT a real training process mid-epoch, resume it, SIGTERM the resumed process, resume
    again to the end: the same parameters and metrics as the run that was never interrupted."""
    run = tmp_path / "run"
    path, resume = run / checkpoint.FILENAME, ["train", "--out", str(run), "--resume", "--quiet", "--no-plots"]
    first = kill_when(cli([*KILLED, "--out", str(run), "--checkpoint-every", "1"], background=True), path, 3,
                      signal.SIGINT)
    second = kill_when(cli([*resume, "--checkpoint-every", "1"], background=True), path, first + 3, signal.SIGTERM)
    assert 3 <= first < second < 30  # both before the end: the rest of the run comes from checkpoints
    resumed = cli(resume)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {path} after {second} steps" in resumed.stdout
    assert_identical(run, reference(*KILLED))


def test_sigkilled_stream_with_readout_memory_resumes_bit_identical(reference, tmp_path):
    """kill -9 a streaming run (readout memory: its traces G carried with ε) between two periodic
    checkpoints; the resumed run ends where the uninterrupted one does, to the bit."""
    argv = [*KILLED, "--stream", "--readout-memory"]
    run = tmp_path / "run"
    path = run / checkpoint.FILENAME
    proc = cli([*argv, "--out", str(run), "--checkpoint-every", "1"], background=True)
    deadline = time.monotonic() + 60
    while not (path.exists() and checkpoint.load(path)["progress"]["step"] >= 4):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.kill()                                          # SIGKILL: no handler runs, nothing is saved
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    stopped = checkpoint.load(path)["progress"]["step"]
    assert 4 <= stopped < 30
    assert checkpoint.load(path)["stream"]["memory"][0] is not None   # G was checkpointed with ε
    resumed = cli(["train", "--out", str(run), "--resume", "--quiet", "--no-plots"])
    assert resumed.returncode == 0, resumed.stderr
    assert_identical(run, reference(*argv))


@pytest.mark.parametrize("extra", [(), ("--stream",), ("--method", "bptt")])
def test_stopped_mid_epoch_resumes_bit_identical(extra, reference, tmp_path, capsys):
    """In-process, stopped at a fixed step (--stop-after): mid-epoch 2 after an LR decay step."""
    run = tmp_path / "run"
    assert main([*SMALL, *extra, "--out", str(run), "--stop-after", "7"]) == 0
    saved = checkpoint.load(run / checkpoint.FILENAME)
    assert (saved["progress"]["epoch"], saved["progress"]["batch"], saved["progress"]["step"]) == (1, 3, 7)
    if "--stream" in extra:  # the carried stream after 7 pieces: the hidden layer's traces ε, ε_b, Θ are live
        assert all(t.abs().sum() > 0 for t in saved["stream"]["traces"][0])
    assert main(["train", "--out", str(run), "--resume", "--quiet", "--no-plots"]) == 0
    assert_identical(run, reference(*SMALL, *extra))


def test_resuming_a_stream_without_its_state_would_differ(reference, tmp_path, capsys):
    """The check above is sensitive: the same resume with the stream's carried state dropped ends
    elsewhere (so the state and traces in the checkpoint are what makes it exact)."""
    run = tmp_path / "run"
    assert main([*SMALL, "--stream", "--out", str(run), "--stop-after", "7"]) == 0
    path = run / checkpoint.FILENAME
    saved = checkpoint.load(path)
    saved["stream"] = {}
    checkpoint.save(path, {k: saved[k] for k in checkpoint.KEYS})
    assert main(["train", "--out", str(run), "--resume", "--quiet", "--no-plots"]) == 0
    model, ref_model = final_state(run)[0], final_state(reference(*SMALL, "--stream"))[0]
    assert not all(torch.equal(model[k], ref_model[k]) for k in model)


@pytest.fixture
def saved_run(tmp_path, capsys) -> Path:
    run = tmp_path / "run"
    assert main([*SMALL, "--out", str(run), "--stop-after", "3"]) == 0
    return run


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_garbage(path: Path) -> None:
    path.write_bytes(b"not a checkpoint\n" * 10)


def damage_bytes(path: Path) -> None:  # the archive's directory intact, its pickle damaged
    data = bytearray(path.read_bytes())
    start = data.index(b"data.pkl") + 40
    data[start:start + 64] = bytes(b ^ 0xFF for b in data[start:start + 64])
    path.write_bytes(bytes(data))


def damage_version(path: Path) -> None:
    saved = torch.load(path, weights_only=True)
    saved["format_version"] = checkpoint.FORMAT_VERSION + 1
    torch.save(saved, path)


def damage_foreign(path: Path) -> None:
    torch.save({"model": {}}, path)


@pytest.mark.parametrize("damage, message", [
    (damage_truncate, "truncated or corrupted checkpoint"),
    (damage_garbage, "truncated or corrupted checkpoint"),
    (damage_bytes, "corrupted checkpoint: entry archive/data.pkl (the pickled structure) fails its CRC-32 check"),
    (damage_version, f"checkpoint format version {checkpoint.FORMAT_VERSION + 1}"),
    (damage_foreign, "not a hyprgen training checkpoint"),
])
def test_damaged_or_foreign_checkpoint_is_refused(saved_run, damage, message, capsys):
    path = saved_run / checkpoint.FILENAME
    damage(path)
    before = path.read_bytes()
    assert main(["train", "--out", str(saved_run), "--resume", "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"hyprgen: error: {path}: " in err and message in err and "Traceback" not in err
    assert path.read_bytes() == before  # never overwritten by a fresh start


def test_bytes_flipped_in_the_middle_of_a_checkpoint_are_refused(saved_run):
    """Bit-rot in a tensor's data leaves a well-formed archive that torch.load reads without complaint (NaNs
    in Adam's moments); `hyprgen train --resume` exits 2 with one line naming the file and the entry."""
    path = saved_run / checkpoint.FILENAME
    entry = flip_bytes_in_the_middle(path)
    before = path.read_bytes()
    resumed = cli(["train", "--out", str(saved_run), "--resume", "--quiet", "--no-plots"])
    assert resumed.returncode == 2, resumed.stdout + resumed.stderr
    assert resumed.stderr.startswith(f"hyprgen: error: {path}: corrupted checkpoint: ")
    assert f"entry {entry} " in resumed.stderr and resumed.stderr.count("\n") == 1
    assert path.read_bytes() == before


def test_a_checkpoint_that_does_not_match_its_digest_is_refused(saved_run, capsys):
    """A checkpoint rewritten with one moment changed (a well-formed archive, every CRC right) no longer
    matches the sha256 of the payload that was saved: refused, whichever tool rewrote it."""
    path = saved_run / checkpoint.FILENAME
    saved = torch.load(path, weights_only=True)
    moment = next(iter(saved["optimizer"]["state"].values()))["exp_avg"]
    moment.view(-1)[0] += 1e-3
    torch.save(saved, path)
    with pytest.raises(checkpoint.CheckpointError, match=f"{path}: .*does not match the sha256 of the payload"):
        checkpoint.load(path)
    assert main(["train", "--out", str(saved_run), "--resume", "--quiet", "--no-plots"]) == 2
    assert "does not match the sha256" in capsys.readouterr().err


def test_a_checkpoint_without_a_digest_loads_with_a_warning(saved_run, capsys):
    """Format version 1 (before the digest): read with a warning, its archive's CRCs still checked; the
    resumed run saves version 2."""
    path = saved_run / checkpoint.FILENAME
    saved = torch.load(path, weights_only=True)
    assert saved["format_version"] == checkpoint.FORMAT_VERSION == 2
    old = {k: v for k, v in saved.items() if k != "payload_sha256"} | {"format_version": 1}
    torch.save(old, path)
    with pytest.warns(checkpoint.CheckpointWarning, match=f"{path}: format version 1 has no payload digest"):
        loaded = checkpoint.load(path)
    assert all(torch.equal(loaded["model"][k], saved["model"][k]) for k in saved["model"])
    with pytest.warns(checkpoint.CheckpointWarning):
        assert main(["train", "--out", str(saved_run), "--resume", "--quiet", "--no-plots"]) == 0
    assert torch.load(path, weights_only=True)["format_version"] == 2
    torch.save(old, path)                   # and bit-rot in a version-1 file is still found
    entry = flip_bytes_in_the_middle(path)
    with pytest.raises(checkpoint.CheckpointError, match=f"{path}: corrupted checkpoint: entry {entry} "):
        checkpoint.load(path)


def test_resume_with_other_options_lists_the_differences(saved_run, tmp_path, capsys):
    file = tmp_path / "other.toml"
    file.write_text("chunk = 4\n")
    argv = ["train", "--out", str(saved_run), "--resume", "--quiet", "--no-plots"]
    assert main([*argv, "--config", str(file), "--lr", "0.5", "--hidden", "8"]) == 2
    err = capsys.readouterr().err
    assert f"{saved_run / checkpoint.FILENAME}: cannot resume" in err
    assert "chunk: 8 → 4; lr: 0.01 → 0.5" in err and "hidden" not in err  # hidden 8 is the saved value
    # how often to save is not part of the run: it may change
    assert main([*argv, "--checkpoint-every", "2"]) == 0


def test_a_run_directory_is_never_silently_restarted_or_invented(saved_run, tmp_path, capsys):
    assert main([*SMALL, "--out", str(saved_run)]) == 2
    assert "already holds a run (checkpoint.pt): add --resume" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "checkpoint.pt: no checkpoint to resume from" in capsys.readouterr().err


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / checkpoint.FILENAME
    contents = {k: {"n": 1} for k in checkpoint.KEYS}
    checkpoint.save(path, contents)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="not a function"):
        checkpoint.save(path, dict(contents, metrics=[lambda: None]))  # neither digested nor pickled: refused
    assert path.read_bytes() == before and os.listdir(tmp_path) == [checkpoint.FILENAME]

    def fails_mid_write(obj, f):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", fails_mid_write)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, dict(contents, config={"n": 2}))
    assert path.read_bytes() == before and os.listdir(tmp_path) == [checkpoint.FILENAME]
    monkeypatch.undo()
    assert checkpoint.load(path)["config"] == {"n": 1}
