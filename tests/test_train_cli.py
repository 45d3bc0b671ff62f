"""`hyprgen train` runs end to end for every method and reports its metrics."""
import json

import pytest

from hyprgen.cli import main


@pytest.mark.parametrize("method", ["hypr", "bptt", "eprop"])
def test_train_command_runs_and_reports(method, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code = main(["train", "--method", method, "--epochs", "1", "--batches", "2", "--seq-len", "30",
                 "--hidden", "8", "--batch-size", "4", "--test-size", "8", "--chunk", "7", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "epoch 1:" in text and "final test accuracy" in text and "peak memory" in text
    metrics = json.loads(out.read_text())
    assert metrics["method"] == method and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["seq_len"] == 30


def test_train_rejects_a_too_short_sequence(capsys):
    assert main(["train", "--seq-len", "5"]) == 2
    err = capsys.readouterr().err
    assert "--seq-len 5 is too short" in err and "Traceback" not in err
