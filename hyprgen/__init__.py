"""hyprgen: a compiler for online learning (HYPR) in recurrent spiking neural networks."""
__version__ = "0.1.0"
