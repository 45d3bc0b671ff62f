"""The performance suite: wall time and peak memory of HYPR vs BPTT, per-step EProp and snnTorch
(docs/results/performance.md). `python -m benchmarks.perf` runs it (run.py has the options).

configs.py   the grid: one Config per measured process
run.py       the runner: a process per configuration, skips what would not fit or take too long
measure.py   one configuration in this process (warm-up, timed repetitions, peak RSS)
workloads.py the network, learner and data of a configuration
report.py    tables, targets and plots from the saved runs
roofline.py  FLOPs and bytes per HYPR stage against the machine's measured peaks
sysmon.py    /proc probes: RSS high-water mark, load of other processes
build_time.py  time to build every shipped neuron in a fresh process (python -m benchmarks.perf.build_time)
"""
