"""The device check (issue 16): everything worth doing on a GPU, in one command with a time budget.

    python -m benchmarks.device_check [--out DIR] [--budget-s S]    # on a CUDA machine (docs/device_check.md)
    python -m benchmarks.device_check --dry-run --out DIR           # the same script on the CPU, tiny sizes

run.py        the steps in order of value, each within what the budget has left; the report after each
plan.py       what a GPU run and a dry run do: test selection, neurons to verify, the benchmark grid
budget.py     the clock: time left, what a step may take, what an estimate rules out
steps.py      one subprocess per step (killed with its children at its limit), pytest's and verify's summaries
bench.py      the benchmark worker: benchmarks.perf.measure per configuration, one JSON line each
roofline_rows.py  each measured HYPR stage against its bound (benchmarks.perf.roofline rates)
runtime_probe.py  one HYPR step on the device, triton vs torch, and which modules it imported
environment.py  GPU, driver, torch, triton, Python
checkout.py   running from a source checkout without pip
report.py     device_check.json and device_check.md
"""
