"""Recurrent spiking networks built from generated neurons.

A `Layer` is n neurons of one generated model with synapses W = [W_in | W_rec] and bias b
(docs/hypr.md §1): I^t = W_in x^t + W_rec o^{t-1} + b, (r^t, o^t) = F(r^{t-1}, I^t; θ).
An `RSNN` stacks spiking layers and a readout layer (leaky integrator or linear) of the same form.
Tensors are batch-first at the API ([B, T, features]) and time-major inside loops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Mapping, Sequence

import torch
from torch import nn

from .. import __version__
from ..contract import IR_VERSION
from ..errors import HyprgenError, ShapeError
from .neuron import NeuronRef, clamp_param_, init_dict, resolve, sample_param

try:   # torch's scan (a prototype in torch 2.13): the loop over time of RSNN.compile's inference forward
    from torch._higher_order_ops.scan import scan
except ImportError:   # an older torch: RSNN.compile unrolls the loop too
    scan = None


class LinearNeuron:
    """The non-leaky readout y^t = I^t as a neuron module with no state (d = 0, p = 0)."""

    __name__ = "linear"
    META = {"name": "linear", "doc": "non-leaky readout y = I", "ir_version": IR_VERSION,
            "hyprgen_version": __version__, "carried": [], "state_init": {}, "params": [],
            "output": "continuous", "surrogate": None, "detach_reset": False}

    @staticmethod
    def init_state(batch, n, dtype=torch.float32, device=None):
        return ()

    @staticmethod
    def step(state, I, params):
        return (), I

    step_autograd = step

    @staticmethod
    def step_with_jacobians(state, I, params):
        return (), I, {"A": (), "c": (), "D": (), "a": (), "gamma": 1.0, "delta": ()}

    @staticmethod
    def p_stage(r_prev, I, signal, params):
        """The P-stage with d = p = 0 (the generated modules' signature): g^τ = λ^τ γ^τ = λ^τ."""
        lam, B, n = I.shape
        empty = lambda *s: I.new_zeros(*s)  # noqa: E731
        return empty(B, n, 0), signal, signal, empty(lam, B, n, 0), empty(B, n, 0, 0), empty(B, n, 0), empty(B, n, 0, 0)


@dataclass
class LayerState:
    """What a layer carries from one step (or chunk) to the next."""

    r: tuple[torch.Tensor, ...]  # d tensors [B, n]: the carried state r^t
    o: torch.Tensor              # [B, n]: the output o^t (read by the recurrent synapses)

    def detach(self) -> "LayerState":
        return LayerState(tuple(x.detach() for x in self.r), self.o.detach())


class Layer(nn.Module):
    """shared_params: each neuron parameter is one value for all n neurons (a [1] Parameter, seen as
    [n] by the steps), e.g. one τ_out for the whole readout.

    Pickled (copy.deepcopy, torch.save of a whole network, multiprocessing) with its generated neuron
    module as a NeuronRef (runtime/neuron.py): by name or spec path, re-resolved on unpickling."""

    def __init__(self, n_in: int, n: int, neuron: ModuleType, recurrent: bool, generator=None,
                 weight_scale: float = 1.0, param_init: dict[str, dict] | None = None, shared_params: bool = False):
        super().__init__()
        self.neuron = resolve(neuron) if not isinstance(neuron, LinearNeuron) else neuron
        self.n_in, self.n, self.recurrent, self.shared_params = n_in, n, recurrent, shared_params
        fan_in = n_in + (n if recurrent else 0)
        bound = weight_scale / math.sqrt(fan_in)
        self.W_in = nn.Parameter(torch.empty(n, n_in).uniform_(-bound, bound, generator=generator))
        self.W_rec = nn.Parameter(torch.empty(n, n).uniform_(-bound, bound, generator=generator)) if recurrent else None
        self.bias = nn.Parameter(torch.zeros(n))
        # param_init: {name: {"dist", "args"}} replaces the spec's init of those parameters (raw values)
        inits = {p["name"]: (param_init or {}).get(p["name"], p["init"]) for p in self.neuron.META["params"]}
        self.theta = nn.ParameterDict({name: nn.Parameter(sample_param(init, 1 if shared_params else n, generator))
                                       for name, init in inits.items()})
        self.clamp_()

    @property
    def d(self) -> int:
        return len(self.neuron.META["carried"])

    @property
    def m(self) -> int:
        return self.n_in + (self.n if self.recurrent else 0)

    def params_tuple(self) -> tuple[torch.Tensor, ...]:
        """The neuron parameters, each [n] (a shared one expanded: autograd sums its gradient)."""
        return tuple(self.theta[p["name"]].expand(self.n) for p in self.neuron.META["params"])

    @torch.no_grad()
    def clamp_(self) -> None:
        """Apply every parameter's clamp constraint (the learners call this after optimizer steps)."""
        for p in self.neuron.META["params"]:
            clamp_param_(self.theta[p["name"]], p["clamp"])

    def init_state(self, batch: int) -> LayerState:
        ref = self.W_in
        r = self.neuron.init_state(batch, self.n, dtype=ref.dtype, device=ref.device)
        return LayerState(tuple(r), torch.zeros(batch, self.n, dtype=ref.dtype, device=ref.device))

    def feedforward(self, x: torch.Tensor) -> torch.Tensor:
        """W_in x^t + b for all steps at once: [T, B, n_in] → [T, B, n] (one GEMM)."""
        return torch.addmm(self.bias, x.reshape(-1, self.n_in), self.W_in.t()).reshape(*x.shape[:2], self.n)

    def current(self, ff: torch.Tensor, o_prev: torch.Tensor, detach_recurrent: bool = False) -> torch.Tensor:
        """I^t = (W_in x^t + b) + W_rec o^{t-1}: [B, n]."""
        if not self.recurrent:
            return ff
        o_prev = o_prev.detach() if detach_recurrent else o_prev
        return ff + o_prev @ self.W_rec.t()

    def extra_repr(self) -> str:
        return f"{self.neuron.META['name']}, n_in={self.n_in}, n={self.n}, recurrent={self.recurrent}"

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if not isinstance(self.neuron, LinearNeuron):
            state["neuron"] = NeuronRef.of(self.neuron, f"a layer of {self.neuron.META['name']} neurons")
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["neuron"], NeuronRef):
            state = {**state, "neuron": state["neuron"].resolve()}
        super().__setstate__(state)


def hidden_param_init(param_init: Mapping[str, object] | None, neurons: Sequence[ModuleType]) -> dict[str, dict]:
    """RSNN's param_init checked: every name a parameter of some hidden neuron; values as META's inits."""
    if not param_init:
        return {}
    if not isinstance(param_init, Mapping):
        raise HyprgenError(f"param_init must be a dict {{parameter name: init}}, got {type(param_init).__name__}")
    known = {p["name"] for nrn in neurons for p in nrn.META["params"]}
    for name in param_init:
        if name not in known:
            have = "; ".join(f"{nrn.META['name']}: {', '.join(p['name'] for p in nrn.META['params']) or 'none'}"
                             for nrn in dict.fromkeys(neurons))
            raise HyprgenError(f"param_init: no hidden neuron has a parameter {name!r} (parameters: {have})")
    return {name: init_dict(init, f"param_init[{name!r}]") for name, init in param_init.items()}


class RSNN(nn.Module):
    """Spiking layers (any generated neuron each, optional recurrence) and a readout.

    readout="li": leaky integrator with trainable τ_out (the shipped 'li' neuron);
    readout="linear": non-leaky y^t = W_out z^t + b_out. Outputs are the readout values [B, T, n_out].
    param_init={name: init} draws that neuron parameter of every hidden layer that has it from `init`
    instead of the spec's distribution: hyprgen.spec.uniform(lo, hi), normal(mean, std), constant(v)
    or a number, in the raw (trained) space of the spec's init= (e.g. brf_exp's b_offset is log b').
    """

    def __init__(self, n_in: int, hidden: Sequence[int] | int, n_out: int,
                 neuron: str | ModuleType | Sequence[str | ModuleType] = "brf",
                 readout: str | ModuleType = "li", recurrent: bool | Sequence[bool] = True,
                 seed: int | None = None, weight_scale: float = 1.0,
                 param_init: Mapping[str, object] | None = None, shared_readout: bool = False):
        super().__init__()
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        if not hidden or any(h <= 0 for h in hidden) or n_in <= 0 or n_out <= 0:
            raise ShapeError(f"RSNN sizes must be positive: n_in={n_in}, hidden={hidden}, n_out={n_out}")
        neurons = list(neuron) if isinstance(neuron, (list, tuple)) else [neuron] * len(hidden)
        recurrents = list(recurrent) if isinstance(recurrent, (list, tuple)) else [recurrent] * len(hidden)
        if len(neurons) != len(hidden) or len(recurrents) != len(hidden):
            raise ShapeError(f"{len(hidden)} hidden layers but {len(neurons)} neurons / {len(recurrents)} recurrent flags")
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        neurons = [resolve(nrn) for nrn in neurons]
        inits = hidden_param_init(param_init, neurons)
        layers, width = [], n_in
        for h, nrn, rec in zip(hidden, neurons, recurrents):
            layers.append(Layer(width, h, nrn, rec, gen, weight_scale, inits))
            width = h
        readout_neuron = LinearNeuron() if readout == "linear" else resolve(readout)
        layers.append(Layer(width, n_out, readout_neuron, recurrent=False, generator=gen, shared_params=shared_readout))
        self.layers = nn.ModuleList(layers)
        self.n_in, self.n_out = n_in, n_out

    def clamp_(self) -> None:
        for layer in self.layers:
            layer.clamp_()

    _scan_when_compiled = False   # set by compile()

    def compile(self, **kwargs) -> None:
        """nn.Module.compile (torch.compile of the forward, in place: `net` stays an RSNN that the
        learners take) with fullgraph=True by default. Then the forward without gradients (under
        torch.no_grad or inference_mode) runs each layer's T steps as one scan, traced once, so that
        compiling takes about as long for any T; torch.compile(net) unrolls the loop instead, and
        its compile time grows with T (benchmarks/compile_time.py, docs/module.md). The scan needs
        fullgraph=True: torch 2.13's inductor lowers it through a .item() that only a whole-graph
        compile allows. With gradients the loop stays unrolled (inductor's gradient of a scan is
        wrong in torch 2.13: NaN for BRF, off by 0.6 for ALIF)."""
        kwargs.setdefault("fullgraph", True)
        self._scan_when_compiled = bool(kwargs["fullgraph"]) and scan is not None
        super().compile(**kwargs)

    def __getstate__(self) -> dict:
        for i, layer in enumerate(self.layers):   # what the layers will say, but with the layer's index
            if not isinstance(layer.neuron, LinearNeuron):
                NeuronRef.of(layer.neuron, f"layer {i}")
        state = super().__getstate__()   # without the compiled forward (nn.Module's rule), so without its scan
        state.pop("_scan_when_compiled", None)
        return state

    def init_state(self, batch: int) -> list[LayerState]:
        return [layer.init_state(batch) for layer in self.layers]

    def check_input(self, x: torch.Tensor, state: list[LayerState] | None = None) -> None:
        ref = self.layers[0].W_in
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ShapeError(f"input must be a tensor [B, T, n_in={self.n_in}], got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if x.shape[2] != self.n_in:
            raise ShapeError(f"input has {x.shape[2]} features per step, the network expects n_in={self.n_in} "
                             f"(input shape {tuple(x.shape)})")
        if x.shape[1] == 0 or x.shape[0] == 0:
            raise ShapeError(f"input has an empty batch or time axis: shape {tuple(x.shape)}")
        if x.dtype != ref.dtype or x.device != ref.device:
            raise ShapeError(f"input is {x.dtype} on {x.device}, the network is {ref.dtype} on {ref.device}")
        # not in a compiled forward: a branch on a tensor's value would split torch.compile's graph
        if not torch.compiler.is_compiling() and not torch.isfinite(x).all():
            raise ValueError("input contains NaN or inf values")
        if state is not None and state[0].o.shape[0] != x.shape[0]:
            raise ShapeError(f"carried state has batch size {state[0].o.shape[0]}, input has {x.shape[0]}")

    def forward(self, x: torch.Tensor, state: list[LayerState] | None = None, differentiable: bool = False,
                detach_recurrent: bool = False, record: bool = False):
        """Run the network on x [B, T, n_in]; returns (readout outputs [B, T, n_out], final state),
        and with record=True also every layer's outputs (a list of [B, T, n]).

        differentiable=True uses the surrogate-injected step (for BPTT); detach_recurrent stops the
        gradient through W_rec's input o^{t-1} (the graph in which HYPR's gradient is exact).
        Compiled by `compile` and run without gradients, each layer's steps are one scan (`scan_steps`);
        otherwise compiled (torch.compile(net)), the loop over T is unrolled. The input's NaN/inf check
        is left out when compiled (docs/module.md).
        """
        self.check_input(x, state)
        state = self.init_state(x.shape[0]) if state is None else state
        h = x.transpose(0, 1)  # [T, B, n_in]
        new_state, recorded = [], []
        for layer, s in zip(self.layers, state):
            step = layer.neuron.step_autograd if differentiable else layer.neuron.step
            ff, theta = layer.feedforward(h), layer.params_tuple()
            if self._scan_when_compiled and torch.compiler.is_compiling() and not torch.is_grad_enabled():
                r, o, h = scan_steps(layer, step, ff, s, theta, detach_recurrent)
            else:
                r, o, outs = s.r, s.o, []
                # unbind, not ff[t]: under autograd each indexing op would zero-fill a whole [T, B, n]
                # gradient in the backward pass, making BPTT quadratic in T
                for ff_t in ff.unbind(0):
                    r, o = step(r, layer.current(ff_t, o, detach_recurrent), theta)
                    outs.append(o)
                h = torch.stack(outs)  # [T, B, n]
            new_state.append(LayerState(tuple(r), o))
            recorded.append(h.transpose(0, 1))
        if record:
            return h.transpose(0, 1), new_state, recorded
        return h.transpose(0, 1), new_state


def scan_steps(layer: Layer, step, ff: torch.Tensor, s: LayerState, theta: tuple[torch.Tensor, ...],
               detach_recurrent: bool):
    """A layer's T steps as one torch scan (the forward's loop in RSNN.compile's forward without
    gradients): the step is traced once instead of T times. Returns (r^T, o^T, o^1..o^T [T, B, n]).
    The clones only keep scan's outputs from aliasing each other (its rule; an LI readout's state is
    its output); the compiler removes them."""
    def one_step(carry, ff_t):
        r, o = step(carry[0], layer.current(ff_t, carry[1], detach_recurrent), theta)
        return (tuple(x.clone() for x in r), o.clone()), o.clone()

    (r, o), h = scan(one_step, (tuple(s.r), s.o), ff)
    return r, o, h


# What a whole pickled RSNN (torch.save(net)) holds besides tensors and plain values: the classes to
# allow for torch.load(weights_only=True), `with torch.serialization.safe_globals(PICKLE_GLOBALS):`.
# Loading still resolves each layer's neuron by name or spec path, and loading a spec runs it.
PICKLE_GLOBALS = (RSNN, Layer, LinearNeuron, NeuronRef, nn.ModuleList, nn.ParameterDict)
