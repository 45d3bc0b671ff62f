"""The one learner factory (hyprgen/train/learners.py) against direct construction: the same learner
and bit-identical gradients for every method and variant; options of another method are refused."""
import subprocess
import sys

import pytest
import torch

from hyprgen.runtime import BPTT, HYPR, RSNN, EProp
from hyprgen.train.learners import METHODS, NAMES, make_learner, method_of, options_for

pytestmark = pytest.mark.usefixtures("one_thread")

DIRECT = {
    "hypr": lambda net: HYPR(net, chunk=5, loss="ce"),
    "hypr_drop": lambda net: HYPR(net, chunk=5, loss="ce", drop_spike_paths=True),
    "hypr_same_step": lambda net: HYPR(net, chunk=5, loss="ce", readout_memory=False),
    "bptt": lambda net: BPTT(net, loss="ce"),
    "bptt_detach": lambda net: BPTT(net, loss="ce", detach_recurrent=True),
    "eprop": lambda net: EProp(net, loss="ce"),
}


def gradient(learner, net, x, y) -> dict:
    net.zero_grad(set_to_none=True)
    learner.step(x, y)
    return {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("name", NAMES)
def test_factory_builds_what_direct_construction_builds(name):
    assert set(NAMES) == set(DIRECT)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.bernoulli(torch.full((3, 12, 4), 0.3), generator=gen), torch.randint(0, 2, (3, 12), generator=gen)
    net = RSNN(4, 6, 2, neuron="alif", seed=0, weight_scale=3.0)
    chunk = {"chunk": 5} if method_of(name) == "hypr" else {}
    made, direct = make_learner(name, net, loss="ce", **chunk), DIRECT[name](net)
    assert type(made) is type(direct)
    for attr in ("chunk", "backend", "drop_spike_paths", "detach_recurrent", "jacobians", "loss"):
        assert getattr(made, attr, None) == getattr(direct, attr, None), attr
    a, b = gradient(made, net, x, y), gradient(direct, net, x, y)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_options_of_another_method_are_refused_and_unset_ones_take_the_learners_defaults():
    net = RSNN(4, 6, 2, neuron="lif", seed=0)
    with pytest.raises(ValueError, match="backend='triton' is an option of hypr, not of bptt"):
        make_learner("bptt", net, backend="triton")
    with pytest.raises(ValueError, match="detach_recurrent=True is an option of bptt, not of hypr_drop"):
        make_learner("hypr_drop", net, detach_recurrent=True)
    with pytest.raises(ValueError, match="unknown method 'rtrl'"):
        make_learner("rtrl", net)
    with pytest.raises(ValueError, match="unknown learner option 'lam'"):
        make_learner("hypr", net, lam=4)
    # HYPR's own rules stay HYPR's (runtime/hypr.py option_problem)
    with pytest.raises(ValueError, match="drop_spike_paths is a comparison option of backend='torch'"):
        make_learner("hypr_drop", net, backend="triton")
    assert make_learner("hypr", net, chunk=None, drop_spike_paths=False).chunk == HYPR(net).chunk
    assert make_learner("eprop", net, chunk=None, detach_recurrent=False).jacobians == "generated"


def test_options_for_picks_the_methods_options_from_a_config():
    config = {"chunk": 7, "backend": "torch", "drop_spike_paths": False, "detach_recurrent": True, "lr": 0.1}
    assert options_for("hypr", config) == {"chunk": 7, "backend": "torch", "drop_spike_paths": False}
    assert options_for("bptt_detach", config) == {"detach_recurrent": True}
    assert options_for("eprop", config) == {} and METHODS == ("hypr", "bptt", "eprop")


def test_the_cli_front_reads_methods_and_tasks_without_torch():
    code = ("import sys, hyprgen.cli, hyprgen.train.options as o, hyprgen.train.learners\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(*o.BY_NAME['method'].choices, *o.BY_NAME['task'].choices)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["hypr", "bptt", "eprop", "cue", "ecg", "shd", "digits"]
