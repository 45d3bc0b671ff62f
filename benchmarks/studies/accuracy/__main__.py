"""python -m benchmarks.studies.accuracy SUBCOMMAND: every process of the study in one CPU thread
(the runs' --threads 1 sets the intra-op threads again; the inter-op pool can only be set first)."""
import sys

import torch

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # already set, or work has started
    pass

from .cli import main  # noqa: E402

sys.exit(main())
