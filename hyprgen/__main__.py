"""`python -m hyprgen ...` is the `hyprgen` command (also what `torchrun -m hyprgen train ...` runs)."""
import sys

from .cli import main

sys.exit(main())
