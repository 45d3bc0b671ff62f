"""A run's parts from its resolved config (options.py): task, network, learner, optimizer, LR schedule.

The Trainer builds every run from these, and so do the studies (benchmarks/studies/) that time a
configuration or compare gradients at a checkpoint: one config gives one network, wherever it is built.
"""
from __future__ import annotations

import math

import torch

from ..data import make_task
from ..errors import HyprgenError
from ..runtime import RSNN
from ..runtime.network import hidden_param_init
from ..runtime.neuron import sample_param
from .learners import make_learner, options_for
from .options import OPTIONS, parse_param_init

TASK_KWARGS = {"data_dir": "directory", "digits_mode": "mode"}  # option name → make_task keyword


def task_options(config: dict) -> dict:
    """make_task's keyword options from the config's task options."""
    return {TASK_KWARGS.get(o.name, o.name): config[o.name] for o in OPTIONS if o.tasks and o.name in config}


def build_task(config: dict):
    return make_task(config["task"], **task_options(config))


def epoch_length(task, batch_size: int) -> int:
    """Batches in one epoch of task.train_batches(batch_size, ...) (for progress bars and schedules)."""
    if hasattr(task, "epoch_batches"):  # the cue stream
        return task.epoch_batches
    return math.ceil(len(task.train) / batch_size)


def build_network(config: dict, task, device: torch.device) -> RSNN:
    """The RSNN of the config (weights from seed). --param-init values are drawn while the network
    is built, or with --param-init-seed afterwards from a generator of their own (redraw_params)."""
    c = config
    inits = parse_param_init(c["param_init"])
    later = c.get("param_init_seed") is not None
    net = RSNN(task.n_in, c["hidden"], task.n_out, neuron=c["neuron"], readout=c["readout"], seed=c["seed"],
               weight_scale=c["weight_scale"], param_init=None if later else inits,
               shared_readout=c.get("shared_readout", False))
    if later:
        redraw_params(net, inits, torch.Generator().manual_seed(c["param_init_seed"]))
    return net.to(device)


@torch.no_grad()
def redraw_params(net: RSNN, inits: dict, generator: torch.Generator) -> None:
    """Draw the named parameters of the hidden layers again from `generator`, parameter by parameter
    in the order given and layer by layer, then clamp. This is how the accuracy study's cue runs
    drew theirs (docs/results/accuracy.md), so that a fixed seed gives their networks."""
    hidden = net.layers[:-1]
    checked = hidden_param_init(inits, [layer.neuron for layer in hidden])  # names checked as RSNN checks them
    for name, init in checked.items():
        for layer in hidden:
            if name in layer.theta:
                layer.theta[name].copy_(sample_param(init, layer.n, generator))
    net.clamp_()


def build_learner(config: dict, net: RSNN, task, process_group=None):
    """The config's learner (learners.make_learner) with its method's options from the config;
    process_group: data-parallel over torch.distributed (train/distributed.py)."""
    c = config
    try:
        return make_learner(c["method"], net, loss=task.loss, process_group=process_group,
                            **options_for(c["method"], c))
    except ValueError as e:  # e.g. a neuron the Triton backend cannot run
        raise HyprgenError(f"--method {c['method']} --backend {c['backend']}: {e}") from None


def build_optimizer(config: dict, net: RSNN) -> torch.optim.Optimizer:
    optimizer = torch.optim.Adam if config["optimizer"] == "adam" else torch.optim.SGD
    return optimizer(net.parameters(), lr=config["lr"])


def build_scheduler(config: dict, optimizer, batches_per_epoch: int):
    """The LR schedule, or None (constant). linear: BRF's lr·(1 − epoch/epochs), stepped after each
    epoch; linear_step: lr·(1 − step/steps), stepped after each batch (steps = epochs × batches)."""
    if config["lr_schedule"] == "constant":
        return None
    total = config["epochs"] * (batches_per_epoch if config["lr_schedule"] == "linear_step" else 1)
    return torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=total)


def data_generator(config: dict) -> torch.Generator:
    """The training data's generator: --data-seed, by default --seed + 1."""
    seed = config.get("data_seed")
    return torch.Generator().manual_seed(config["seed"] + 1 if seed is None else seed)
