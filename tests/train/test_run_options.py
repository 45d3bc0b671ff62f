"""The options that the accuracy study needs from `hyprgen train` (and any run may use): the data's
seed, the evaluation batch, an initial evaluation, a per-step linear LR decay, parameter draws from a
generator of their own, a time limit and a stop on non-finite losses; the learner options' rules."""
import math

import pytest
import torch

from hyprgen.cli import main
from hyprgen.errors import HyprgenError
from hyprgen.runtime import BPTT
from hyprgen.train import assemble, checkpoint
from hyprgen.train.evaluation import evaluate

from ..helpers import prepared_trainer, tiny_run_argv

TINY = tiny_run_argv(epochs=1, batches=3)

pytestmark = pytest.mark.usefixtures("one_thread")


def trainer(argv):
    return prepared_trainer([*TINY, *argv])


def trained(argv):
    t = trainer(argv)
    assert t.run() == 0
    return t


def test_data_seed_replaces_seed_plus_one(capsys):
    default, same, other = (trained(argv).net.state_dict() for argv in ([], ["--data-seed", "1"], ["--data-seed", "5"]))
    assert all(torch.equal(default[k], same[k]) for k in default)
    assert not all(torch.equal(default[k], other[k]) for k in default)


def test_initial_eval_and_eval_batch_size(capsys):
    t = trainer(["--initial-eval", "--eval-batch-size", "3"])
    first = evaluate(t.net, t.task, t.task.test_batches(8), t.device)  # the untrained network, one batch
    assert t.run() == 0
    initial, epoch = t.log.events[0], t.log.of("epoch")[0]
    assert initial["event"] == "initial" and initial["epoch"] == 0 and initial["step"] == 0
    assert initial["test_accuracy"] == first.accuracy and initial["test_spike_rate"] == first.spike_rate
    assert initial["test_loss"] == pytest.approx(first.loss, rel=1e-6)  # batched by 3, not 8: rounding only
    assert {"test_loss", "test_accuracy", "test_spike_rate"} <= set(epoch) and 0 <= epoch["test_spike_rate"] <= 1


def test_linear_step_decays_the_learning_rate_after_every_step(capsys):
    t = trained(["--lr-schedule", "linear_step", "--epochs", "2", "--lr", "0.02"])
    steps = [e for e in t.log.events if e["event"] == "step"]
    assert [e["lr"] for e in steps] == pytest.approx([0.02 * (1 - s / 6) for s in range(6)])


def test_param_init_seed_draws_the_parameters_after_the_network_from_their_own_generator(capsys):
    lo, hi = math.log(0.005), math.log(0.05)
    argv = ["--neuron", "brf_exp", "--hidden", "300", "--weight-scale", "200",
            "--param-init", f"b_offset=uniform({lo}, {hi})", "--param-init-seed", "1"]
    t = trainer(argv)
    b = t.net.layers[0].theta["b_offset"]
    assert lo <= b.min() and b.max() <= hi and b.max() - b.min() > 0.9 * (hi - lo)
    assert torch.equal(b.detach(), torch.empty(300).uniform_(lo, hi, generator=torch.Generator().manual_seed(1)))
    plain = trainer(["--neuron", "brf_exp", "--hidden", "300", "--weight-scale", "1"])
    # the weights are drawn before the parameters: the same draws, 200× the bound
    assert abs(t.net.layers[0].W_in.abs().max() / plain.net.layers[0].W_in.abs().max() - 200) < 1e-3
    config = dict(t.config, param_init=["tau_a=uniform(1, 2)"])
    with pytest.raises(HyprgenError, match="no hidden neuron has a parameter 'tau_a'"):
        assemble.build_network(config, t.task, t.device)
    assert main(["train", *TINY, "--param-init-seed", "3"]) == 2
    assert "--param-init-seed 3 (given on the command line): seeds the draws of --param-init" in capsys.readouterr().err


def test_time_limit_ends_the_run_after_a_step_with_the_epoch_evaluated(capsys):
    t = trainer(["--time-limit", "1e-9", "--epochs", "3"])
    assert t.run() == 0
    summary = t.summary()
    assert summary["steps"] == 1 and summary["epochs"] == 1 and "time limit of 1e-09 s" in summary["ended"]
    assert [e["event"] for e in t.log.events] == ["step", "epoch"]
    assert main(["train", *TINY, "--time-limit", "0"]) == 2


def test_stop_on_nonfinite_ends_the_run_after_the_epoch(capsys, monkeypatch):
    t = trainer(["--stop-on-nonfinite", "--epochs", "3"])
    step = t.learner.step

    def poisoned(x, y, optimizer):
        result = step(x, y, optimizer)
        return type(result)(result.loss * float("nan"), result.outputs) if t.progress.step == 1 else result

    monkeypatch.setattr(t.learner, "step", poisoned)
    assert t.run() == 0
    assert t.summary()["epochs"] == 1 and "not finite" in t.summary()["ended"]
    assert len([e for e in t.log.events if e["event"] == "step"]) == 3   # the epoch ran to its end


def test_a_nonfinite_value_stops_the_run_with_its_place_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    """--lr 1e8 blows the hidden state up within two steps; before the guard the run exited 0 with a
    finite loss and NaN weights. Now: exit code 3, the message names layer, neuron, state and step, and
    the checkpoint is the one of the last good step, equal to a run stopped there (--stop-after)."""
    argv = ["train", *TINY, "--epochs", "2", "--lr", "1e8", "--checkpoint-every", "1"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 3
    err = capsys.readouterr().err
    assert "non-finite state: layer 0 (brf" in err and "neuron " in err and "after step " in err
    assert f"the last good checkpoint, {tmp_path / 'a' / 'checkpoint.pt'}, is kept" in err
    kept = checkpoint.load(tmp_path / "a" / checkpoint.FILENAME)
    failed_at = int(err.split("step ")[1].split(":")[0])           # "training stopped in epoch 1, step K:"
    assert kept["progress"]["step"] == failed_at - 1
    assert main([*argv, "--out", str(tmp_path / "b"), "--stop-after", str(failed_at - 1)]) == 0
    stopped = checkpoint.load(tmp_path / "b" / checkpoint.FILENAME)
    assert all(torch.isfinite(v).all() and torch.equal(v, stopped["model"][k]) for k, v in kept["model"].items())
    assert main([*argv, "--out", str(tmp_path / "c"), "--no-check-finite"]) == 0   # the guard off: silent


def test_learner_options_belong_to_their_method(capsys):
    t = trainer(["--method", "bptt", "--detach-recurrent"])
    assert isinstance(t.learner, BPTT) and t.learner.detach_recurrent
    for argv, message in [
        (["--detach-recurrent"], "--detach-recurrent true (given on the command line): needs --method bptt, not hypr"),
        (["--method", "eprop", "--backend", "triton"], "--backend triton (given on the command line): needs --method "
                                                        "hypr, not eprop"),
        (["--backend", "triton", "--drop-spike-paths"], "--backend triton (given on the command line), "
         "--drop-spike-paths true (given on the command line): drop_spike_paths is a comparison option of "
         "backend='torch'"),
        (["--backend", "cuda"], "backend must be one of 'auto', 'torch', 'triton', 'cpu', got 'cuda'"),
    ]:
        assert main(["train", *TINY, *argv]) == 2
        assert message in capsys.readouterr().err
