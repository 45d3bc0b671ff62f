"""`hyprgen train`'s engine: the training loop with run directories, checkpoints, metrics and plots.

options.py    every option: CLI flags, TOML, defaults, checks (torch-free: the CLI reads it at start-up)
learners.py   the one learner factory: a method name (or a variant) and options → HYPR, BPTT, EProp
assemble.py   a run's parts from its config: task, network, learner, optimizer, LR schedule
evaluation.py loss, accuracy and spike rate of a network on a fixed set
trainer.py    the loop: epochs, evaluation, resume, signals, early ends (Trainer, prepare, main)
checkpoint.py metrics.py report.py plots.py   what a run writes (docs/training.md)

Layers inside: trainer → assemble → learners, options; checkpoint → options; options → learners.
"""
