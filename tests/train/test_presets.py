"""Task presets (hyprgen/train/presets.py): `hyprgen train --task X` starts from its task's preset,
under the checkpoint's config, --config and the command line; what a preset may hold."""
import argparse

import pytest

from hyprgen.cli import main
from hyprgen.errors import HyprgenError
from hyprgen.train import checkpoint, presets
from hyprgen.train.options import BY_NAME, OPTIONS, add_arguments, differences, resolve

pytestmark = pytest.mark.usefixtures("one_thread")

# the digits task's preset, cut to one step and one quick evaluation (the test split: 359 images of 8 steps)
ONE_STEP = ["--task", "digits", "--time-limit", "1e-9", "--quiet", "--no-plots"]


def parse(argv):
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return ap.parse_args(argv)


@pytest.mark.parametrize("task", [t for t, preset in presets.PRESETS.items() if preset])
def test_a_task_alone_resolves_to_its_preset_over_the_defaults(task):
    config = resolve(parse(["--task", task]))
    preset = presets.PRESETS[task]
    assert {name: config[name] for name in preset} == preset
    others = {o.name: o.default for o in OPTIONS
              if not o.control and o.name not in preset and o.name in config and o.name != "task"}
    assert others == {name: config[name] for name in others}
    assert any(BY_NAME[name].default != value for name, value in preset.items())  # it changes something


def test_the_cue_demo_keeps_the_built_in_defaults():
    assert resolve(parse([])) == resolve(parse(["--task", "cue"]))
    assert resolve(parse([]))["weight_scale"] == BY_NAME["weight_scale"].default


def test_config_file_and_command_line_override_the_preset(tmp_path):
    pytest.importorskip("tomllib")
    file = tmp_path / "run.toml"
    file.write_text('task = "digits"\nlr = 0.05\nhidden = [16]\n')
    config = resolve(parse(["--config", str(file), "--hidden", "8", "--weight-scale", "7"]))
    preset = presets.PRESETS["digits"]
    assert config["lr"] == 0.05 and config["hidden"] == [8] and config["weight_scale"] == 7.0
    assert config["neuron"] == preset["neuron"] and config["epochs"] == preset["epochs"]   # the rest: the preset's


def test_a_run_records_its_preset_in_config_toml(tmp_path, capsys):
    tomllib = pytest.importorskip("tomllib")
    assert main(["train", *ONE_STEP, "--out", str(tmp_path / "run")]) == 0
    written = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert {name: written[name] for name in presets.PRESETS["digits"]} == presets.PRESETS["digits"]
    assert "task preset digits (hyprgen/train/presets.py)" in capsys.readouterr().out


def test_resume_compares_with_the_checkpoint_not_the_preset(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--task", "digits", "--epochs", "1", "--quiet", "--no-plots", "--out", str(run)]
    assert main([*argv, "--stop-after", "2"]) == 0
    assert main(["train", "--out", str(run), "--resume", "--quiet", "--no-plots", "--weight-scale", "5"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    # a checkpoint written before its task had a preset: what it lacks had the built-in default then,
    # and neither the preset nor `differences` may read it otherwise
    saved = checkpoint.load(run / checkpoint.FILENAME)
    old = {k: v for k, v in saved["config"].items() if k != "readout"}
    resumed = resolve(parse(["--out", str(run), "--resume"]), base=old)
    assert resumed["readout"] == BY_NAME["readout"].default != presets.PRESETS["digits"]["readout"]
    assert differences(old, resumed) == []
    assert main(["train", "--out", str(run), "--resume", "--quiet", "--no-plots"]) == 0   # to the end


def test_help_says_which_presets_set_an_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "start from a preset of these options" in text and "(default: 10.0; presets: ecg 1.0" in text


@pytest.mark.parametrize("entry", [{"data_seed": 3}, {"readout_memory": False}, {"delay": 5}, {"lr": "fast"}])
def test_a_preset_holds_only_what_resume_and_every_method_can_take(entry, monkeypatch, capsys):
    """An option that defaults to unset (a --resume would read the checkpoint's "unset" as the preset's
    value), one that only some methods take (--method bptt would then be an error), another task's, or a
    value of the wrong type: a one-line error naming the table, before anything runs."""
    monkeypatch.setitem(presets.PRESETS, "digits", entry)
    with pytest.raises(HyprgenError, match="hyprgen/train/presets.py, task digits"):
        resolve(parse(["--task", "digits"]))
