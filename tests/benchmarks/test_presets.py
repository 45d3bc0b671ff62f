"""benchmarks/presets.py in its dry run: each task's `hyprgen train --task X` for one step, its results
written as JSON, a task without its data skipped with the reason (numbers are not asserted: CI is no
benchmark; the measured table is docs/training.md's)."""
import json

import pytest

from benchmarks import presets

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_dry_run_reports_every_task_it_can_run_and_skips_the_others(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(presets.DATA_DIRS, "shd", str(tmp_path / "no-shd"))
    out = tmp_path / "presets.json"
    presets.main(["--tasks", "digits", "shd", "--dry-run", "--out", str(out)])
    results = json.loads(out.read_text())["results"]
    r = results["digits"]
    assert r["steps"] == 1 and r["epochs"] == 1 and 0 <= r["test_accuracy"] <= 1
    assert r["chance"] == presets.CHANCE["digits"] and len(r["spike_rates"]) == 1
    assert 'neuron = "lif"' in r["config_toml"]   # the digits preset, not the defaults
    assert "no-shd" in results["shd"]["skipped"]
    printed = capsys.readouterr().out
    assert "digits  test accuracy" in printed and "shd     skipped" in printed
