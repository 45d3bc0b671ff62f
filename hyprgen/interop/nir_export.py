"""hyprgen.export_nir: an RSNN as a NIR graph (the mapping: nir_mapping.py, docs/nir.md).

Each layer becomes an Affine (W_in, bias) into its neuron node (LIF or LI; none for the linear
readout), and a recurrent layer adds a Linear (W_rec) from the neuron node back into it, a cycle:

    input → layer0.affine → layer0.lif ⇄ layer0.recurrent        (the cycle carries z^{t-1})
                               ↓
                            readout.affine → readout.li → output
"""
from __future__ import annotations

import numpy as np
import torch

from .. import __version__
from ..errors import HyprgenError
from ..runtime.network import RSNN, Layer, LinearNeuron
from .nir_mapping import DISCRETIZATION, RESET, THRESHOLD, check_dt, form_of, nir_tau, require_nir


def export_nir(net: RSNN, dt: float = 1e-3):
    """The NIR graph (nir.NIRGraph) of `net`; `dt` is the NIR time of one hyprgen step (default 1 ms,
    in seconds), in the unit the reader takes τ in; a reader must step with the same dt (snnTorch
    1.0's NIR import steps with dt = 1e-4: export with dt=1e-4 for it).

    Only lif and li layers and the linear readout have NIR nodes; any other neuron is refused with a
    HyprgenError that names the layer, the neuron and why. Save the graph with nir.write(path, graph).
    """
    nir = require_nir()
    if not isinstance(net, RSNN):
        raise HyprgenError(f"export_nir takes a hyprgen.RSNN, got {type(net).__name__}")
    dt = check_dt(dt, "export_nir")
    names = [f"layer{i}" for i in range(len(net.layers) - 1)] + ["readout"]
    forms = [None if isinstance(layer.neuron, LinearNeuron) else _form(layer, name)
             for layer, name in zip(net.layers, names)]
    nodes = {"input": nir.Input(input_type={"input": np.array([net.n_in])})}
    edges, previous = [], "input"
    for layer, name, form in zip(net.layers, names, forms):
        synapses = f"{name}.affine"
        nodes[synapses] = nir.Affine(weight=_array(layer.W_in), bias=_array(layer.bias))
        edges.append((previous, synapses))
        previous = synapses
        if form is None:   # the linear readout y = W z + b is its Affine alone
            continue
        cell = f"{name}.{form.name}"
        nodes[cell] = _neuron_node(nir, form, layer, dt)
        edges.append((synapses, cell))
        if layer.recurrent:
            nodes[f"{name}.recurrent"] = nir.Linear(weight=_array(layer.W_rec))
            edges += [(cell, f"{name}.recurrent"), (f"{name}.recurrent", cell)]
        previous = cell
    nodes["output"] = nir.Output(output_type={"output": np.array([net.n_out])})
    edges.append((previous, "output"))
    # What a time-stepped reader needs to reproduce hyprgen exactly; NIR's own semantics do not rely
    # on metadata (and need none of it), docs/nir.md.
    metadata = {"producer": f"hyprgen {__version__}", "dt": dt, "discretization": DISCRETIZATION,
                "reset": RESET, "shared_readout": bool(net.layers[-1].shared_params)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _form(layer: Layer, name: str):
    where = "the readout" if name == "readout" else f"hidden layer {name.removeprefix('layer')}"
    try:
        return form_of(layer.neuron)
    except HyprgenError as e:
        raise HyprgenError(f"export_nir: {where} is {e}") from None


def _array(t: torch.Tensor) -> np.ndarray:
    """A parameter as a numpy array of its dtype, copied (the graph never aliases the network)."""
    return t.detach().cpu().numpy().copy()


def _neuron_node(nir, form, layer: Layer, dt: float):
    tau_steps = _array(layer.params_tuple()[0])      # [n] (a shared parameter expanded)
    tau = nir_tau(tau_steps, dt).astype(tau_steps.dtype)   # computed in float64, kept in the net's dtype
    ones, zeros = np.ones_like(tau), np.zeros_like(tau)
    if form.node == "LIF":
        return nir.LIF(tau=tau, r=ones, v_leak=zeros, v_threshold=THRESHOLD * ones, v_reset=zeros)
    return nir.LI(tau=tau, r=ones, v_leak=zeros)
