"""PNG plots of a training run (matplotlib, optional; the Agg canvas, no display needed).

- curves.png: loss and accuracy per epoch (train, test, validation when held out), per-step
  training loss faint behind;
- raster.png: one test sample: input spikes, the first hidden layer's spikes, readout outputs;
- memory.png (HYPR): bytes the learner carries between chunks, and the process RSS, per step.
"""
from __future__ import annotations

from pathlib import Path

from .report import count


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(rows: int, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(8, height * rows), layout="constrained")
    return fig, fig.subplots(rows, 1, squeeze=False)[:, 0]


def curves(events: list[dict], path: Path) -> Path:
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch"]
    per_epoch = max((e["batch"] for e in steps), default=1)
    fig, (loss_ax, acc_ax) = _figure(2, 3.0)
    loss_ax.plot([e["epoch"] - 1 + e["batch"] / per_epoch for e in steps], [e["loss"] for e in steps], color="0.8",
                 lw=0.8, label="train (per step)")
    x = [e["epoch"] for e in epochs]
    for split, style in (("train", "-o"), ("test", "-s"), ("val", "-^")):
        if epochs and f"{split}_loss" in epochs[0]:
            loss_ax.plot(x, [e[f"{split}_loss"] for e in epochs], style, ms=3, label=split)
            acc_ax.plot(x, [e[f"{split}_accuracy"] for e in epochs], style, ms=3, label=split)
    loss_ax.set(ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return path


def raster(x, hidden, outputs, target, path: Path) -> Path:
    """x [T, n_in], hidden [T, n] (first hidden layer), outputs [T, n_out], target [T] (-100: none)."""
    fig, (in_ax, hid_ax, out_ax) = _figure(3, 2.2)
    for ax, values, name in ((in_ax, x, "input"), (hid_ax, hidden, "hidden layer 1")):
        t, i = values.nonzero(as_tuple=True)
        ax.scatter(t.numpy(), i.numpy(), s=2, marker="|", color="k")
        ax.set(ylabel="neuron", xlim=(0, len(values)), ylim=(-0.5, values.shape[1] - 0.5),
               title=f"{name}: {count(int((values != 0).sum()), 'spike')}")
        ax.yaxis.get_major_locator().set_params(integer=True)
    for k in range(outputs.shape[1]):
        out_ax.plot(outputs[:, k].numpy(), lw=0.8, label=f"class {k}")
    labelled = (target >= 0).nonzero(as_tuple=True)[0]
    if len(labelled) and len(labelled) < len(target):
        out_ax.axvspan(labelled.min().item(), labelled.max().item() + 1, color="0.9", label="labelled")
    out_ax.set(xlabel="time step", ylabel="readout", xlim=(0, len(outputs)), title="readout")
    if outputs.shape[1] <= 10:
        out_ax.legend(fontsize=7, ncol=min(outputs.shape[1] + 1, 6))
    fig.savefig(path, dpi=100)
    return path


def memory(events: list[dict], path: Path) -> Path:
    steps = [e for e in events if e["event"] == "step" and "learner_bytes" in e]
    fig, (ax,) = _figure(1, 3.0)
    s = [e["step"] for e in steps]
    carried = [e["learner_bytes"] / 2**10 for e in steps]
    ax.plot(s, carried, color="C0")
    # from zero, with headroom: a flat line is the point, not a magnified wiggle
    ax.set(xlabel="step", ylabel="HYPR traces + state (KiB)", ylim=(0, 1.25 * max(carried)),
           title="memory HYPR carries between chunks, and the process RSS")
    rss = [e["rss_mb"] for e in steps if e.get("rss_mb") is not None]
    if len(rss) == len(steps):
        right = ax.twinx()
        right.plot(s, rss, color="C1")
        right.set(ylabel="process RSS (MiB)", ylim=(0, 1.25 * max(rss)))
        right.yaxis.label.set_color("C1")
    ax.yaxis.label.set_color("C0")
    fig.savefig(path, dpi=100)
    return path
