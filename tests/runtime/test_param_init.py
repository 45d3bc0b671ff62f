"""RSNN(param_init=...) and `hyprgen train --param-init`: neuron parameters drawn from another distribution."""
import math

import pytest
import torch

import hyprgen
from hyprgen.cli import main
from hyprgen.errors import HyprgenError
from hyprgen.spec import constant, normal, uniform
from hyprgen.train.options import differences, parse_param_init


def test_overrides_draw_from_the_given_distributions():
    lo, hi = math.log(0.005), math.log(0.05)
    net = hyprgen.RSNN(3, [400], 2, neuron="brf_exp", seed=0, param_init={"b_offset": uniform(lo, hi), "omega": 4.0})
    b = net.layers[0].theta["b_offset"]
    assert lo <= b.min() and b.max() <= hi and b.max() - b.min() > 0.9 * (hi - lo)   # 400 draws fill the range
    assert torch.equal(net.layers[0].theta["omega"], torch.full((400,), 4.0))
    alif = hyprgen.RSNN(3, [2000], 2, neuron="alif", seed=0, param_init={"tau_a": normal(2000, 100)})
    tau_a = alif.layers[0].theta["tau_a"]
    assert abs(tau_a.mean() - 2000) < 10 and abs(tau_a.std() - 100) < 10


def test_without_overrides_the_network_is_unchanged():
    plain = hyprgen.RSNN(3, [16], 2, neuron="brf_exp", seed=3)
    same = hyprgen.RSNN(3, [16], 2, neuron="brf_exp", seed=3, param_init={})
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), same.parameters()))
    # the weights are drawn before the neuron parameters: an override leaves them as they were
    fixed = hyprgen.RSNN(3, [16], 2, neuron="brf_exp", seed=3, param_init={"omega": constant(4.0)})
    assert torch.equal(plain.layers[0].W_in, fixed.layers[0].W_in)
    assert torch.equal(plain.layers[0].W_rec, fixed.layers[0].W_rec)


def test_overrides_apply_to_every_hidden_layer_that_has_the_parameter_and_are_clamped():
    net = hyprgen.RSNN(3, [5, 6], 2, neuron=["brf", "alif"], seed=0, param_init={"tau_a": constant(-3.0)})
    assert "tau_a" not in net.layers[0].theta
    assert torch.equal(net.layers[1].theta["tau_a"], torch.full((6,), 1.0))  # the spec's clamp τ ≥ 1
    assert net.layers[2].theta["tau_out"].min() >= 15                          # the readout keeps its U[15, 25]


@pytest.mark.parametrize("param_init, message", [
    ({"tau": uniform(1, 2)}, r"no hidden neuron has a parameter 'tau' \(parameters: brf: omega, b_offset\)"),
    ({"omega": "4"}, r"param_init\['omega'\]: expected hyprgen.spec.uniform"),
    ({"omega": math.nan}, r"param_init\['omega'\]: expected"),
    ([("omega", 4.0)], "param_init must be a dict"),
])
def test_bad_overrides_are_refused_by_name(param_init, message):
    with pytest.raises(HyprgenError, match=message):
        hyprgen.RSNN(3, [4], 2, neuron="brf", param_init=param_init)


def test_cli_strings_parse_to_the_spec_distributions():
    got = parse_param_init(["b_offset=uniform(-5.3, -3.0)", " omega = normal(4,0.5) ", "tau_a=constant(7)"])
    assert got == {"b_offset": uniform(-5.3, -3.0), "omega": normal(4, 0.5), "tau_a": constant(7)}
    assert parse_param_init(None) == {} == parse_param_init([])


@pytest.mark.parametrize("item, message", [
    ("omega", "is not NAME=uniform"),
    ("omega=beta(1, 2)", "is not NAME=uniform"),
    ("omega=uniform(1)", "uniform takes 2 argument"),
    ("omega=uniform(a, 2)", "must be numbers"),
    ("omega=normal(1, -2)", "std must be >= 0"),
])
def test_bad_cli_strings_name_the_item(item, message):
    with pytest.raises(ValueError, match=message):
        parse_param_init([item])


def test_train_option_reaches_the_network_and_errors_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--neuron", "brf_exp", "--param-init", "omega=constant(4.5)", "--epochs", "1",
            "--epoch-batches", "1", "--lr", "1e-9", "--delay", "5", "--hidden", "4", "--batch-size", "2", "--test-samples", "2",
            "--out", str(run), "--quiet", "--no-plots"]
    assert main(argv) == 0
    model = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    torch.testing.assert_close(model["layers.0.theta.omega"], torch.full((4,), 4.5), rtol=0, atol=1e-6)
    assert 'param_init = ["omega=constant(4.5)"]' in (run / "config.toml").read_text()
    capsys.readouterr()
    assert main(["train", "--param-init", "omega=uniform(2, 1)"]) == 2
    err = capsys.readouterr().err
    assert "--param-init omega=uniform(2, 1) (given on the command line)" in err and "low must not exceed high" in err
    assert "Traceback" not in err


def test_a_checkpoint_from_before_the_option_still_resumes():
    """Older run configs lack param_init: it had its default (no overrides), so nothing differs."""
    current = {"param_init": [], "lr": 0.01}
    assert differences({"lr": 0.01}, current) == []
    assert differences({"lr": 0.01}, dict(current, param_init=["omega=constant(4)"])) == [
        "param_init: (none) → omega=constant(4)"]
