"""python -m benchmarks.perf [options]: the suite (run.py)."""
import os
import sys

from .run import main

# the measuring subprocesses inherit it: the same hashing, and so the same set orders, in every one
os.environ.setdefault("PYTHONHASHSEED", "0")
sys.exit(main())
