"""The hint about a silent hidden layer: `hyprgen train` names the layer and what to change, once, when
an epoch's test evaluation finds it (almost) without spikes (report.SILENT_RATE), and says nothing
when the layers fire."""
import json

import pytest

from hyprgen.cli import main
from hyprgen.train.report import SILENT_RATE

from ..helpers import tiny_run_argv

pytestmark = pytest.mark.usefixtures("one_thread")

DIGITS_ONE_STEP = ["--task", "digits", "--time-limit", "1e-9", "--quiet", "--no-plots"]


def hints(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("hyprgen: hint:")]


def test_a_silent_layer_is_named_once_with_the_preset_value_to_go_back_to(capsys):
    assert main(["train", *DIGITS_ONE_STEP, "--weight-scale", "0"]) == 0   # zero weights: no input current
    [line] = hints(capsys.readouterr().out)
    assert "hidden layer 0 (128 lif neurons) is silent after epoch 1: 0 spikes per neuron and step" in line
    assert "the digits preset has --weight-scale 30.0 (this run: --weight-scale 0.0)" in line


def test_every_silent_layer_is_named_and_the_rates_are_in_the_metrics(tmp_path, capsys):
    argv = ["train", *tiny_run_argv(epochs=2, batches=2), "--hidden", "8", "6", "--weight-scale", "0"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    lines = hints(capsys.readouterr().out)
    assert [line.split(" is silent")[0] for line in lines] == [
        "hyprgen: hint: hidden layer 0 (8 brf neurons)", "hyprgen: hint: hidden layer 1 (6 brf neurons)"]
    assert all("try a larger --weight-scale (now 0.0)" in line for line in lines)   # cue has no preset
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if '"event": "epoch"' in line]
    assert len(epochs) == 2 and all(len(e["test_spike_rates"]) == 2 for e in epochs)   # two epochs, one line each
    assert all(e["test_spike_rate"] == e["test_spike_rates"][0] < SILENT_RATE for e in epochs)


def test_a_firing_network_gets_no_hint(tmp_path, capsys):
    assert main(["train", *DIGITS_ONE_STEP, "--out", str(tmp_path / "run")]) == 0
    assert hints(capsys.readouterr().out) == []
    [epoch] = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
               if '"event": "epoch"' in line]
    assert epoch["test_spike_rates"][0] > 10 * SILENT_RATE


@pytest.mark.parametrize("rates, final, named", [
    ([0, 0], False, []),          # the cue demo: silent after epochs 1 and 2, then it fires and learns
    ([0, 0, 0], False, [0]),      # SILENT_EPOCHS in a row
    ([0, 0, 8e-5], True, []),     # firing again by the end
    ([0.1, 0], True, [0]),        # silent when the run ends
])
def test_a_layer_counts_as_silent_after_several_epochs_or_at_the_end(rates, final, named):
    from hyprgen.train.report import silent_layers

    epochs = [{"epoch": i + 1, "test_spike_rates": [rate, 0.1]} for i, rate in enumerate(rates)]
    assert silent_layers(epochs, final) == named
