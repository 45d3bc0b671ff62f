"""`hyprgen train`: train an RSNN on a built-in task with HYPR, BPTT or per-step e-prop.

Default: a BRF network trained with HYPR (λ = 64) on the delayed cue task (delay 100 steps); about a
minute on a laptop CPU. A run: options resolved (options.py) → task, network, learner, optimizer, LR
schedule (assemble.py) → epochs of optimizer steps, each epoch ending with a test evaluation
(evaluation.py) → a summary table (report.py), plots (plots.py).

A run ends after its last epoch, or early: --time-limit (at a step boundary; the epoch in progress is
evaluated as the last) or --stop-on-nonfinite (after an epoch with a NaN/inf loss); the summary's
"ended" says which. --stop-after and SIGINT/SIGTERM instead stop it for a later --resume. The
finiteness guard (runtime/finite.py) stops it at the first NaN/inf with exit code 3: nothing is saved
after the failing step, so the checkpoint in --out is the last good state.

With --out DIR the run directory holds config.toml, metrics.jsonl (metrics.py), checkpoint.pt
(checkpoint.py: after every epoch, every --checkpoint-every steps, and on SIGINT/SIGTERM) and the
plots. --resume continues from the checkpoint and ends bit-identical to an uninterrupted run: every
state that the remaining steps read is restored, and the data generator is set to its state at the
current epoch's start and replays the batches already done (docs/training.md).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..data import iterate
from ..errors import HyprgenError, NonFiniteError, check_folder
from ..runtime import HYPR
from . import assemble, checkpoint, distributed, plots
from .checkpoint import CheckpointError
from .evaluation import evaluate
from .metrics import TENSORBOARD_MISSING, MetricsLog, carried_bytes, encode, peak_memory_mb, rss_mb, tensorboard_available
from .options import STDOUT, controls, resolve, to_toml
from .report import count, epoch_line, header, silent_layer_hint, silent_layers, summary_table

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}           # 128 + signal number, as shells report
EXIT_NONFINITE = 3                                                # the finiteness guard stopped the run


@dataclass
class Progress:
    """Where the run stands (saved in checkpoints; see checkpoint.py)."""

    epoch: int = 0                          # epochs done
    batch: int = 0                          # batches done in the current epoch
    step: int = 0                           # optimizer steps (batches) done in total
    epoch_data: torch.Tensor | None = None  # the data generator's state at the start of the current epoch
    elapsed: float = 0.0                    # training seconds
    cpu: float = 0.0                        # CPU seconds of the process while training (all threads)
    batches: list = field(default_factory=list)  # [loss, accuracy, batch size] of this epoch's batches


class StopSignals:
    """SIGINT and SIGTERM set `received`; the loop saves and exits at the next step boundary, so a
    checkpoint never holds half a step. A second signal of the same kind acts as usual (Ctrl-C twice:
    KeyboardInterrupt). Handlers are only installable in the main thread; elsewhere this is inert."""

    def __init__(self):
        self.received: signal.Signals | None = None
        self._previous = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in EXIT_CODES}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum)
        signal.signal(signum, self._previous[signum])

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def main(args) -> int:
    trainer = prepare(args)
    try:
        code = trainer.run()
    except BaseException:
        trainer.ranks.close(together=False)
        raise
    trainer.ranks.close()
    return code


def prepare(args) -> Trainer:
    """The Trainer of `hyprgen train ARGS` (an argparse namespace of options.add_arguments), begun:
    a fresh run, or with --resume the state of --out's checkpoint."""
    ctl = controls(args)
    run_dir = Path(ctl["out"]) if ctl["out"] else None
    if run_dir is not None:
        check_folder(run_dir)
    path = run_dir / checkpoint.FILENAME if run_dir else None
    if (ctl["resume"] or ctl["stop_after"]) and run_dir is None:
        raise HyprgenError(f"{'--resume' if ctl['resume'] else '--stop-after'} needs --out DIR, the run directory "
                           "that holds the checkpoint")
    saved = None
    if ctl["resume"]:
        saved = checkpoint.load(path)
        config = resolve(args, base=saved["config"])
        checkpoint.check_config(path, saved["config"], config)
    else:
        config = resolve(args)
        if path is not None and path.exists():
            raise HyprgenError(f"{run_dir} already holds a run ({path.name}): add --resume to continue it, or "
                               "choose another --out")
    trainer = Trainer(config, ctl, run_dir, report=sys.stderr if ctl["json"] == STDOUT else sys.stdout)
    trainer.begin(saved)
    return trainer


class Trainer:
    """One run: a resolved config (options.resolve) and the invocation's controls (options.controls).
    begin(saved) starts it fresh or from a checkpoint, run() trains it to its end and returns the exit
    code; log.events and summary() hold what it measured."""

    def __init__(self, config: dict, ctl: dict, run_dir: Path | None, report):
        c = config
        self.device = _device(c["device"])
        self.ranks = distributed.from_environment(self.device)   # under torchrun: this process's rank
        if not self.ranks.main:   # rank 0 alone reports and writes the run directory
            report, run_dir = open(os.devnull, "w"), None
        self.config, self.ctl, self.run_dir, self.report = config, ctl, run_dir, report
        if c["threads"] < 0:
            raise HyprgenError(f"--threads must be 0 (torch's default) or positive, got {c['threads']}")
        if c["threads"]:
            torch.set_num_threads(c["threads"])
        self.task = assemble.build_task(c)
        torch.manual_seed(c["seed"])
        self.net = assemble.build_network(c, self.task, self.device)
        self.learner = assemble.build_learner(c, self.net, self.task, process_group=self.ranks.group)
        if c["method"] == "hypr":   # the backend "auto" resolved to: printed, and recorded in config.toml
            c["backend"] = self.learner.backend
        self.optimizer = assemble.build_optimizer(c, self.net)
        self.batches_per_epoch = assemble.epoch_length(self.task, c["batch_size"])
        self.scheduler = assemble.build_scheduler(c, self.optimizer, self.batches_per_epoch)
        self.data = assemble.data_generator(c)
        self.progress = Progress(epoch_data=self.data.get_state())
        self.log: MetricsLog | None = None
        self.ended: str | None = None       # why the run ended before its last epoch, if it did
        self._carried: dict[int, int] = {}  # sequence-mode HYPR: batch size → carried bytes
        self._hinted: set[int] = set()      # hidden layers whose silence this invocation has reported
        self._start = self._cpu_start = 0.0

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / checkpoint.FILENAME if self.run_dir else None

    @property
    def eval_batch_size(self) -> int:
        return self.config.get("eval_batch_size") or self.config["batch_size"]

    # -- start or resume -------------------------------------------------------------------------

    def begin(self, saved: dict | None) -> None:
        """A fresh run (saved None) or the state of a checkpoint; then config.toml and metrics.jsonl
        (with --initial-eval, a fresh run's first event evaluates the initial network)."""
        print(header(self.config, self.task, self.batches_per_epoch), file=self.report)
        if saved is not None:
            self._restore(saved)
        metrics = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.toml").write_text(to_toml(self.config, "hyprgen train: the resolved options of "
                                                              "this run (use it with --config)"))
            metrics = self.run_dir / "metrics.jsonl"
        board = bool(self.ctl.get("tensorboard")) and metrics is not None
        if board and not tensorboard_available():
            print(TENSORBOARD_MISSING, file=self.report)
            board = False
        self.log = MetricsLog(metrics, saved and saved["metrics"], tensorboard=board)
        if saved is None and self.config.get("initial_eval"):
            self.log.add({"event": "initial", "epoch": 0, "step": 0, **self._evaluations(),
                          "lr": self.optimizer.param_groups[0]["lr"], "elapsed": 0.0, "cpu_s": 0.0,
                          "peak_memory_mb": peak_memory_mb(self.device), "rss_mb": rss_mb()})

    def _restore(self, saved: dict) -> None:
        path = self.checkpoint_path
        try:
            self.net.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(saved["scheduler"])
            self.progress = Progress(**saved["progress"])
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{path}: the saved model or optimizer does not fit this run: "
                                  f"{str(e).strip().splitlines()[0]}") from None
        checkpoint.restore_rng(path, saved["rng"])
        if self.config["stream"]:
            stream = saved["stream"]
            if "ranks" in stream or self.ranks.world > 1:   # saved under torchrun: one state per rank
                ranks = stream.get("ranks", [stream])
                if len(ranks) != self.ranks.world:
                    raise CheckpointError(f"{path}: the stream was saved by {len(ranks)} rank(s); resume it with "
                                          f"--nproc_per_node={len(ranks)}, not {self.ranks.world}")
                stream = ranks[self.ranks.rank]
            self.learner.load_stream_state(checkpoint.to_device(stream, self.device))
        p = self.progress
        print(f"resuming {path} after {count(p.step, 'step')} (epoch {p.epoch + 1}: {p.batch} of "
              f"{count(self.batches_per_epoch, 'batch', 'batches')} done)" if p.epoch < self.config["epochs"] else
              f"{path}: the run is complete", file=self.report)

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            return self._run()
        except NonFiniteError as e:
            return self._nonfinite(e)
        finally:
            self.log.close()

    def _run(self) -> int:
        c, p = self.config, self.progress
        self._start = time.perf_counter() - p.elapsed
        self._cpu_start = time.process_time() - p.cpu
        steps_here = 0
        quiet = self.ctl["quiet"] or not sys.stderr.isatty()
        with StopSignals() as stop:
            while p.epoch < c["epochs"]:
                self.data.set_state(p.epoch_data)  # resumed mid-epoch: replay the batches done
                batches = itertools.islice(self.task.train_batches(c["batch_size"], self.data), p.batch, None)
                with tqdm(total=self.batches_per_epoch, initial=p.batch, desc=f"epoch {p.epoch + 1}/{c['epochs']}",
                          leave=False, file=sys.stderr, disable=quiet) as bar:
                    for x, y in batches:
                        self._step(x, y)
                        steps_here += 1
                        bar.update()
                        bar.set_postfix(loss=f"{p.batches[-1][0]:.3f}")
                        # every rank leaves together (a rank alone in the next collective would wait)
                        if self.ranks.any(bool(stop.received) or steps_here == self.ctl["stop_after"]
                                          or self._out_of_time()):
                            break
                if self.ranks.any(bool(stop.received)) or steps_here == self.ctl["stop_after"]:
                    return self._stop(stop.received)
                self._end_epoch()
                if self.ranks.any(bool(stop.received)):
                    return self._stop(stop.received)
                if self.ended:
                    print(f"hyprgen: the run ends early: {self.ended}", file=self.report, flush=True)
                    break
        return self._finish()

    def _out_of_time(self) -> bool:
        """--time-limit passed (checked after each step): the epoch in progress ends, and the run after it."""
        limit = self.ctl.get("time_limit")
        if limit is None or time.perf_counter() - self._start < limit:
            return False
        p = self.progress
        self.ended = f"time limit of {limit:g} s reached after {count(p.step, 'step')} (epoch {p.epoch + 1}, batch {p.batch})"
        return True

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One optimizer step on batch x [b, T, n_in], y [b, T] (streaming: an update per chunk)."""
        p = self.progress
        rows = x.shape[0]
        x, y = self.ranks.shard(x.to(self.device), y.to(self.device))   # under torchrun: this rank's rows
        lr = self.optimizer.param_groups[0]["lr"]
        learn = self.learner.stream if self.config["stream"] else self.learner.step
        result = learn(x, y, self.optimizer)      # loss: the whole batch's (summed over ranks)
        loss = result.loss.item()
        accuracy = self.ranks.mean(self.task.accuracy(result.outputs, y), x.shape[0])
        p.batch, p.step = p.batch + 1, p.step + 1
        p.batches.append([loss, accuracy, rows])   # the whole batch (all ranks)
        event = {"event": "step", "epoch": p.epoch + 1, "batch": p.batch, "step": p.step, "loss": loss,
                 "accuracy": accuracy, "lr": lr, **self._resources()}
        if isinstance(self.learner, HYPR):
            event["learner_bytes"] = self._learner_bytes(x.shape[0])   # this process's (its rows)
        self.log.add(event)
        if self.config["lr_schedule"] == "linear_step":
            self.scheduler.step()
        every = self.config["checkpoint_every"]
        if every and p.step % every == 0:
            self._save()

    def _end_epoch(self) -> None:
        """Test (and validation) evaluation, the epoch's event, the LR schedule step, a checkpoint."""
        c, p = self.config, self.progress
        sizes = sum(b[2] for b in p.batches)
        event = {"event": "epoch", "epoch": p.epoch + 1, "step": p.step,
                 "train_loss": sum(b[0] * b[2] for b in p.batches) / sizes,
                 "train_accuracy": sum(b[1] * b[2] for b in p.batches) / sizes,
                 **(self._evaluations() if self.ranks.main else {}), "lr": self.optimizer.param_groups[0]["lr"],
                 **self._resources()}
        if isinstance(self.learner, HYPR):  # a full batch's figure: an epoch's last batch may be partial
            event["learner_bytes"] = max(e["learner_bytes"] for e in self.log.of("step") if e["epoch"] == p.epoch + 1)
        self.log.add(event)
        if c["lr_schedule"] == "linear":
            self.scheduler.step()
        if c.get("stop_on_nonfinite") and not all(math.isfinite(b[0]) for b in p.batches):
            self.ended = f"a training loss in epoch {p.epoch + 1} was not finite (--stop-on-nonfinite)"
        # the epoch's batches are all drawn: the generator stands at the next epoch's start
        p.epoch, p.batch, p.batches, p.epoch_data = p.epoch + 1, 0, [], self.data.get_state()
        if not self.ctl["quiet"] and self.ranks.main:
            print(epoch_line(event, self.config, self.task), file=self.report, flush=True)
        self._hint_silence(event)
        self._save()

    def _hint_silence(self, event: dict) -> None:
        """A line for each hidden layer the first time it counts as silent (report.silent_layers; even
        with --quiet: a silent layer is why a run stays at chance, and nothing else says so). The
        epochs come from the log, so a resumed run counts the ones before its checkpoint too."""
        final = self.progress.epoch >= self.config["epochs"] or self.ended is not None
        for layer in silent_layers(self.log.of("epoch"), final):
            if layer not in self._hinted:
                self._hinted.add(layer)
                print(silent_layer_hint(layer, event, self.config), file=self.report, flush=True)

    def _evaluations(self) -> dict:
        """test_loss, test_accuracy, test_spike_rate, and val_* where a validation part is held out."""
        batch = self.eval_batch_size
        fields = evaluate(self.net, self.task, self.task.test_batches(batch), self.device).event_fields("test")
        val = getattr(self.task, "val", None)
        if val is not None:
            fields.update(evaluate(self.net, self.task, iterate(val, batch, None, shuffle=False),
                                   self.device).event_fields("val"))
        return fields

    # -- measurements and saving ----------------------------------------------------------------

    def _resources(self) -> dict:
        p = self.progress
        p.elapsed, p.cpu = time.perf_counter() - self._start, time.process_time() - self._cpu_start
        return {"elapsed": p.elapsed, "cpu_s": p.cpu, "peak_memory_mb": peak_memory_mb(self.device), "rss_mb": rss_mb()}

    def _learner_bytes(self, batch: int) -> int:
        if self.config["stream"]:
            return carried_bytes(self.learner, batch)
        if batch not in self._carried:
            self._carried[batch] = carried_bytes(self.learner, batch)
        return self._carried[batch]

    def _save(self) -> None:
        # a stream's carried state is per rank: gathered (every rank calls this at the same steps)
        stream = self.learner.stream_state() if self.config["stream"] else {}
        if self.ranks.world > 1 and self.config["stream"]:
            stream = {"ranks": self.ranks.gather(checkpoint.to_device(stream, torch.device("cpu")))}
        if self.run_dir is None:
            return
        p = self.progress
        p.elapsed, p.cpu = time.perf_counter() - self._start, time.process_time() - self._cpu_start
        checkpoint.save(self.checkpoint_path, {
            "config": self.config, "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng": checkpoint.rng_states(), "progress": asdict(p),
            "stream": stream,
            "metrics": self.log.events})

    # -- the end -----------------------------------------------------------------------------------

    def _stop(self, sig: signal.Signals | None) -> int:
        """Save and exit early: on a signal (exit code 128 + signal) or after --stop-after steps (0)."""
        self._save()
        p = self.progress
        why = f"stopped by {sig.name}" if sig else f"stopped after {count(self.ctl['stop_after'], 'step')} (--stop-after)"
        where = (f"after epoch {p.epoch}" if p.batch == 0 else
                 f"in epoch {p.epoch + 1} after batch {p.batch} of {self.batches_per_epoch}")
        saved = (f"checkpoint {self.checkpoint_path}; continue with: hyprgen train --out {self.run_dir} --resume"
                 if self.run_dir else "nothing saved (no --out)")
        if self.ranks.main:
            print(f"hyprgen: {why} {where} (step {p.step}); {saved}", file=sys.stderr if sig else self.report,
                  flush=True)
        return EXIT_CODES[sig] if sig else 0

    def _nonfinite(self, error: NonFiniteError) -> int:
        """The guard stopped a step: say where, save nothing (the checkpoint is the last good state)."""
        p = self.progress
        path = self.checkpoint_path
        if path is None:
            kept = "nothing saved (no --out)"
        elif path.exists():
            kept = f"the last good checkpoint, {path}, is kept as it was"
        else:
            kept = "no checkpoint had been saved yet"
        print(f"hyprgen: training stopped in epoch {p.epoch + 1}, step {p.step + 1}: {error}\n"
              f"hyprgen: {kept}", file=sys.stderr, flush=True)
        return EXIT_NONFINITE

    def _finish(self) -> int:
        if not self.ranks.main:
            return 0
        summary = self.summary()
        print(summary_table(summary), file=self.report)
        text = json.dumps(encode(summary), indent=1, allow_nan=False)   # strict JSON, as metrics.jsonl
        if self.run_dir is not None:
            (self.run_dir / "summary.json").write_text(text + "\n")
            if self.ctl["plots"]:
                self._plots()
        if self.ctl["json"] == STDOUT:
            print(text)
        elif self.ctl["json"]:
            Path(self.ctl["json"]).write_text(text + "\n")
        return 0

    def summary(self) -> dict:
        c, p = self.config, self.progress
        last = self.log.of("epoch")[-1]
        results = {k: v for k, v in last.items() if k.endswith(("_loss", "_accuracy"))}
        return {"task": c["task"], "method": c["method"], "neuron": c["neuron"], "hidden": c["hidden"],
                "chunk": c["chunk"], "stream": c["stream"], "seq_len": self.task.seq_len, "epochs": p.epoch,
                "steps": p.step, **results, "seconds": p.elapsed, "peak_memory_mb": peak_memory_mb(self.device),
                "memory_kind": "GPU allocated" if self.device.type == "cuda" else "process RSS",
                "learner_bytes": last.get("learner_bytes"), "ended": self.ended,
                "out": None if self.run_dir is None else str(self.run_dir)}

    def _plots(self) -> None:
        if not plots.available():
            print("matplotlib is not installed: no plots (pip install matplotlib)", file=self.report)
            return
        x, y = next(iter(self.task.test_batches(self.config["batch_size"])))
        with torch.no_grad():
            out, _, layers = self.net(x[:1].to(self.device), record=True)
        made = [plots.curves(self.log.events, self.run_dir / "curves.png"),
                plots.raster(x[0], layers[0][0].cpu(), out[0].cpu(), y[0], self.run_dir / "raster.png")]
        if isinstance(self.learner, HYPR):
            made.append(plots.memory(self.log.events, self.run_dir / "memory.png"))
        print(f"plots: {', '.join(str(m) for m in made)}", file=self.report)


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise HyprgenError(f"--device {name}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HyprgenError(f"--device {name}: CUDA is not available on this machine")
    return device
