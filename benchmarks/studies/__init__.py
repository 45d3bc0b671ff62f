"""Studies built on hyprgen.train: each run of a study is a `hyprgen train` run (the same Trainer,
evaluation and checkpoints), and a study adds only its grid of runs, its result files and its report.

accuracy/  HYPR against BPTT on ECG-QTDB and the delayed cue task (docs/results/accuracy.md):
           python -m benchmarks.studies.accuracy {ecg,cue,time,align,report}
"""
