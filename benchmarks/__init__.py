"""Measurements of hyprgen, not part of the package.

perf/     the performance suite (python -m benchmarks.perf; docs/results/performance.md)
studies/  studies built on hyprgen.train (python -m benchmarks.studies.accuracy; docs/results/accuracy.md)
device_check/     everything worth doing on a lent GPU, in one budgeted command (docs/device_check.md)
triton_compat.sh  the Triton tests on older Triton releases (3.6: the GPU machines'; docs/device_check.md)
"""
