"""`hyprgen train`'s engine: the training loop with run directories, checkpoints, metrics and plots.

trainer.py (the loop, resume, signals), options.py (every option: CLI flags, TOML, defaults),
checkpoint.py, metrics.py, report.py (console lines), plots.py. docs/training.md.
"""
