"""Built-in tasks."""
from .cue import CueTask

__all__ = ["CueTask"]
