"""The HYPR runtime on the generated PyTorch backend: networks and learners."""
from .bptt import BPTT
from .eprop import EProp
from .hypr import HYPR
from .learner import StepResult
from .network import RSNN, Layer, LayerState

__all__ = ["BPTT", "EProp", "HYPR", "RSNN", "Layer", "LayerState", "StepResult"]
