"""Shipped neuron specs (one model per file; `hyprgen build --all` renders them into generated/)."""
