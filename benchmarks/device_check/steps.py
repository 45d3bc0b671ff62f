"""One subprocess per step of the device check, and what its output says.

`run_command` starts the command in its own process group and, at its limit, kills that group (a
pytest with xdist workers, a compiler's children), so a step never outlives the budget. Its output
is kept whole in a log file under --out and its tail in the report.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .checkout import ROOT

TAIL_CHARS = 2000


@dataclass
class Outcome:
    returncode: int | None   # None: killed at its limit
    seconds: float
    output: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def tail(self, chars: int = TAIL_CHARS) -> str:
        return self.output[-chars:]


def run_command(argv: list[str], limit_s: float, env: dict, log: Path | None = None) -> Outcome:
    """Run argv from the checkout's root for at most limit_s seconds (stdout and stderr together)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=max(limit_s, 0.1))
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # the group this call started (its own session)
        output, _ = proc.communicate()
        code = None
    outcome = Outcome(code, time.monotonic() - t0, output or "")
    if log is not None:
        end = "killed at its time limit" if outcome.timed_out else f"exit {code}"
        log.write_text(f"$ {' '.join(argv)}\n{outcome.output}\n[{end} after {outcome.seconds:.1f} s]\n")
    return outcome


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def hyprgen_cli(*args: str) -> list[str]:
    """The CLI from the checkout (no console script without pip)."""
    return python("-c", "import sys; from hyprgen.cli import main; sys.exit(main())", *args)


def pytest_command(selection: tuple[str, ...], junit: Path, workers: int) -> list[str]:
    parallel = ["-n", str(workers)] if workers > 1 else []
    return python("-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", f"--junitxml={junit}", *parallel,
                  *selection)


def junit_summary(path: Path) -> dict:
    """Counts and the failing tests' ids with their first message line, from pytest's --junitxml."""
    if not path.exists():
        return {}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = []
    for case in root.iter("testcase"):
        problem = case.find("failure")
        problem = problem if problem is not None else case.find("error")
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            failed.append({"test": f"{case.get('classname')}::{case.get('name')}",
                           "message": message[0][:300] if message else ""})
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "failed": failed}


def verify_summary(output: str) -> dict:
    """What `hyprgen build --verify` printed: where it ran, and how many outputs were within tolerance."""
    within = re.search(r"(\d+)/(\d+) outputs within tolerance", output)
    where = re.search(r"Triton kernels vs torch backend on (.+?);", output)
    failing = re.findall(r"^  (\S+(?: step)?)\s+(\S+)\s+\S+\s+\S+\s+FAIL", output, re.M)
    return {"ran_on": where.group(1) if where else None,
            "within": int(within.group(1)) if within else None, "outputs": int(within.group(2)) if within else None,
            "failing": [f"{stage} {name}" for stage, name in failing]}


def xdist_workers() -> int:
    """pytest-xdist workers for the GPU's tests: half the cores, at most 8 (0 without xdist)."""
    import importlib.util

    if importlib.util.find_spec("xdist") is None:
        return 0
    return min(8, max(1, (os.cpu_count() or 2) // 2))
