"""The learners' finiteness guard (docs/reliability.md): a NaN or inf in a layer's state, the readout's
output, the loss, a gradient or, after an optimizer step, a parameter raises NonFiniteError naming
where it first appeared (layer, neuron, state component, step, sample).

A NaN must be caught where it appears: a spike H(NaN) is 0, so a layer whose state went NaN falls
silent and the loss stays finite (a network can train to good accuracy around a dead neuron).

Cheap path, once per HYPR chunk (per sequence for BPTT and EProp): one sum per tensor to check, the
sums added into one scalar, one host sync. A NaN or inf anywhere makes that scalar non-finite; a
scalar that only overflowed (all values finite) is told apart by the exact search, which then finds
nothing. Failure path only: the exact search for the first non-finite entry, in the order the values
were computed (states step by step and bottom-up, then the output, the loss, the gradients).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

from ..errors import NonFiniteError
from ..ops.s_stage import s_stage_ref


GRADIENT_NAMES = ("dW", "db", "dtheta")   # a chunk's (ChunkGradient) or sequence's W = [W_in | W_rec], b, θ [n, p]


@torch.no_grad()
def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every entry of every tensor is finite: one fused sum each, one sync (module doc)."""
    tensors = [x for x in tensors if x.is_floating_point() and x.numel()]
    if not tensors:
        return True
    if math.isfinite(float(torch.stack([x.sum().float() for x in tensors]).sum())):
        return True
    return not any((~torch.isfinite(x)).any() for x in tensors)


def layer_name(net, i: int) -> str:
    layer = net.layers[i]
    role = "readout" if i == len(net.layers) - 1 else f"hidden layer {i + 1} of {len(net.layers) - 1}"
    return f"layer {i} ({layer.neuron.META['name']}, {role})"


def first_bad_state(states: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(step τ, component c, sample b, neuron j) of the first non-finite entry of states [T', d, B, n],
    first in τ, then in (c, b, j); None when all are finite."""
    bad = ~torch.isfinite(states)
    if states.numel() == 0 or not bad.any():
        return None
    tau = int(bad.flatten(1).any(1).nonzero()[0])
    c, b, j = (int(v) for v in bad[tau].nonzero()[0])
    return tau, c, b, j


def raise_for_states(net, per_layer: Sequence[torch.Tensor], first_step: int, span: str) -> None:
    """Raise for the first non-finite state. per_layer[i]: layer i's states [T', d, B, n], entry τ the
    state after step first_step + τ (first_step + τ = -1: the initial state). Earliest step first; at
    one step, the lowest layer (it runs first). span names the steps checked ('the chunk at steps …')."""
    found = []
    for i, states in enumerate(per_layer):
        hit = first_bad_state(states)
        if hit is not None:
            found.append((hit[0], i, hit))
    if not found:
        return
    tau, i, (_, c, b, j) = min(found)
    value = float(per_layer[i][tau, c, b, j])
    component = net.layers[i].neuron.META["carried"][c]
    step = first_step + tau
    raise NonFiniteError(
        f"non-finite state: {layer_name(net, i)}, neuron {j}, component '{component}' = {value} after step {step} "
        f"(sample {b}), the first non-finite value in {span} {_hint(net, i)}", kind="state", layer=i, neuron=j, component=component, step=step, sample=b, value=value)


def raise_for_values(net, output: torch.Tensor | None, loss: torch.Tensor | None,
                     grads: Sequence[tuple[int, str, torch.Tensor]], steps: str) -> None:
    """Raise for a non-finite output y [B, T, n_out], loss, or gradient (layer index, name, tensor);
    steps names where they were computed ('steps 100–199')."""
    if output is not None and (~torch.isfinite(output)).any():
        b, t, k = (int(v) for v in (~torch.isfinite(output)).nonzero()[0])
        value = float(output[b, t, k])
        raise NonFiniteError(f"non-finite readout output {k} = {value} at sample {b}, step {t} of {steps}: the "
                             "readout's states are finite, its output is not", kind="output",
                             layer=len(net.layers) - 1, neuron=k, sample=b, value=value)
    if loss is not None and not torch.isfinite(loss).all():
        raise NonFiniteError(f"non-finite loss ({float(loss)}) over {steps}, with finite states and outputs",
                             kind="loss", value=float(loss))
    for i, name, g in grads:
        if g is not None and (~torch.isfinite(g)).any():
            where = tuple(int(v) for v in (~torch.isfinite(g)).nonzero()[0])
            value = float(g[where])
            raise NonFiniteError(
                f"non-finite gradient: {layer_name(net, i)}, {name}[{', '.join(map(str, where))}] = {value} from "
                f"{steps}, with finite states and loss: a local derivative (Jacobian or surrogate) is not finite "
                "there", kind="gradient", layer=i, neuron=where[0] if where else None, value=value)


def check_sequence(net, x: torch.Tensor, output: torch.Tensor, loss: torch.Tensor, final_states,
                   grads: Sequence[tuple[int, str, torch.Tensor]]) -> None:
    """BPTT's and EProp's check, once per sequence x [B, T, n_in]: output, loss, final states and
    gradients on the cheap path; on a failure, the states of every step are recomputed (no grad,
    the parameters as they were: the optimizer has not stepped yet) to find where it began."""
    tensors = [output, loss, *(r for s in final_states for r in s.r), *(g for _, _, g in grads if g is not None)]
    if all_finite(tensors):
        return
    span = f"the sequence (steps 0–{x.shape[1] - 1})"
    raise_for_states(net, sequence_states(net, x), -1, span)
    raise_for_values(net, output, loss, grads, span)
    raise_unlocated(span)


def raise_unlocated(span: str) -> None:
    """The exact searches found nothing that the cheap check saw: never pass that silently."""
    raise NonFiniteError(f"non-finite values in {span}, in a tensor the guard could not attribute", kind="state")


def sequence_states(net, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's states of x [B, T, n_in] from zero state, initial state first: [T + 1, d, B, n] per layer."""
    h, per_layer = x.transpose(0, 1), []
    with torch.no_grad():
        for layer, s in zip(net.layers, net.init_state(x.shape[0])):
            outs, r_prev, _, r_out, _ = s_stage_ref(layer.neuron, layer.feedforward(h), layer.W_rec, s.r, s.o,
                                                    layer.params_tuple())
            per_layer.append(chunk_states(r_prev, r_out))
            h = outs[1:]
    return per_layer


def chunk_states(r_prev: torch.Tensor, r_out: Sequence[torch.Tensor]) -> torch.Tensor:
    """[λ + 1, d, B, n]: the state before each step of a chunk (r_prev [λ, d, B, n]) and after its last."""
    return torch.cat([r_prev, torch.stack(tuple(r_out))[None]]) if len(r_out) else r_prev


@torch.no_grad()
def check_parameters(net) -> None:
    """After an optimizer step: every parameter finite (a learning rate too large overflows them)."""
    params = dict(net.named_parameters())
    if all_finite(params.values()):
        return
    for name, p in params.items():
        if (~torch.isfinite(p)).any():
            where = tuple(int(v) for v in (~torch.isfinite(p)).nonzero()[0])
            value = float(p.detach()[where])
            layer = int(name.split(".")[1]) if name.startswith("layers.") else None
            raise NonFiniteError(f"parameter {name}[{', '.join(map(str, where))}] became {value} in the optimizer "
                                 "step, from finite gradients: the step overflowed (lower the learning rate)",
                                 kind="parameter", layer=layer, value=value)


def _hint(net, i: int) -> str:
    """Context for a state error: the layer's largest weight, which is how a too-large step shows."""
    layer = net.layers[i]
    w = max(float(layer.W_in.detach().abs().max()),
            float(layer.W_rec.detach().abs().max()) if layer.W_rec is not None else 0.0)
    return f"(largest |weight| into the layer: {w:.3g})."
