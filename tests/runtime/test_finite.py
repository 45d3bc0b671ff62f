"""The finiteness guard (runtime/finite.py): every learner stops at the first NaN/inf and names where it
appeared; the reference for "where" is a plain loop of the generated neuron step (nothing of the guard).

Before the guard, each of these runs finished without a word: a layer whose state overflowed to inf
and then NaN fell silent (H(NaN) = 0) while the loss stayed finite."""
import pytest
import torch

import hyprgen
from hyprgen.errors import NonFiniteError
from hyprgen.runtime import BPTT, HYPR, EProp
from hyprgen.runtime.stages import TorchStages

T, ONSET, BLOWN = 23, 9, 2   # steps; the first step with input; the neuron whose weight overflows its current


def blowing_up(neuron: str) -> tuple[hyprgen.RSNN, torch.Tensor, torch.Tensor]:
    """A 2-hidden-layer recurrent float32 network in which neuron BLOWN of layer 0 gets a current of
    6e38 (inf in float32) from step ONSET on, where channel 0 starts to carry input."""
    net = hyprgen.RSNN(3, [5, 4], 2, neuron=neuron, seed=0)
    with torch.no_grad():
        net.layers[0].W_in[BLOWN, 0] = 3e38
    x = torch.zeros(2, T, 3)
    x[:, ONSET:, 0] = 2.0
    return net, x, torch.zeros(2, T, dtype=torch.long)


def first_nonfinite_by_loop(net: hyprgen.RSNN, x: torch.Tensor):
    """(step, layer, component, sample, neuron) of the first non-finite state, stepping the generated
    neurons one step at a time, bottom-up within a step."""
    state = net.init_state(x.shape[0])
    for t in range(x.shape[1]):
        h = x[:, t]
        for i, layer in enumerate(net.layers):
            r, o = layer.neuron.step(state[i].r, layer.current(layer.feedforward(h[None])[0], state[i].o),
                                     layer.params_tuple())
            state[i].r, state[i].o = tuple(r), o
            for c, comp in enumerate(r):
                bad = (~torch.isfinite(comp)).nonzero()
                if len(bad):
                    return t, i, layer.neuron.META["carried"][c], int(bad[0, 0]), int(bad[0, 1])
            h = o
    return None


LEARNERS = {"hypr_1": lambda net: HYPR(net, chunk=1), "hypr_4": lambda net: HYPR(net, chunk=4),
            "hypr_T": lambda net: HYPR(net, chunk=T), "bptt": BPTT, "eprop": EProp}


@pytest.mark.parametrize("neuron", ["brf", "alif"])
@pytest.mark.parametrize("learner", LEARNERS)
def test_state_overflow_is_named_as_the_plain_loop_finds_it(neuron, learner):
    net, x, y = blowing_up(neuron)
    with torch.no_grad():
        expected = first_nonfinite_by_loop(net, x)
    assert expected is not None and expected[0] >= ONSET   # the scenario does blow up, and not before its onset
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(NonFiniteError) as err:
        LEARNERS[learner](net).step(x, y, opt)
    e = err.value
    assert (e.step, e.layer, e.component, e.sample, e.neuron) == expected
    assert e.kind == "state" and f"neuron {expected[4]}" in str(e) and f"after step {expected[0]}" in str(e)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())   # no step with a bad gradient


def test_streaming_names_the_step_of_the_stream():
    net, x, y = blowing_up("brf")
    with torch.no_grad():
        expected = first_nonfinite_by_loop(net, x)
    learner, opt = HYPR(net, chunk=3), torch.optim.SGD(net.parameters(), lr=0.0)   # lr 0: the same network
    learner.stream(x[:, :5], y[:, :5], opt)                                         # a piece before the onset
    with pytest.raises(NonFiniteError) as err:
        learner.stream(x[:, 5:], y[:, 5:], opt)
    assert (err.value.step, err.value.layer, err.value.neuron) == (expected[0], expected[1], expected[4])


def test_the_guard_can_be_turned_off_and_then_the_run_is_silent():
    net, x, y = blowing_up("brf")
    result = HYPR(net, chunk=4, check_finite=False).step(x, y)
    assert torch.isfinite(result.loss)    # what the guard is for: the loss does not show it
    _, final = net(x)
    assert not torch.isfinite(final[0].r[0]).all()


def test_a_loss_overflow_with_finite_outputs_is_a_loss_error():
    net = hyprgen.RSNN(3, 5, 2, seed=0)
    x, target = torch.rand(2, 8, 3), torch.full((2, 8, 2), 1e30)   # (y − 1e30)² overflows float32
    for learner in (HYPR(net, chunk=3, loss="mse"), BPTT(net, loss="mse"), EProp(net, loss="mse")):
        with pytest.raises(NonFiniteError, match="non-finite loss") as err:
            learner.step(x, target)
        assert err.value.kind == "loss"


def test_a_nonfinite_gradient_from_finite_states_names_the_entry(monkeypatch):
    net = hyprgen.RSNN(3, 5, 2, seed=0)
    x, y = torch.rand(2, 8, 3), torch.zeros(2, 8, dtype=torch.long)
    merge = TorchStages.merge

    def poisoned(traces, sweep, pre, out=None):   # a NaN in one entry of layer 0's dW, as a bad derivative gives
        grad, out = merge(traces, sweep, pre, out=out)
        if grad.W.shape[0] == 5:
            grad.W[3, 1] = float("nan")
        return grad, out

    monkeypatch.setattr(TorchStages, "merge", staticmethod(poisoned))
    with pytest.raises(NonFiniteError, match=r"dW\[3, 1\] = nan") as err:
        HYPR(net, chunk=4, backend="torch").step(x, y)   # the torch stages, patched above
    assert (err.value.kind, err.value.layer, err.value.neuron) == ("gradient", 0, 3)
    net.layers[1].W_in.register_hook(lambda g: g * float("nan"))   # BPTT: a NaN from autograd
    with pytest.raises(NonFiniteError, match=r"layer 1 .*W_in\[0, 0\] = nan") as err:
        BPTT(net).step(x, y)
    assert err.value.kind == "gradient"


class Overflowing(torch.optim.SGD):
    """SGD whose step also adds 2 · 3e38 to one entry (as a huge learning rate would)."""

    def __init__(self, param):
        super().__init__([param], lr=0.0)
        self.param = param

    @torch.no_grad()
    def step(self, closure=None):
        self.param[1] += 3e38
        self.param[1] += 3e38


def test_an_optimizer_step_that_overflows_a_parameter_is_named():
    x, y = torch.rand(2, 8, 3), torch.zeros(2, 8, dtype=torch.long)
    for make in (lambda net: HYPR(net, chunk=4), BPTT, EProp):
        net = hyprgen.RSNN(3, 5, 2, seed=0)
        opt = Overflowing(net.layers[0].bias)   # finite gradients, an update past float32's range
        with pytest.raises(NonFiniteError, match="optimizer step") as err:
            make(net).step(x, y, opt)
        assert err.value.kind == "parameter" and "layers.0.bias[1] became inf" in str(err.value)
