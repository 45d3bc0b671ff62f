"""hyprgen: a compiler for online learning (HYPR) in recurrent spiking neural networks."""
__version__ = "0.1.0"

from .builder import build, load  # noqa: E402
from .runtime import BPTT, HYPR, RSNN, EProp  # noqa: E402

__all__ = ["BPTT", "EProp", "HYPR", "RSNN", "build", "load", "__version__"]
