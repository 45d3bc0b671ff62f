"""Data-parallel learners (runtime/distributed.py) on 2 gloo processes: each process learns on its half
of the batch, and every process ends with the gradient and the loss that one process computes on the
whole batch, in float64; also when the halves count different numbers of labelled steps (where
averaging per-process gradients, DDP's rule, would be wrong)."""
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import hyprgen

T, B = 23, 4


def problem():
    """The network and the whole batch (x [B, T, 3], labels with the first half of the batch mostly
    unlabelled, so that the two halves count very different numbers of terms)."""
    net = hyprgen.RSNN(3, [6, 5], 3, neuron="brf", seed=0).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(B, T, 3, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (B, T), generator=gen)
    y[: B // 2, : T - 3] = -100
    return net, x, y


LEARNERS = {"hypr": lambda net, **kw: hyprgen.HYPR(net, chunk=5, **kw), "bptt": hyprgen.BPTT,
            "eprop": hyprgen.EProp}


def learn(method: str, mode: str, net, x, y, **kw):
    """(loss, gradients, parameters after one SGD step) of one call; mode: step, pieces or stream."""
    learner = LEARNERS[method](net, **kw)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    if mode == "step":
        result = learner.step(x, y, opt)
    elif mode == "pieces":
        result = learner.step_pieces([(x[:, :9], y[:, :9]), (x[:, 9:], y[:, 9:])], opt)
    else:
        result = learner.stream(x, y, opt)
    return float(result.loss), {k: p.detach().clone() for k, p in learner.net.named_parameters()}


# (method, mode, the net passed wrapped in DistributedDataParallel instead of with process_group=)
CASES = [("hypr", "step", True), ("hypr", "pieces", False), ("hypr", "stream", False), ("bptt", "step", False),
         ("bptt", "step", True), ("eprop", "step", False)]


def worker(rank: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        results = {}
        for method, mode, ddp in CASES:
            net, x, y = problem()
            half = slice(rank * B // 2, (rank + 1) * B // 2)
            wrapped = torch.nn.parallel.DistributedDataParallel(net) if ddp else net
            kw = {} if ddp else {"process_group": dist.group.WORLD}
            results[method, mode, ddp] = learn(method, mode, wrapped, x[half], y[half], **kw)
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(str(folder / "init"), str(folder / "result")), nprocs=2, join=True)
    return [torch.load(folder / f"result.{r}") for r in range(2)]


@pytest.mark.parametrize("method, mode, ddp", CASES)
def test_two_processes_learn_as_one_on_the_whole_batch(two_processes, method, mode, ddp):
    net, x, y = problem()
    loss, params = learn(method, mode, net, x, y)
    for rank, results in enumerate(two_processes):
        got_loss, got_params = results[method, mode, ddp]
        assert got_loss == pytest.approx(loss, rel=1e-12), rank
        for k in params:
            torch.testing.assert_close(got_params[k], params[k], rtol=1e-12, atol=1e-14, msg=f"rank {rank} {k}")


def test_averaging_the_halves_gradients_would_be_wrong_here():
    """The test's premise: with these labels, the mean of per-half gradients is not the whole batch's."""
    net, x, y = problem()
    grads = []
    for half in (slice(0, B // 2), slice(B // 2, B)):
        net.zero_grad(set_to_none=True)
        hyprgen.BPTT(net).step(x[half], y[half])
        grads.append(net.layers[0].W_in.grad.clone())
    net.zero_grad(set_to_none=True)
    hyprgen.BPTT(net).step(x, y)
    whole = net.layers[0].W_in.grad
    assert ((grads[0] + grads[1]) / 2 - whole).abs().max() > 1e-3 * whole.abs().max()


def test_a_process_group_needs_torch_distributed_initialized():
    net, _, _ = problem()
    with pytest.raises(RuntimeError, match="not initialized"):
        hyprgen.HYPR(net, process_group=object())
