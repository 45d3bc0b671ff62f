"""Options of `hyprgen train`: one table, read from the command line and from a TOML file.

Every option has one name (`batch_size`); the command line spells it `--batch-size`, a config file
either way. Precedence: built-in default < the task's preset (presets.py) < the checkpoint's config
(with --resume) < --config FILE < command line. argparse defaults are all None so that "given" and
"not given" stay apart.

Kinds of option:
- run options define the run: they are written to the run directory's config.toml and must match
  the checkpoint's on --resume (except `NOT_COMPARED`: where the data lies, how often to save);
- task options are run options that apply to some tasks only (`tasks`); giving one for another task
  is an error, and the resolved config holds only the current task's;
- controls (`control=True`) belong to one invocation (where to write, whether to resume, ...).

This module stays free of torch so that `hyprgen --help` starts quickly: the task names come from
hyprgen.data and the methods from learners.py (both torch-free at import), and HYPR's backend rules
from runtime.hypr.option_problem, imported only when a run's options are checked.
"""
from __future__ import annotations

import argparse
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from ..data import TASKS
from ..errors import HyprgenError
from .learners import METHODS, OWNER
from .presets import PRESETS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package, if installed
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None


@dataclass(frozen=True)
class Option:
    name: str                 # config key and argparse dest (underscores)
    kind: str                 # "int", "float", "str", "bool", "ints" / "strs" (one or more ints / strings)
    default: object
    help: str
    group: str
    choices: tuple = ()
    tasks: tuple = ()         # task options: the tasks they apply to
    control: bool = False     # an invocation control, not part of the run's config
    metavar: str | None = None


OPTIONS = (
    Option("task", "str", "cue", "built-in task; the other options start from its preset (hyprgen/train/presets.py, "
           "docs/training.md)", "task", choices=TASKS),
    Option("delay", "int", 100, "delay between cue and recall in steps", "task", tasks=("cue",)),
    Option("seq_len", "int", None, "sequence length T instead of --delay: delay = T − 20 (cue 10 + recall 10 "
           "steps)", "task", tasks=("cue",)),
    Option("epoch_batches", "int", 40, "batches per epoch (the stream is endless)", "task", tasks=("cue",)),
    Option("test_samples", "int", 256, "test sequences", "task", tasks=("cue",)),
    Option("data_dir", "str", None, "folder of the data files (default: $HYPRGEN_ECG_DIR / $HYPRGEN_SHD_DIR)", "task",
           tasks=("ecg", "shd"), metavar="DIR"),
    Option("val_fraction", "float", 0.0, "part of the training split held out for validation (BRF: 0.1)", "task",
           tasks=("ecg", "shd", "digits")),
    Option("split_seed", "int", 0, "seed of the validation hold-out", "task", tasks=("ecg", "shd", "digits")),
    Option("digits_mode", "str", "rows", "one image row or one pixel per step", "task", choices=("rows", "pixels"),
           tasks=("digits",)),
    Option("neuron", "str", "brf", "shipped neuron name or spec file", "model"),
    Option("hidden", "ints", [32], "hidden layer sizes", "model"),
    Option("readout", "str", "li", "readout: leaky integrator or linear", "model", choices=("li", "linear")),
    Option("shared_readout", "bool", False, "one value of each readout parameter for all readout neurons (one "
           "τ_out): HYPR's readout memory then carries one trace for the top hidden layer, not one per class "
           "(docs/hypr.md §3a)", "model"),
    Option("weight_scale", "float", 10.0, "initial weights ~ U(±scale/√fan_in) in the hidden layers", "model"),
    Option("param_init", "strs", [], "draw a hidden neuron parameter from another distribution than its spec's, "
           "in the parameter's raw (trained) space, e.g. 'b_offset=uniform(-5.3, -3.0)' "
           "(uniform(lo, hi), normal(mean, std) or constant(v); quote it in a shell)", "model",
           metavar="NAME=DIST(ARGS)"),
    Option("param_init_seed", "int", None, "draw the --param-init values after building the network, from a "
           "generator of their own seeded with this (without it they are drawn from the network's generator "
           "while it is built, which gives other, equally distributed values)", "model"),
    Option("method", "str", "hypr", "learning rule", "learning", choices=METHODS),
    Option("chunk", "int", 64, "HYPR chunk length λ", "learning"),
    Option("backend", "str", "auto", "HYPR backend: auto (triton on CUDA, cpu where a C compiler is found, else "
           "torch), torch, triton (CUDA, or the slow interpreter on a CPU) or cpu (compiled C kernels); the run's "
           "config.toml records the one auto picked; checked by HYPR's own rules (runtime/hypr.py)", "learning"),
    Option("drop_spike_paths", "bool", False, "HYPR without the neuron-local spike paths (as the authors' "
           "release)", "learning"),
    Option("readout_memory", "bool", True, "keep the readout's own memory in the hidden layers' learning signal "
           "(docs/hypr.md §3a; B·n·m·n_out more floats per hidden layer under an LI readout); "
           "--no-readout-memory: the paper's same-step signal (§3)", "learning"),
    Option("detach_recurrent", "bool", False, "BPTT without the gradient paths through W_rec's input o^{t-1} (a "
           "diagnostic: with one hidden layer and a linear readout it is the gradient HYPR computes, docs/hypr.md "
           "§8)", "learning"),
    Option("stream", "bool", False, "streaming mode: the cue trials as one endless input per batch element, an "
           "optimizer step per chunk, state and traces carried throughout (HYPR only)", "learning"),
    Option("epochs", "int", 8, "epochs", "learning"),
    Option("batch_size", "int", 32, "batch size", "learning"),
    Option("optimizer", "str", "adam", "optimizer", "learning", choices=("adam", "sgd")),
    Option("lr", "float", 0.01, "learning rate", "learning"),
    Option("lr_schedule", "str", "constant", "learning rate: constant; linear, the decay lr·(1 − epoch/epochs) "
           "after each epoch as in the BRF paper; or linear_step, lr·(1 − step/steps) after each optimizer step "
           "(steps = epochs × batches per epoch)", "learning", choices=("constant", "linear", "linear_step")),
    Option("seed", "int", 0, "seed of the weights (seed) and of the training data (seed + 1, or --data-seed)",
           "learning"),
    Option("data_seed", "int", None, "seed of the training data's generator (batch order, cue draws) instead of "
           "--seed + 1", "learning"),
    Option("eval_batch_size", "int", None, "batch size of the test and validation evaluations (default: "
           "--batch-size; the results depend on it only by rounding)", "learning"),
    Option("initial_eval", "bool", False, "also evaluate before the first step (an \"initial\" event in "
           "metrics.jsonl)", "learning"),
    Option("check_finite", "bool", True, "the finiteness guard: states, outputs, loss and gradients checked once "
           "per chunk (sequence for BPTT/e-prop), parameters after each step; the first NaN/inf stops the run with "
           "where it appeared (layer, neuron, state, step), exit code 3, the last good checkpoint kept "
           "(docs/reliability.md). --no-check-finite: off, for benchmarks", "learning"),
    Option("stop_on_nonfinite", "bool", False, "with --no-check-finite: end the run after an epoch whose training "
           "loss was not finite somewhere (NaN or ±inf): that epoch is evaluated and saved, and the summary says "
           "why the run ended", "learning"),
    Option("device", "str", "cpu", "torch device", "learning"),
    Option("threads", "int", 1, "torch intra-op threads on a CPU; 0: torch's default. One is the default because "
           "these networks' ops are too small to gain from more, and on a busy machine more threads stall each "
           "other (one epoch of the default run: 0.5 s with 1 thread, 34 s with 2 while another process runs)",
           "learning"),
    Option("checkpoint_every", "int", 0, "also save a checkpoint every N optimizer steps (0: only at the end of each "
           "epoch and on SIGINT/SIGTERM)", "run directory", metavar="N"),
    Option("config", "str", None, "read options from this TOML file (command-line options override it)",
           "run directory", control=True, metavar="FILE"),
    Option("out", "str", None, "run directory: config.toml, metrics.jsonl, checkpoint.pt, plots (without it "
           "nothing is written)", "run directory", control=True, metavar="DIR"),
    Option("resume", "bool", False, "continue the run in --out from its checkpoint", "run directory", control=True),
    Option("stop_after", "int", None, "stop after N optimizer steps of this invocation, saving a checkpoint",
           "run directory", control=True, metavar="N"),
    Option("time_limit", "float", None, "end training at the first step boundary after S seconds of training "
           "(a resumed run counts its earlier seconds): the epoch in progress is evaluated as the last one and the "
           "run finishes with a summary (a --resume continues it)", "run directory", control=True, metavar="S"),
    Option("json", "str", None, "print the final summary as JSON on stdout (the report goes to stderr), or write it "
           "to FILE", "run directory", control=True, metavar="FILE"),
    Option("quiet", "bool", False, "no progress bars and no per-epoch lines", "run directory", control=True),
    Option("plots", "bool", True, "PNG plots in --out at the end of the run (needs matplotlib)", "run directory",
           control=True),
    Option("tensorboard", "bool", False, "also write the metrics as TensorBoard scalars into --out (step/loss, "
           "step/lr, step/peak_memory_mb, epoch/test_accuracy, ...; needs tensorboard: pip install tensorboard)",
           "run directory", control=True),
)
BY_NAME = {o.name: o for o in OPTIONS}
NOT_COMPARED = {"data_dir", "checkpoint_every"}  # may change between a run and its resumption
NOT_IN_FILE = {"config"}
STDOUT = "-"  # --json without FILE


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.description = ("Train an RSNN on a built-in task with HYPR, BPTT or e-prop. Default: BRF + HYPR (λ = 64) "
                      "on the delayed cue task (delay 100). Every option can also be set in a --config TOML file "
                      "(same names, dashes or underscores). The other tasks start from a preset of these options "
                      "(hyprgen/train/presets.py), which the options given override. See docs/training.md.")
    groups = {}
    for o in OPTIONS:
        group = groups.get(o.group) or groups.setdefault(o.group, ap.add_argument_group(o.group))
        flag = "--" + o.name.replace("_", "-")
        notes = ([] if o.default in (None, []) else [f"default: {show(o.default)}"]) + _preset_notes(o.name)
        shown = f" ({'; '.join(notes)})" if notes else ""
        where = f"[{', '.join(o.tasks)}] " if o.tasks else ""
        kwargs = {"dest": o.name, "default": None, "help": where + o.help + shown}
        if o.kind == "bool":
            # --no-X where a file or the default can say X: run options and controls that default to on
            kwargs["action"] = argparse.BooleanOptionalAction if o.default or not o.control else "store_true"
        else:
            kwargs["type"] = {"int": int, "float": float, "str": str, "ints": int, "strs": str}[o.kind]
            kwargs["metavar"] = o.metavar
            if o.choices:
                kwargs["choices"] = o.choices
            if o.kind in ("ints", "strs"):
                kwargs["nargs"] = "+"
            if o.name == "json":
                kwargs.update(nargs="?", const=STDOUT)
        group.add_argument(flag, **kwargs)


def _preset_notes(name: str) -> list[str]:
    """['presets: ecg 1.0, digits 30.0'] for an option that some task presets set, else []."""
    values = [f"{task} {show(preset[name])}" for task, preset in PRESETS.items() if name in preset]
    return [f"presets: {', '.join(values)}"] if values else []


def show(value) -> str:
    """A value as the command line spells it."""
    if isinstance(value, list):
        return " ".join(map(str, value)) or "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    return "(unset)" if value is None else str(value)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# -- reading a TOML file -------------------------------------------------------------------------

def load_file(path: str | Path) -> dict:
    """Options from a TOML file: {name: value}, names normalized to underscores, values checked."""
    path = Path(path)
    if tomllib is None:
        raise HyprgenError(f"--config {path}: reading TOML needs Python ≥ 3.11 or `pip install tomli`")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise HyprgenError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise HyprgenError(f"{path}: not valid TOML: {e}") from None
    values = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in BY_NAME or name in NOT_IN_FILE:
            close = difflib.get_close_matches(name, [n for n in BY_NAME if n not in NOT_IN_FILE], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise HyprgenError(f"{path}: unknown option '{key}'{hint}; options are the long command-line options "
                               "without the dashes")
        values[name] = _check_type(BY_NAME[name], value, str(path))
    return values


def _check_type(o: Option, value, where: str):
    """The value converted to the option's kind ([int] for "ints"), or a HyprgenError naming `where`."""
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "str": lambda v: isinstance(v, str),
          "bool": lambda v: isinstance(v, bool)}
    if o.kind == "ints":
        items = value if isinstance(value, list) else [value]
        if not items or not all(ok["int"](v) for v in items):
            raise HyprgenError(f"{where}: option '{o.name}' must be an integer or a list of integers, got {value!r}")
        return list(items)
    if o.kind == "strs":
        items = value if isinstance(value, list) else [value]
        if not all(ok["str"](v) for v in items):
            raise HyprgenError(f"{where}: option '{o.name}' must be a string or a list of strings, got {value!r}")
        return list(items)
    if not ok[o.kind](value):
        kind = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}[o.kind]
        raise HyprgenError(f"{where}: option '{o.name}' must be {kind}, got {value!r}")
    if o.choices and value not in o.choices:
        raise HyprgenError(f"{where}: option '{o.name}' must be one of {', '.join(o.choices)}, got {value!r}")
    return float(value) if o.kind == "float" else value


# -- resolution -----------------------------------------------------------------------------------

COMMAND_LINE, FROM_CHECKPOINT, DEFAULT = "given on the command line", "from the checkpoint", "the default"
PRESET = "the task's preset"


def controls(args: argparse.Namespace) -> dict:
    """The invocation controls: command line over --config file over defaults."""
    file = load_file(args.config) if args.config else {}
    values = {o.name: _pick(o, args, file, {})[0] for o in OPTIONS if o.control}
    if values["stop_after"] is not None and values["stop_after"] < 1:
        raise HyprgenError(f"--stop-after {values['stop_after']}: must be at least 1 step")
    if values["time_limit"] is not None and not values["time_limit"] > 0:
        raise HyprgenError(f"--time-limit {values['time_limit']}: must be a positive number of seconds")
    if values["tensorboard"] and not values["out"]:
        raise HyprgenError("--tensorboard needs --out DIR, the run directory its event files go into")
    return values


def resolve(args: argparse.Namespace, base: dict | None = None) -> dict:
    """The run's config {name: value}: defaults < base (a checkpoint's config) < --config < command line.
    Holds every run option that has a value (None means "the default behaviour", e.g. --data-seed:
    such options are left out, as config.toml leaves them out), the task options of the chosen task
    only; checked, or a HyprgenError that names the option and where its value came from."""
    file = load_file(args.config) if args.config else {}
    base = base or {}
    task = _pick(BY_NAME["task"], args, file, base)[0]
    # A checkpoint's config holds every run option that had a value, so it replaces the preset whole:
    # an option it lacks is newer than the checkpoint and had its default then (as `differences` reads it).
    under = base or task_preset(task)
    sources = {}
    config = {}
    for o in OPTIONS:
        if o.control:
            continue
        config[o.name], sources[o.name] = _pick(o, args, file, under, FROM_CHECKPOINT if base else PRESET)
    for o in OPTIONS:
        if o.tasks and task not in o.tasks:
            if sources[o.name] in (COMMAND_LINE, f"set in {args.config}"):
                raise HyprgenError(f"{flag(o.name)} ({sources[o.name]}) applies to task "
                                   f"{' and '.join(o.tasks)}, not {task}")
            del config[o.name]
    if task == "cue":
        _cue_length(config, sources)
    _check_values(config, sources)
    return {name: value for name, value in config.items() if value is not None}


def _pick(o: Option, args, file: dict, under: dict, source: str = FROM_CHECKPOINT) -> tuple[object, str]:
    """(value, where it came from) by the precedence in the module docstring; `under` is the layer
    between the defaults and the file (a checkpoint's config or a task's preset), `source` its name."""
    if getattr(args, o.name, None) is not None:
        return getattr(args, o.name), COMMAND_LINE
    if o.name in file:
        return file[o.name], f"set in {args.config}"
    if o.name in under:
        return under[o.name], source
    return o.default, DEFAULT


def task_preset(task: str) -> dict:
    """The task's preset (presets.py), each value checked as a config file's are. A preset holds run
    options of its own task only; none whose default is None (a checkpoint's config leaves unset
    options out, so on --resume the preset's value would replace "unset"); none that only some
    methods take but the chunk (the preset would make `--method X` an error for the others)."""
    values = dict(PRESETS.get(task, {}))
    where = f"hyprgen/train/presets.py, task {task}"
    for name, value in values.items():
        o = BY_NAME.get(name)
        if (o is None or o.control or name == "task" or o.default is None or (o.tasks and task not in o.tasks)
                or (name in OWNER and name != "chunk")):
            raise HyprgenError(f"{where}: '{name}' cannot be preset (run options of the task only, not one "
                               "that defaults to unset, nor one of some methods only)")
        values[name] = _check_type(o, value, where)
    return values


def _cue_length(config: dict, sources: dict) -> None:
    """--seq-len T stands for --delay T − cue − recall; the config keeps the delay only."""
    seq_len = config.pop("seq_len")
    if seq_len is None:
        return
    from ..data.cue import CueTask  # torch, but only here: `hyprgen train` loads it anyway

    frame = CueTask.cue + CueTask.recall
    if sources["delay"] not in (DEFAULT, FROM_CHECKPOINT, PRESET):
        raise HyprgenError(f"give --seq-len or --delay, not both (--seq-len {seq_len}, --delay {config['delay']})")
    if seq_len <= frame:
        raise HyprgenError(f"--seq-len {seq_len} is too short: the cue task needs more than {frame} steps "
                           f"(cue {CueTask.cue} + recall {CueTask.recall})")
    config["delay"] = seq_len - frame


_POSITIVE = ("delay", "epoch_batches", "test_samples", "chunk", "epochs", "batch_size", "eval_batch_size")


def _check_values(config: dict, sources: dict) -> None:
    def bad(name, why):
        raise HyprgenError(f"{flag(name)} {show(config[name])} ({sources[name]}): {why}")

    for name in _POSITIVE:
        if config.get(name) is not None and config[name] < 1:
            bad(name, "must be at least 1")
    if any(h < 1 for h in config["hidden"]):
        bad("hidden", "layer sizes must be at least 1")
    if not config["lr"] > 0:
        bad("lr", "must be positive")
    if config["checkpoint_every"] < 0:
        bad("checkpoint_every", "must be 0 (epoch ends only) or a number of steps")
    if "val_fraction" in config and not 0 <= config["val_fraction"] < 1:
        bad("val_fraction", "must be in [0, 1)")
    method = config["method"]
    if config["stream"] and method != "hypr":
        bad("stream", f"needs --method hypr, not {method}")
    for name, owners in OWNER.items():
        # every run carries a chunk (so that runs of several methods compare), the other options of a
        # learner must stay at their defaults for the other methods
        if name in config and name != "chunk" and method not in owners and config[name] != BY_NAME[name].default:
            bad(name, f"needs --method {' or '.join(owners)}, not {method}")
    if method == "hypr":
        _check_hypr(config, sources)
    if config["stream"] and config["task"] != "cue":
        bad("stream", f"streams the endless cue task; task {config['task']} is a fixed dataset")
    try:
        parse_param_init(config["param_init"])
    except ValueError as e:
        bad("param_init", str(e))
    if config.get("param_init_seed") is not None and not config["param_init"]:
        bad("param_init_seed", "seeds the draws of --param-init, and none is given")


def _check_hypr(config: dict, sources: dict) -> None:
    """HYPR's backend rules, as HYPR.__init__ applies them (runtime/hypr.py states them once)."""
    from ..runtime.hypr import option_problem  # torch: only here, where a run's options are checked

    problem = option_problem(backend=config["backend"], drop_spike_paths=config["drop_spike_paths"])
    if problem is not None:
        given = ", ".join(f"{flag(name)} {show(config[name])} ({sources[name]})"
                          for name in ("backend", "drop_spike_paths"))
        raise HyprgenError(f"{given}: {problem}")


_INIT = re.compile(r"^\s*(\w+)\s*=\s*(uniform|normal|constant)\s*\(([^()]*)\)\s*$")
_INIT_ARITY = {"uniform": 2, "normal": 2, "constant": 1}


def parse_param_init(items: list[str] | None) -> dict:
    """['NAME=DIST(ARGS)', ...] → {NAME: hyprgen.spec Init}; a ValueError that quotes the bad item."""
    from ..errors import SpecError
    from ..spec import constant, normal, uniform

    out = {}
    for item in items or ():
        m = _INIT.match(item)
        if not m:
            raise ValueError(f"{item!r} is not NAME=uniform(lo, hi), NAME=normal(mean, std) or NAME=constant(v)")
        name, dist, args = m.groups()
        try:
            values = [float(a) for a in args.split(",")]
        except ValueError:
            raise ValueError(f"{item!r}: the arguments of {dist} must be numbers") from None
        if len(values) != _INIT_ARITY[dist]:
            raise ValueError(f"{item!r}: {dist} takes {_INIT_ARITY[dist]} argument(s), got {len(values)}")
        if name in out:
            raise ValueError(f"{item!r}: parameter {name!r} given twice")
        try:
            out[name] = {"uniform": uniform, "normal": normal, "constant": constant}[dist](*values)
        except SpecError as e:
            raise ValueError(f"{item!r}: {e.problem}") from None
    return out


def differences(saved: dict, current: dict) -> list[str]:
    """'name: saved → current' for every compared run option that differs."""
    names = [o.name for o in OPTIONS if not o.control and o.name not in NOT_COMPARED]
    # an option missing from an older checkpoint's config had its default then
    old = {name: saved.get(name, BY_NAME[name].default if name in current else None) for name in names}
    return [f"{name}: {show(old[name])} → {show(current.get(name))}" for name in names
            if old[name] != current.get(name)]


# -- writing config.toml ----------------------------------------------------------------------------

def to_toml(config: dict, header: str) -> str:
    """The config as TOML (None values, i.e. "use the default", left out); `header` as comments."""
    lines = [f"# {line}" for line in header.splitlines()]
    for name, value in config.items():
        if value is not None:
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
