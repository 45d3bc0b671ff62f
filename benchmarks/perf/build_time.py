"""Time the compiler: the work of `hyprgen build --all` (every shipped spec: load, derive, render, write)
in a fresh Python process, so imports and SymPy's caches start cold as they do for a user.

Writes go to a temporary folder, never to generated/. Prints one JSON object:

    python -m benchmarks.perf.build_time [--repeat 3]

  total_s          median over the runs of the time to build every shipped neuron (after imports)
  import_s         median time to import hyprgen.compiler.build in the fresh process
  process_s        median wall time of the whole subprocess (interpreter start, imports, builds)
  per_neuron_s     median per neuron, and the raw runs under "runs"
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

_CHILD = r"""
import json, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from hyprgen.compiler.build import generate, write_atomic
from hyprgen.paths import shipped_specs
t1 = time.perf_counter()
per = {}
with tempfile.TemporaryDirectory() as out:
    for spec in shipped_specs():
        s = time.perf_counter()
        ir, text = generate(spec)
        write_atomic(Path(out) / f"{ir.name}.py", text)
        per[spec.stem] = time.perf_counter() - s
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "total_s": t2 - t1, "per_neuron_s": per}))
"""


def one_run() -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the build subprocess failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes to run (the median is reported)")
    args = ap.parse_args(argv)
    runs = [one_run() for _ in range(max(1, args.repeat))]
    median = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    names = list(runs[0]["per_neuron_s"])
    import sympy

    import hyprgen

    report = {
        "benchmark": "build every shipped neuron spec (hyprgen build --all) in a fresh process",
        "neurons": len(names),
        "total_s": round(median("total_s"), 4),
        "import_s": round(median("import_s"), 4),
        "process_s": round(median("process_s"), 4),
        "per_neuron_s": {n: round(statistics.median(r["per_neuron_s"][n] for r in runs), 4) for n in names},
        "repeat": len(runs),
        "runs": [{k: (round(v, 4) if isinstance(v, float) else {n: round(t, 4) for n, t in v.items()})
                  for k, v in r.items()} for r in runs],
        "versions": {"hyprgen": hyprgen.__version__, "sympy": sympy.__version__, "python": platform.python_version()},
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
