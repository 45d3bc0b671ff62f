"""Measurements of hyprgen, not part of the package.

perf/     the performance suite (python -m benchmarks.perf; docs/results/performance.md)
studies/  studies built on hyprgen.train (python -m benchmarks.studies.accuracy; docs/results/accuracy.md)
"""
