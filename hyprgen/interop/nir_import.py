"""hyprgen.import_nir: a NIR graph as an RSNN, the inverse of export_nir (the mapping: nir_mapping.py).

It reads what export_nir writes and any flat graph of the same shape from another tool:

    Input → ( Affine|Linear → LIF|LI [⇄ Linear|Affine] )… → Affine|Linear [→ LIF|LI] → Output

(hidden layers, then the readout: LI, LIF, or none for the linear readout). A node's r, v_threshold
and v_leak need not be 1, 1 and 0: they fold into its layer's weights and bias, exactly, since
hyprgen's lif is NIR's LIF measured in units of v_threshold:

    v/θ' = α v/θ' + (1 − α) (r I + v_leak)/θ' − z        (θ' = v_threshold, reset by subtraction)

so I is scaled by r/θ' (rows of W_in, W_rec and the bias) and v_leak/θ' joins the bias; for LI the
scale is r and the offset v_leak. v_reset must be 0 (hyprgen's lif rests at 0 and subtracts θ).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import HyprgenError
from ..runtime.network import RSNN
from .nir_mapping import FORMS, check_dt, require_nir, steps_tau

CELL_FORMS = {"LIF": FORMS["lif"], "LI": FORMS["li"]}

# Why a NIR node cannot be a part of an RSNN layer (the rest: not a layer of the chain above).
NOT_IMPORTABLE = {
    "CubaLIF": "a current-based LIF (a synaptic current state beside v): hyprgen ships no such neuron "
               "(write one as a spec with `hyprgen build`)",
    "CubaLI": "a current-based leaky integrator (a synaptic current state beside v): hyprgen ships no such neuron",
    "IF": "a non-leaky integrate-and-fire neuron: hyprgen ships none (its lif always leaks)",
    "I": "a non-leaky integrator: hyprgen ships none (its li always leaks)",
    "Threshold": "a bare threshold: hyprgen's spiking neurons carry their own",
    "Delay": "a delay: hyprgen's synapses have none",
}


@dataclass(frozen=True)
class LayerNodes:
    """The names of one layer's nodes in the graph."""

    synapses: str            # the Affine or Linear into the layer (W_in, bias)
    cell: str | None         # its LIF or LI node; None for the linear readout
    recurrent: str | None    # the Linear or Affine of the cycle cell → recurrent → cell (W_rec)


def import_nir(graph, dt: float | None = None, dtype: torch.dtype | None = None) -> RSNN:
    """An RSNN computing what the NIR graph (a nir.NIRGraph or a path for nir.read) means when one
    hyprgen step is `dt` of NIR time (default: the dt export_nir recorded in the graph's metadata).
    dtype: the network's (default: that of the graph's first weight matrix)."""
    nir = require_nir()
    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise HyprgenError(f"import_nir takes a nir.NIRGraph or the path of a .nir file, got {type(graph).__name__}")
    dt = _step(graph, dt)
    chain = layer_chain(nir, graph)
    nodes = graph.nodes
    first = np.asarray(nodes[chain[0].synapses].weight)
    if dtype is None:   # a float64 export imports as float64; integer weights as float32
        dtype = torch.from_numpy(first[:0]).dtype if np.issubdtype(first.dtype, np.floating) else torch.float32
    n_in = _input_size(nir, graph)
    layers, width = [], n_in
    for names in chain:
        layers.append(_layer_arrays(nir, nodes, names, width, dt))
        width = layers[-1]["W_in"].shape[0]
    *hidden, readout = layers
    if not hidden:
        raise HyprgenError("import_nir: the graph has one layer (its readout); an RSNN needs a hidden layer before it")
    if readout["W_rec"] is not None:
        raise HyprgenError(f"import_nir: the readout node '{chain[-1].cell}' has a recurrent cycle; "
                           "hyprgen's readout has none")
    shared = bool(graph.metadata.get("shared_readout", False)) and readout["tau"] is not None \
        and bool(np.all(readout["tau"] == readout["tau"][0]))
    net = RSNN(n_in, [h["W_in"].shape[0] for h in hidden], width, neuron=[h["form"].name for h in hidden],
               readout=readout["form"].name if readout["form"] else "linear",
               recurrent=[h["W_rec"] is not None for h in hidden], shared_readout=shared).to(dtype)
    with torch.no_grad():
        for layer, arrays, names in zip(net.layers, layers, chain):
            _fill(layer, arrays, names)
    return net


def _step(graph, dt) -> float:
    if dt is not None:
        return check_dt(dt, "import_nir")
    if "dt" not in graph.metadata:
        raise HyprgenError("import_nir: the graph does not say the NIR time of one step (no 'dt' in its metadata, "
                           "which export_nir writes): pass dt=, the step its producer used (snnTorch's: 1e-4)")
    return check_dt(float(graph.metadata["dt"]), "import_nir (the graph's metadata)")


def _input_size(nir, graph) -> int:
    (node,) = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    shape = np.asarray(node.input_type["input"]).reshape(-1)
    if shape.size != 1:
        raise HyprgenError(f"import_nir: the input has shape {shape.tolist()}; an RSNN takes a vector per step")
    return int(shape[0])


def layer_chain(nir, graph) -> list[LayerNodes]:
    """The graph's layers in order, or a HyprgenError naming the node that breaks the chain."""
    nodes = graph.nodes
    nested = [k for k, n in nodes.items() if isinstance(n, nir.NIRGraph)]
    if nested:
        raise HyprgenError(f"import_nir: node '{nested[0]}' is a nested NIRGraph; import_nir reads flat graphs "
                           "(Input, Affine/Linear, LIF/LI, Output nodes)")
    successors = {k: [] for k in nodes}
    predecessors = {k: [] for k in nodes}
    for a, b in graph.edges:
        successors[a].append(b)
        predecessors[b].append(a)
    ends = {kind: [k for k, n in nodes.items() if isinstance(n, getattr(nir, kind))] for kind in ("Input", "Output")}
    for kind, found in ends.items():
        if len(found) != 1:
            raise HyprgenError(f"import_nir: an RSNN has one {kind} node, the graph has {len(found)} ({found})")

    def only(after: str, what: str) -> str:
        following = successors[after]
        if len(following) != 1:
            raise HyprgenError(f"import_nir: node '{after}' feeds {following or 'nothing'}; expected one {what} "
                               "(an RSNN is a chain of layers)")
        return following[0]

    chain, here, seen = [], only(ends["Input"][0], "Affine or Linear"), set()
    while True:
        if here in seen:
            raise HyprgenError(f"import_nir: the chain of layers returns to node '{here}'")
        seen.add(here)
        synapses = _expect(nir, nodes, here, (nir.Affine, nir.Linear), "an Affine or Linear (a layer's synapses)")
        if len(predecessors[synapses]) != 1:
            raise HyprgenError(f"import_nir: node '{synapses}' has inputs {predecessors[synapses]}; expected one")
        cell = only(synapses, "LIF, LI or Output")
        if isinstance(nodes[cell], nir.Output):
            chain.append(LayerNodes(synapses, None, None))
            return chain
        _expect(nir, nodes, cell, (nir.LIF, nir.LI), "a LIF or LI neuron node")
        cycle = [s for s in successors[cell]
                 if successors[s] == [cell] and isinstance(nodes[s], (nir.Affine, nir.Linear))]
        onward = [s for s in successors[cell] if s not in cycle]
        if len(cycle) > 1 or len(onward) != 1:
            raise HyprgenError(f"import_nir: node '{cell}' feeds {successors[cell]}; expected the next layer (or "
                               "Output) and at most one recurrent Linear back into it")
        if sorted(predecessors[cell]) != sorted([synapses, *cycle]):
            raise HyprgenError(f"import_nir: node '{cell}' has inputs {predecessors[cell]}; expected '{synapses}'"
                               + (f" and '{cycle[0]}'" if cycle else ""))
        chain.append(LayerNodes(synapses, cell, cycle[0] if cycle else None))
        if isinstance(nodes[onward[0]], nir.Output):
            return chain
        here = onward[0]


def _expect(nir, nodes, name: str, kinds: tuple, what: str) -> str:
    node = nodes[name]
    if isinstance(node, kinds):
        return name
    kind = type(node).__name__
    why = NOT_IMPORTABLE.get(kind, "not a part of hyprgen's RSNN layers")
    raise HyprgenError(f"import_nir: node '{name}' is a {kind}, {why}; expected {what} there")


def _layer_arrays(nir, nodes, names: LayerNodes, width: int, dt: float) -> dict:
    """One layer's hyprgen parameters (float64 numpy) with the cell's r, v_threshold, v_leak folded in."""
    synapses = nodes[names.synapses]
    W = np.asarray(synapses.weight, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] != width:
        raise HyprgenError(f"import_nir: node '{names.synapses}' has weight shape {list(W.shape)}; "
                           f"expected [n, {width}] (its input has {width} features)")
    n = W.shape[0]
    b = _bias(nir, synapses, n)
    W_rec = None
    if names.recurrent is not None:
        recurrent = nodes[names.recurrent]
        W_rec = np.asarray(recurrent.weight, dtype=np.float64)
        if W_rec.shape != (n, n):
            raise HyprgenError(f"import_nir: recurrent node '{names.recurrent}' has weight shape {list(W_rec.shape)}; "
                               f"expected [{n}, {n}]")
        b = b + _bias(nir, recurrent, n)   # a recurrent Affine's bias is one more constant current
    if names.cell is None:
        return {"form": None, "W_in": W, "W_rec": None, "bias": b, "tau": None}
    cell = nodes[names.cell]
    form = CELL_FORMS[type(cell).__name__]
    vector = lambda key: _vector(cell, key, n, names.cell)  # noqa: E731
    tau, r, v_leak = vector("tau"), vector("r"), vector("v_leak")
    if form.node == "LIF":
        threshold, v_reset = vector("v_threshold"), vector("v_reset")
        if np.any(v_reset != 0):
            raise HyprgenError(f"import_nir: node '{names.cell}' (LIF) has v_reset ≠ 0 "
                               f"({v_reset[v_reset != 0][0]:g}); hyprgen's lif rests at 0 and resets by "
                               "subtracting its threshold")
        if not np.all(threshold > 0):
            raise HyprgenError(f"import_nir: node '{names.cell}' (LIF) has a threshold ≤ 0 "
                               f"({threshold[threshold <= 0][0]:g}); hyprgen's lif fires above a positive one")
        gain, offset = r / threshold, v_leak / threshold
    else:
        gain, offset = r, v_leak
    if not np.all(tau > dt):
        raise HyprgenError(f"import_nir: node '{names.cell}' has τ = {tau[tau <= dt].min():g} ≤ dt = {dt:g}; "
                           "forward Euler's decay 1 − dt/τ must lie in (0, 1): pass a smaller dt")
    W_in = gain[:, None] * W
    return {"form": form, "W_in": W_in, "W_rec": None if W_rec is None else gain[:, None] * W_rec,
            "bias": gain * b + offset, "tau": steps_tau(tau, dt), "nir_tau": tau}


def _bias(nir, node, n: int) -> np.ndarray:
    if isinstance(node, nir.Linear):
        return np.zeros(n)
    return np.broadcast_to(np.asarray(node.bias, dtype=np.float64), (n,)).copy()


def _vector(node, key: str, n: int, name: str) -> np.ndarray:
    value = np.asarray(getattr(node, key), dtype=np.float64)
    try:
        return np.broadcast_to(value, (n,)).copy()
    except ValueError:
        raise HyprgenError(f"import_nir: node '{name}' has {key} of shape {list(value.shape)}; its layer has "
                           f"{n} neurons") from None


def _fill(layer, arrays: dict, names: LayerNodes) -> None:
    """Copy one layer's arrays into its parameters (under no_grad), τ checked against the spec's clamp."""
    as_tensor = lambda a: torch.from_numpy(a).to(layer.W_in.dtype)  # noqa: E731
    layer.W_in.copy_(as_tensor(arrays["W_in"]))
    layer.bias.copy_(as_tensor(arrays["bias"]))
    if arrays["W_rec"] is not None:
        layer.W_rec.copy_(as_tensor(arrays["W_rec"]))
    if arrays["form"] is None:
        return
    (param,) = layer.neuron.META["params"]
    lo, hi = param["clamp"]
    tau = arrays["tau"]
    outside = (tau < (-np.inf if lo is None else lo)) | (tau > (np.inf if hi is None else hi))
    if np.any(outside):
        k = int(np.argmax(outside))
        raise HyprgenError(f"import_nir: node '{names.cell}' has τ = {arrays['nir_tau'][k]:g}, i.e. "
                           f"{param['name']} = {tau[k]:g} steps, outside {layer.neuron.META['name']}'s clamp "
                           f"[{lo}, {hi}]: pass a smaller dt")
    value = layer.theta[param["name"]]
    value.copy_(as_tensor(tau[: value.shape[0]]))   # a shared parameter ([1]) takes the first (all are equal)
