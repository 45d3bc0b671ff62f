"""The text `hyprgen train` prints: the run's header, one line per epoch, the hint about a silent
hidden layer, the final summary table."""
from __future__ import annotations

from .options import flag, show
from .presets import PRESETS

# A hidden layer below this rate (spikes per neuron and step in the test evaluation after an epoch)
# counts as silent: it passes (almost) nothing to the layers above and the readout. 1e-5 is far
# under the rates of the trained presets (docs/training.md, "Task presets": 0.02 to 0.2) and above
# those of the runs that stayed at chance (0, or 1 spike in 141 × 1300 steps × 36 neurons on ECG).
SILENT_RATE = 1e-5
# ...for this many evaluations in a row, or in the run's last one. One silent epoch is no sign: the
# cue demo is silent after epochs 1 and 2 (surrogate gradients reach a silent layer), fires at 8e-5
# after epoch 3 and learns.
SILENT_EPOCHS = 3
ADJUSTS_FIRING = ("neuron", "weight_scale", "param_init")   # the options a silent layer's hint points to


def count(n: int, unit: str, units: str | None = None) -> str:
    """'1 epoch', '2 epochs' ('1 batch', '3 batches' with units given)."""
    return f"{n} {unit if n == 1 else units or unit + 's'}"


def header(config: dict, task, batches_per_epoch: int) -> str:
    c = config
    what = {"cue": f"delayed cue (delay {c.get('delay')})", "ecg": "ECG-QTDB",
            "shd": "Spiking Heidelberg Digits", "digits": f"sequential digits ({c.get('digits_mode')})"}[c["task"]]
    hidden = " → ".join(map(str, c["hidden"]))
    method = c["method"] + (f", λ = {c['chunk']}, {c['backend']} backend" if c["method"] == "hypr" else "")
    method += ", without the spike paths" if c.get("drop_spike_paths") else ""
    if c.get("method") in ("hypr", "eprop") and not c.get("readout_memory", True):
        method += ", same-step learning signal (no readout memory)"
    method += ", recurrent paths detached" if c.get("detach_recurrent") else ""
    seed = f"seed {c['seed']}" + (f" (data {c['data_seed']})" if c.get("data_seed") is not None else "")
    lines = [f"task: {what}, {task.n_out} classes, T = {task.seq_len}; network: {task.n_in} → {hidden} {c['neuron']} "
             f"→ {task.n_out} ({c['readout']} readout); method: {method}",
             f"training: {count(c['epochs'], 'epoch')} × {count(batches_per_epoch, 'batch', 'batches')} of "
             f"{c['batch_size']}, {c['optimizer']} "
             f"lr {c['lr']:g} ({c['lr_schedule']}), {seed}, device {c['device']}"]
    preset = PRESETS.get(c["task"])
    if preset:
        lines.append(f"task preset {c['task']} (hyprgen/train/presets.py) under the options given: "
                     + " ".join(f"{flag(k)} {show(v)}" for k, v in preset.items()))
    if c.get("param_init"):
        lines.append(f"neuron parameters drawn from: {', '.join(c['param_init'])} (raw values)")
    if c["stream"]:
        lines.append(f"streaming: per batch element one endless input of cue trials back to back ({task.seq_len} "
                     f"steps each), an optimizer step every {count(c['chunk'], 'step')}, state and traces never reset")
    return "\n".join(lines)


def epoch_line(event: dict, config: dict, task) -> str:
    """One epoch's results; in streaming mode with the stream's length and the memory it holds."""
    train = "online" if config["stream"] else "train"
    text = (f"epoch {event['epoch']}/{config['epochs']}: {train} loss {event['train_loss']:.4f}  {train} acc "
            f"{event['train_accuracy']:.3f}  test acc {event['test_accuracy']:.3f}")
    if "val_accuracy" in event:
        text += f"  val acc {event['val_accuracy']:.3f}"
    text += f"  | {event['elapsed']:.1f} s"
    if config["stream"]:
        text += f", {event['step'] * task.seq_len:,} steps streamed"
    if "learner_bytes" in event:
        text += f", HYPR carries {event['learner_bytes'] / 2**10:.1f} KiB"
    if event["rss_mb"] is not None:
        text += f", RSS {event['rss_mb']:.0f} MiB"
    return text


def silent_layers(epochs: list[dict], final: bool) -> list[int]:
    """The hidden layers (0 = bottom) to report as silent after the last of `epochs` (the run's epoch
    events so far): below SILENT_RATE in the last SILENT_EPOCHS test evaluations, or in the last one
    when it ends the run (`final`)."""
    recent = [e.get("test_spike_rates") for e in epochs[-(1 if final else SILENT_EPOCHS):]]
    if len(recent) < (1 if final else SILENT_EPOCHS) or None in recent:   # too few, or not this rank's
        return []
    return [i for i in range(len(recent[-1])) if all(rates[i] < SILENT_RATE for rates in recent)]


def silent_layer_hint(layer: int, event: dict, config: dict) -> str:
    """One line: which hidden layer is silent, and what to change: the options in which the run departs
    from its task's preset, else (the preset itself, or a task without one) the weight scale."""
    c = config
    preset = PRESETS.get(c["task"], {})
    departs = [name for name in ADJUSTS_FIRING if name in preset and c[name] != preset[name]]
    if departs:
        what = (f"the {c['task']} preset has " + " ".join(f"{flag(n)} {show(preset[n])}" for n in departs)
                + f" (this run: {' '.join(f'{flag(n)} {show(c[n])}' for n in departs)})")
    else:
        what = f"try a larger {flag('weight_scale')} (now {show(c['weight_scale'])}) or another {flag('neuron')}"
    return (f"hyprgen: hint: hidden layer {layer} ({c['hidden'][layer]} {c['neuron']} neurons) is silent after "
            f"epoch {event['epoch']}: {event['test_spike_rates'][layer]:.2g} spikes per neuron and step on the test "
            f"set (below {SILENT_RATE:g}), so it passes nothing on; {what}")


def summary_table(s: dict) -> str:
    """Final results as a plain-text table (s: Trainer.summary())."""
    splits = [name for name in ("train", "val", "test") if f"{name}_accuracy" in s]
    row = lambda label, cells: f"  {label:<12}" + "".join(f"{c:>9}" for c in cells)  # noqa: E731
    lines = ["summary:", row("", splits),
             row("accuracy", [f"{s[f'{n}_accuracy']:.4f}" for n in splits]),
             row("loss", [f"{s[f'{n}_loss']:.4f}" for n in splits]),
             row("time", []) + f"{s['seconds']:.1f} s ({count(s['epochs'], 'epoch')}, {count(s['steps'], 'step')})",
             row("peak memory", []) + f"{s['peak_memory_mb']:.0f} MiB ({s['memory_kind']})"]
    if s["learner_bytes"] is not None:
        lines.append(row("HYPR state", []) + f"{s['learner_bytes'] / 2**10:.1f} KiB (traces and state carried "
                     "between chunks)")
    return "\n".join(lines)
