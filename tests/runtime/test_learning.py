"""The main job learns: BRF + HYPR solves the delayed cue task with a 100-step delay (seeded)."""
import torch

import hyprgen
from hyprgen.data import CueTask


def test_cue_task_shows_the_class_and_labels_only_recall_steps():
    task = CueTask(delay=100)
    x, y = task.batch(16, torch.Generator().manual_seed(0))
    assert x.shape == (16, 120, task.n_in) and y.shape == (16, 120)
    assert ((y[:, :110] == -100).all() and (y[:, 110:] >= 0).all())
    labels = y[:, -1]
    cue_rates = x[:, : task.cue, : 2 * task.group].reshape(16, task.cue, 2, task.group).mean((1, 3))  # [16, 2]
    assert (cue_rates.argmax(-1) == labels).all()        # the cue shows the class
    assert x[:, task.cue: task.cue + task.delay, : 2 * task.group].mean() < 0.05  # the delay is silent


def test_brf_hypr_learns_the_delayed_cue_task():
    torch.manual_seed(0)
    task = CueTask(delay=100)
    net = hyprgen.RSNN(task.n_in, [32], task.n_classes, neuron="brf", seed=0, weight_scale=10.0)
    learner = hyprgen.HYPR(net, chunk=64)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    data = torch.Generator().manual_seed(1)
    x_test, y_test = task.batch(256, torch.Generator().manual_seed(2))
    initial = task.accuracy(net(x_test)[0], y_test)
    accuracy = initial
    for iteration in range(1, 301):  # budget: 300 batches of 32
        learner.step(*task.batch(32, data), optimizer)
        if iteration % 20 == 0:
            with torch.no_grad():
                accuracy = task.accuracy(net(x_test)[0], y_test)
            if accuracy >= 0.9:
                break
    assert initial < 0.7, "the untrained network must not solve the task"
    assert accuracy >= 0.9, f"test accuracy {accuracy:.3f} after {iteration} batches"
