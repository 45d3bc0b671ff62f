"""python -m benchmarks.device_check [--dry-run] [--out DIR] [--budget-s S]: the device check (run.py)."""
import sys

from .run import main

sys.exit(main())
