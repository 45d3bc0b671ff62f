"""HYPR: chunked online training (docs/hypr.md §4–5) on the torch, the Triton or the cpu backend.

Per chunk of λ steps: S-stage (each layer bottom-up over the chunk, keeping r^{τ-1}, I^τ, p^τ),
per-step loss and same-step learning signals top-down, P-stage reverse sweep, merge of the traces
(each stage per layer from runtime/stages.py: TorchStages, TritonStages or CpuStages).
Memory is independent of the sequence length T: traces ε [B, n, d, m] plus one chunk's transients.

Sequence mode (`step`): gradients of the whole sequence accumulate, then one optimizer step.
Streaming mode (`stream`): an optimizer step after every chunk; state and traces carry over calls.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable

import torch

from .. import loader
from ..errors import ShapeError
from ..ops.merge import MAX_D as MAX_TRITON_D
from ..ops.merge import ChunkGradient, Traces
from ..ops import native, triton_support
from ..ops.dispatch import ChunkBuffers, chunk_output
from ..ops.jacobians import densify
from ..ops.readout_memory import ReadoutTraces, route_signals
from . import finite, losses
from .finite import GRADIENT_NAMES
from .learner import Learner, StepResult, add_layer_grads
from .network import LayerState, LinearNeuron, RSNN
from .stages import CpuStages, TorchStages, TritonStages, load_cpu_kernels

BACKENDS = ("auto", "torch", "triton", "cpu")
CPU_DTYPES = (torch.float32, torch.float64)


def option_problem(backend: str = "auto", trace_dtype: torch.dtype | None = None,
                   drop_spike_paths: bool = False) -> str | None:
    """Why HYPR cannot take these options (None when it can): the one statement of the backend rules,
    which HYPR.__init__ raises as a ValueError and `hyprgen train` reports as an option error. What
    depends on the network (its device, dtype, neurons) is resolve_backend's."""
    if backend not in BACKENDS:
        return f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}"
    if backend == "triton" and not triton_support.AVAILABLE:
        return triton_support.MISSING
    if backend == "cpu":
        problem = native.compiler_problem()
        if problem is not None:
            return f"backend='cpu' compiles the neuron's C kernels, and here it cannot: {problem}"
    if trace_dtype not in (None, torch.float32) and not (backend in ("triton", "auto") and trace_dtype == torch.bfloat16):
        return (f"trace_dtype {trace_dtype} is not supported with backend={backend!r} "
                "(float32; bfloat16 with backend='triton')")
    if drop_spike_paths and backend not in ("torch", "auto"):
        return "drop_spike_paths is a comparison option of backend='torch'"
    return None


def resolve_backend(backend: str, net: RSNN, trace_dtype: torch.dtype | None = None,
                    drop_spike_paths: bool = False) -> tuple[str, str]:
    """(backend, why) for this network: an explicit backend is checked against it (ValueError with the
    reason when it cannot run it); "auto" picks triton for a float32 network on CUDA (when triton is
    installed and every layer has d <= 4), cpu for a float32/float64 network on the CPU when a C compiler
    builds the kernels, torch otherwise (and for drop_spike_paths). Decided once, when HYPR is made."""
    W = net.layers[0].W_in
    device, dtype = W.device, W.dtype
    deep = [f"layer {i} ({layer.neuron.META['name']}, d = {layer.d})" for i, layer in enumerate(net.layers)
            if not isinstance(layer.neuron, LinearNeuron) and layer.d > MAX_TRITON_D]
    if backend == "triton" and deep:
        raise ValueError(f"{deep[0]} carries more state components than backend='triton' handles "
                         f"(d <= {MAX_TRITON_D}): use backend='torch' or 'cpu'")
    if backend == "cpu":
        if device.type != "cpu":
            raise ValueError(f"backend='cpu' runs on CPU tensors; the network is on {device} "
                             "(backend='triton' or 'torch' there)")
        if dtype not in CPU_DTYPES:
            raise ValueError(f"backend='cpu' computes in float32 or float64; the network is {dtype} (use backend='torch')")
    if backend != "auto":
        return backend, "requested"
    if drop_spike_paths:
        return "torch", "auto: drop_spike_paths is a torch-backend comparison"
    if trace_dtype == torch.bfloat16:
        if device.type != "cuda" or not triton_support.AVAILABLE:
            raise ValueError("trace_dtype=torch.bfloat16 needs backend='triton' on a CUDA device")
        return "triton", "auto: bfloat16 traces"
    if device.type == "cuda":
        if not triton_support.AVAILABLE:
            return "torch", f"auto: {triton_support.MISSING}"
        if dtype != torch.float32 or deep:
            return "torch", f"auto: the Triton kernels take float32 and d <= {MAX_TRITON_D}"
        return "triton", "auto: CUDA tensors"
    if device.type == "cpu" and dtype in CPU_DTYPES:
        problem = native.compiler_problem()
        return ("cpu", "auto: a C compiler builds the cpu kernels") if problem is None else ("torch", f"auto: {problem}")
    return "torch", f"auto: no compiled backend for {dtype} on {device.type}"


def autocast_problem(device: torch.device) -> str | None:
    """Why HYPR does not run here (None when it does): under torch.autocast every synaptic current would
    be rounded to bfloat16/float16 (the GEMMs W_in x, W_rec o) while the state stays float32, and a
    current rounded across a threshold moves a spike: at the demo size (32 neurons, 120 steps) bfloat16
    autocast changes the spike trains of 16-32 of 32 samples and the readout by 10-53 % for every shipped
    neuron, where float32 against float64 changes none (benchmarks/autocast_spikes.py). The traces and
    the merge, where HYPR spends its time, are float32 regardless: autocast would buy little."""
    try:
        enabled, dtype = torch.is_autocast_enabled(device.type), torch.get_autocast_dtype(device.type)
    except (TypeError, AttributeError):   # torch < 2.4: one function per device type
        cpu = device.type == "cpu"
        enabled = torch.is_autocast_cpu_enabled() if cpu else torch.is_autocast_enabled()
        dtype = torch.get_autocast_cpu_dtype() if cpu else torch.get_autocast_gpu_dtype()
    if not enabled:
        return None
    return (f"HYPR does not run under torch.autocast ({dtype} on {device.type}): "
            "reduced-precision currents move threshold crossings and change the spike trains "
            "(benchmarks/autocast_spikes.py); call it outside the autocast region or inside "
            f"`with torch.autocast('{device.type}', enabled=False):` (for half-size traces: backend='triton', "
            "trace_dtype=torch.bfloat16)")


def readout_jacobians_shared(readout) -> bool:
    """Whether the readout's local Jacobians are one value for all its neurons (parameters shared,
    nothing read from the state or the input, one state component): then every route's signal is
    E_readout^τ · W_out[k, i] and one trace serves all readout neurons (K_κ = 1). Evaluated once, at
    random states and currents; an LI readout with a shared τ_out qualifies."""
    if not readout.shared_params or readout.d != 1:
        return False
    gen = torch.Generator().manual_seed(0)
    shape = (3, readout.n)
    state = tuple(torch.randn(*shape, generator=gen, dtype=torch.float64) for _ in range(readout.d))
    current = torch.randn(*shape, generator=gen, dtype=torch.float64)
    params = tuple(p.detach().cpu().double() for p in readout.params_tuple())
    _, _, jac = readout.neuron.step_with_jacobians(state, current, params)
    J = densify(jac, torch.Size(shape), torch.float64, "cpu")
    return all(torch.equal(x, x[:, :1].expand_as(x)) for x in (J.A, J.c))


def readout_lanes(signal: torch.Tensor, readout_E: torch.Tensor, W_out: torch.Tensor, shared: bool,
                  buffers: ChunkBuffers | None = None) -> torch.Tensor:
    """The top hidden layer's P-stage input under the readout's memory, [λ, (1 + R)·B, n]: the signal's
    B lanes λ̃^τ, then the route signals (route_signals, written in place; shared: E^τ on every neuron,
    W_out factored out, R = 1). buffers: that layer's ChunkBuffers (the tensor is dead once its P-stage
    ran: 46 MB a chunk at the brf suite's λ = 128, page faults each time when new)."""
    lam, B, n = signal.shape
    R = 1 if shared else readout_E.shape[2] * readout_E.shape[3]
    lanes = chunk_output(buffers, "readout_lanes", lam, (1 + R) * B, n, like=signal, dtype=signal.dtype)
    lanes[:, :B] = signal
    if shared:
        lanes[:, B:] = readout_E[:, :, 0, 0, None]
    else:
        route_signals(readout_E, W_out, out=lanes[:, B:])
    return lanes


class HYPR(Learner):
    """HYPR learner. chunk: λ (any positive int; the last chunk of a sequence may be shorter).

    backend="auto" (the default): triton for a float32 network on CUDA, cpu on the CPU when a C compiler
    is found, torch otherwise (resolve_backend); the choice is `self.backend` (and why,
    `self.backend_reason`), made once here.
    backend="torch": the generated torch step and the reference P-stage/merge (any dtype, any device).
    backend="triton": every spiking layer runs its neuron's generated Triton kernels (S-stage, P-stage)
    and the merge kernel; float32 only; compiled on CUDA, interpreted on the CPU (slow: for tests).
    backend="cpu": every spiking layer runs its neuron's generated C kernels (S-stage step, P-stage,
    the merge's ε part; compiled with the system C compiler on first use, ops/native.py), the GEMMs
    in torch; float32 or float64, CPU tensors.
    A readout="linear" layer has no dynamics and no kernels (y = I is the GEMM itself): it always runs
    the torch stages. trace_dtype: storage of the weight traces ε, torch.float32 or (triton backend)
    torch.bfloat16 (half the memory; arithmetic stays float32, docs/kernels.md bounds the drift).
    drop_spike_paths (torch backend): leave out the paths through each neuron's own previous spike,
    as the authors' release does (docs/hypr.md §7), for comparisons; hyprgen keeps them by default.
    readout_memory (docs/hypr.md §3a): the hidden layers' learning signal keeps the readout's own
    memory (its state's leak), at B·n·m·R more floats per hidden layer (R = n_out · d_readout routes,
    ops/readout_memory.py); the default under a readout with state (the LI readout). False: the
    paper's same-step signal (§3). A readout without state (linear) has no memory to keep: either
    value computes the same gradient.
    The backend never changes silently: anything a backend cannot run raises.
    """

    def __init__(self, net: RSNN, chunk: int = 64, loss: str = "ce", backend: str = "auto",
                 trace_dtype: torch.dtype | None = None, drop_spike_paths: bool = False,
                 readout_memory: bool | None = None, check_finite: bool = True, process_group=None):
        super().__init__(net, loss, check_finite, process_group)
        net = self.net   # unwrapped from DistributedDataParallel
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
            raise ValueError(f"chunk (λ) must be a positive integer, got {chunk!r}")
        problem = option_problem(backend, trace_dtype, drop_spike_paths)
        if problem is not None:
            raise ValueError(problem)
        self.requested_backend = backend
        self.backend, self.backend_reason = resolve_backend(backend, net, trace_dtype, drop_spike_paths)
        self.chunk, self.trace_dtype = chunk, trace_dtype
        self.drop_spike_paths = drop_spike_paths
        if readout_memory not in (None, True, False):
            raise ValueError(f"readout_memory must be True, False or None (the default), got {readout_memory!r}")
        self.readout_memory = net.layers[-1].d > 0 if readout_memory is None else readout_memory
        # K_κ = 1 (docs/hypr.md §3a): one trace F for the top hidden layer instead of one per readout neuron
        self.shared_memory = self.readout_memory and len(net.layers) > 1 and readout_jacobians_shared(net.layers[-1])
        self.stages = [self._stages_for(i, layer) for i, layer in enumerate(net.layers)]
        self._stream: tuple[list[LayerState], list[Traces], list[ReadoutTraces | None]] | None = None
        self._stream_step = 0   # steps the stream has run (where the finiteness guard reports a step)
        # per layer: an ε the next merge may overwrite (`_spare_traces`), or None; empty outside a call
        self._spare_eps: list[torch.Tensor | None] = [None] * len(net.layers)

    def _stages_for(self, index: int, layer):
        if self.backend == "torch" or isinstance(layer.neuron, LinearNeuron):
            return TorchStages(self.drop_spike_paths)
        if self.backend == "cpu":
            return CpuStages(load_cpu_kernels(layer.neuron))
        return TritonStages(loader.load_kernels(layer.neuron))

    # -- public API ----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, x: torch.Tensor, target: torch.Tensor, optimizer=None, mask: torch.Tensor | None = None) -> StepResult:
        """Sequence mode: accumulate the gradient of the whole sequence x [B, T, n_in] into .grad,
        then (if given) one optimizer step. State and traces start from zero."""
        self._refuse_autocast()
        self._prepare(x, target, mask, optimizer)
        normalizer = self._normalizer(target, mask, x)
        return self.step_pieces([(x, target, mask)], optimizer, normalizer, keep_outputs=True)

    @torch.no_grad()
    def step_pieces(self, pieces: Iterable, optimizer=None, normalizer: float | None = None,
                    keep_outputs: bool = False) -> StepResult:
        """Sequence mode for a sequence that arrives in consecutive pieces, e.g. generated or read
        from disk while training: pieces yields (x_k [B, T_k, n_in], target_k) or (x_k, target_k,
        mask_k). Only one piece is held at a time, so memory does not grow with the total length.

        The gradient is that of the whole sequence, as `step` on the concatenation computes it:
        chunks of λ steps run within each piece, and a piece's end only adds a chunk boundary, which
        does not change HYPR's gradient (docs/hypr.md §4). normalizer: the loss normalizer of the
        whole sequence; by default the count of labelled steps over all pieces (as `step`), which is
        known only after the last piece: the gradient of this call is scaled by it then (gradients
        already in .grad are kept apart and added back). keep_outputs=False returns outputs=None.
        """
        self._refuse_autocast()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        unnormalized = normalizer is None   # scaled at the end, by the count of every piece (and process)
        kept_grads = self._set_aside_grads() if unnormalized or self.parallel.active else None
        state = carried = None
        count, total, outputs, t0 = 0.0, None, [], 0
        with self._spare_traces():
            for k, piece in enumerate(pieces):
                x, target, mask = self._check_piece(k, piece, state)
                if state is None:
                    state, carried, total = self.net.init_state(x.shape[0]), self._zero_carried(x.shape[0]), \
                        x.new_zeros(())
                count += losses.counted_terms(self.loss, target, mask, self.net.n_out)
                for s in range(0, x.shape[1], self.chunk):
                    sl = slice(s, s + self.chunk)
                    # every trace here is this call's own (the first chunk's are _zero_carried's): recycled
                    y, loss, state, carried = self._train_chunk(x[:, sl], target[:, sl],
                                                                None if mask is None else mask[:, sl], state, carried,
                                                                1.0 if unnormalized else normalizer, t0 + s,
                                                                recycle=True)
                    if keep_outputs:
                        outputs.append(y)
                    total += loss
                t0 += x.shape[1]
        if state is None:
            raise ValueError("step_pieces got no pieces: the sequence is empty")
        if self.parallel.active:
            count = self.parallel.total(count, total) if unnormalized else count
            total = self.parallel.sum_gradients(self.net.parameters(), total.reshape(1))[0]
        if kept_grads is not None:
            count = max(count, 1.0) if unnormalized else 1.0  # as losses.default_normalizer
            self._scale_and_restore_grads(1.0 / count, kept_grads)
            total = total / count
        self._finish(optimizer)
        return StepResult(total, torch.cat(outputs, 1) if keep_outputs else None)

    @torch.no_grad()
    def stream(self, x: torch.Tensor, target: torch.Tensor, optimizer, mask: torch.Tensor | None = None) -> StepResult:
        """Streaming mode: x [B, T, n_in] is the next piece of an endless input. Each chunk of λ steps
        gets its own loss (normalized within the chunk) and an optimizer step; state and traces carry
        over to the next call (reset with `reset_stream`). Returns the loss of this call's outputs over
        its labelled steps (the chunk losses weighted by their labelled terms; 0 if none is labelled)."""
        self._refuse_autocast()
        self.net.check_input(x)
        losses.check_target(self.loss, (x.shape[0], x.shape[1], self.net.n_out), target, mask)
        if self._stream is None or self._stream[0][0].o.shape[0] != x.shape[0]:
            if self._stream is not None:
                raise ValueError(f"the stream carries batch size {self._stream[0][0].o.shape[0]}, got {x.shape[0]}; "
                                 "call reset_stream() to start a new stream")
            self._stream = (self.net.init_state(x.shape[0]), self._zero_carried(x.shape[0]))
        state, carried = self._stream
        outputs, loss_sum, counted = [], x.new_zeros(()), 0.0
        with self._spare_traces():
            for s in range(0, x.shape[1], self.chunk):
                sl = slice(s, s + self.chunk)
                t_c, m_c = target[:, sl], None if mask is None else mask[:, sl]
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                kept = self._set_aside_grads() if self.parallel.active else None
                normalizer = self._normalizer(t_c, m_c, x)
                # the first chunk's traces are the stream's (self._stream, maybe a checkpoint's): kept intact
                y, loss, state, carried = self._train_chunk(x[:, sl], t_c, m_c, state, carried, normalizer,
                                                            self._stream_step, recycle=s > 0)
                loss = self._sum_over_processes(loss, kept)   # the chunk's gradient of the whole batch
                self._stream_step += t_c.shape[1]
                self._finish(optimizer)
                outputs.append(y)
                loss_sum += loss * normalizer
                counted += self.parallel.total(losses.counted_terms(self.loss, t_c, m_c, self.net.n_out), x)
        self._stream = (state, carried)
        return StepResult(loss_sum / max(counted, 1.0), torch.cat(outputs, 1))

    def carried_bytes(self, batch: int) -> int:
        """Bytes carried from one chunk to the next for this batch size (docs/hypr.md §6): the traces
        ε, ε_b, Θ, with readout memory the traces G, G_b, G_θ (§3a), and every layer's state, as this
        learner allocates them (trace_dtype included)."""
        (traces, memory), states = self._zero_carried(batch), self.net.init_state(batch)
        tensors = [x for t in traces for x in (t.eps, t.eps_b, t.Theta)] + [x for s in states for x in (*s.r, s.o)]
        tensors += [x for g in memory if g is not None for x in (g.G, g.G_b, g.G_theta)]
        return sum(x.numel() * x.element_size() for x in tensors)

    def reset_stream(self) -> None:
        self._stream, self._stream_step = None, 0

    def stream_state(self) -> dict:
        """The carried stream (states and traces) as tensors, for checkpoints."""
        if self._stream is None:
            return {}
        states, (traces, memory) = self._stream
        return {"states": [(s.r, s.o) for s in states], "step": self._stream_step,
                "traces": [(t.eps, t.eps_b, t.Theta) for t in traces],
                "memory": [None if g is None else (g.G, g.G_b, g.G_theta) for g in memory]}

    def load_stream_state(self, saved: dict) -> None:
        if not saved:
            self.reset_stream()
            return
        memory = saved.get("memory") or [None] * len(saved["traces"])
        expected = self._zero_carried(1)[1]   # which layers this learner carries G for
        if [g is None for g in memory] != [g is None for g in expected]:
            raise ValueError(f"the saved stream does not carry the readout-memory traces this learner "
                             f"(readout_memory={self.readout_memory}) needs: it was saved by another configuration")
        self._stream_step = int(saved.get("step", 0))
        self._stream = ([LayerState(tuple(r), o) for r, o in saved["states"]],
                        ([Traces(*t) for t in saved["traces"]],
                         [None if g is None else ReadoutTraces(*g) for g in memory]))

    # -- one chunk -----------------------------------------------------------------------------

    def _zero_carried(self, B: int) -> tuple[list[Traces], list[ReadoutTraces | None]]:
        """Zero traces per layer: ε, ε_b, Θ; and G, G_b, G_θ of every hidden layer with readout memory."""
        traces, memory = [], []
        readout, top_hidden = self.net.layers[-1], len(self.net.layers) - 2
        routes = readout.n * readout.d
        for i, (layer, stages) in enumerate(zip(self.net.layers, self.stages)):
            p = len(layer.neuron.META["params"])
            narrow = self.trace_dtype is not None and isinstance(stages, TritonStages)  # only ε, G stored narrower
            t = Traces.zeros(B, layer.n, layer.d, layer.m, p, layer.W_in)
            traces.append(Traces(t.eps.to(self.trace_dtype), t.eps_b, t.Theta) if narrow else t)
            hidden = i < len(self.net.layers) - 1
            memory.append(ReadoutTraces.zeros(1 if self.shared_memory and i == top_hidden else routes, B, layer.n, layer.m,
                                              p, layer.W_in,
                                              self.trace_dtype if narrow else None)
                          if self.readout_memory and hidden and routes else None)
        return traces, memory

    def _check_piece(self, k: int, piece, state):
        """(x, target, mask) of piece k, checked; the batch size must stay that of piece 0."""
        if not isinstance(piece, (tuple, list)) or len(piece) not in (2, 3):
            raise ShapeError(f"piece {k} must be a tuple (x, target) or (x, target, mask), got "
                             f"{type(piece).__name__}{'' if not isinstance(piece, (tuple, list)) else f' of {len(piece)}'}")
        x, target, mask = (*piece, None) if len(piece) == 2 else piece
        self.net.check_input(x)
        losses.check_target(self.loss, (x.shape[0], x.shape[1], self.net.n_out), target, mask)
        if state is not None and state[0].o.shape[0] != x.shape[0]:
            raise ShapeError(f"piece {k} has batch size {x.shape[0]}, the sequence started with {state[0].o.shape[0]}")
        return x, target, mask

    def _refuse_autocast(self) -> None:
        problem = autocast_problem(self.net.layers[0].W_in.device)
        if problem is not None:
            raise ValueError(problem)

    def _check_backend(self, x: torch.Tensor) -> None:
        """The backend was resolved for the network as it was; a network moved or cast since is refused
        (never a silent switch)."""
        if self.backend == "triton" and x.dtype != torch.float32:
            raise ValueError(f"backend='triton' computes in float32; the network and input are {x.dtype} "
                             "(use backend='torch')")
        if self.backend == "cpu" and (x.device.type != "cpu" or x.dtype not in CPU_DTYPES):
            raise ValueError(f"backend='cpu' runs float32 or float64 CPU tensors; the input is {x.dtype} on "
                             f"{x.device} (make a new HYPR after moving the network: backend='auto' picks again)")

    @contextmanager
    def _spare_traces(self):
        """Within one call of step_pieces or stream, each layer's merge writes ε^λ into the ε^0 of the
        chunk before (ping-pong): an ε-sized tensor (B·n·d·m values, 18 MB for the cue suite) allocated
        and freed per chunk costs page faults on the CPU, where glibc hands large blocks back to the
        system: 40 % of a chunk at λ = 16 (docs/results/cpu_target.md). Only traces the call itself made
        are recycled (recycle=True); the spares are dropped when the call ends, so nothing outside it
        (a stream's saved state, a checkpoint) is ever overwritten. The cpu stages merge in place
        instead (MERGES_IN_PLACE: ε^λ over the ε^0 it replaces), under the same rule: one ε-sized buffer
        per layer, not two, at the chunk's peak.

        Likewise the cpu stages of every layer below the readout write their chunk-sized outputs (states,
        currents, p^τ, g^τ, E^τ: ops/dispatch.py ChunkBuffers) into the tensors of the chunk before,
        dead by then; the readout's are the user's outputs y, so they are never rewritten."""
        below_readout = [stages for stages in self.stages[:-1] if isinstance(stages, CpuStages)]
        try:
            for stages in below_readout:
                stages.buffers = ChunkBuffers()
            yield
        finally:
            self._spare_eps = [None] * len(self.net.layers)
            for stages in below_readout:
                stages.buffers = None

    def _merge(self, i: int, stages, traces: Traces, sweep, pre, recycle: bool):
        """stages.merge of layer i: over its own ε^0 when the stages merge in place and the traces are this
        call's (recycle), else into its spare ε when there is one (_spare_traces). Within a call the
        batch and dtype are fixed, so a spare always fits: the merge's trace_buffer raises if not."""
        if recycle and stages.MERGES_IN_PLACE:
            return stages.merge(traces, sweep, pre, out=traces.eps)
        spare, self._spare_eps[i] = self._spare_eps[i], None
        return stages.merge(traces, sweep, pre, out=spare)

    def _train_chunk(self, x, target, mask, state, carried, normalizer, t0: int, recycle: bool = False):
        """S-stage, loss, P-stage and merge of one chunk x [B, λ, n_in] (steps t0…t0+λ-1 of the sequence or
        stream). Gradients go to .grad; with check_finite, the finiteness guard checks the chunk first.
        recycle: the carried-in traces are this call's own, so their ε may take the next chunk's ε^λ.

        With readout memory (docs/hypr.md §3a) the hidden layers' signal starts from the readout's
        effective error g (its sweep's q c + λγ: the errors of the whole chunk through the readout's
        leak) instead of λγ, and each hidden layer also runs its sweep for the R route signals (the
        readout's E^τ, routed down the same-step paths like the signal), stacked with the batch; the
        readout's q^0 and Φ turn them into the cross-chunk term and the traces G (ops/readout_memory.py)."""
        self._check_backend(x)
        h = x.transpose(0, 1)  # [λ, B, n_in]
        kept, new_state = [], []
        for layer, stages, s in zip(self.net.layers, self.stages, state):
            h, k, s_out = stages.s_stage(layer, h, s)
            kept.append(k)
            new_state.append(s_out)
        r_prevs = [k.r_prev for k in kept]   # for the finiteness guard
        y = h.transpose(0, 1)  # [B, λ, n_out]
        loss, dl_dy = losses.learning_signal(self.loss, y, target, mask, normalizer)
        signal = dl_dy.transpose(0, 1)  # [λ, B, n_out]: λ^τ of the readout
        traces, memory = carried
        new_traces, new_memory = [None] * len(traces), [None] * len(memory)
        lanes = readout = None   # with readout memory: [λ, (1 + R)·B, n] the signal and route signals; the readout's sweep
        top = len(self.net.layers) - 1
        grads = [None] * len(self.net.layers)
        for i in range(top, -1, -1):  # top-down
            layer, stages, k = self.net.layers[i], self.stages[i], kept[i]
            if memory[i] is None:   # λ^τγ^τ only where a layer below reads it
                sweep, signal_gamma = stages.p_stage(layer, k, signal, signal_gamma=i > 0)
            else:   # one sweep over (1 + R)·B lanes: the signal's B, then the R route signals' (1.6× faster
                #     than two calls with the torch P-stage, ECG size; one launch instead of two on a GPU)
                B = k.current.shape[1]
                both, both_gamma = stages.p_stage(layer, k, lanes, signal_gamma=i > 0, e_lanes=B)   # no route E
                (sweep, route), (signal_gamma, route_gamma) = both.split_lanes(B), (None, None) if i == 0 else \
                    both_gamma.split([B, both_gamma.shape[1] - B], 1)
            cross = None
            if memory[i] is not None:   # before the merge, which may write ε^λ over the ε^0 read here
                in_place = recycle and stages.MERGES_IN_PLACE   # G' over G: the call's own traces only
                if self.shared_memory and i == top - 1:   # one F for every readout neuron (K_κ = 1)
                    W_out = self.net.layers[top].W_in                                        # [n_out, n]
                    cross, new_memory[i] = stages.shared_readout_merge(
                        memory[i], traces[i], route, k.pre, torch.einsum("bk,ki->bi", readout.q0[..., 0], W_out),
                        readout.Phi[:, 0, 0, 0], in_place)
                    if i > 0:   # per route again below
                        route_gamma = torch.einsum("tbi,ki->tkbi", route_gamma, W_out).flatten(1, 2)
                        lanes = torch.cat([signal_gamma, route_gamma], 1) @ layer.W_in
                else:
                    cross, new_memory[i] = stages.readout_memory_merge(memory[i], traces[i], route, k.pre, readout.q0,
                                                                       readout.Phi, in_place)
                    if i > 0:   # [λ, (1 + R)·B, n_in]: the signal and the route signals of the layer below
                        lanes = both_gamma @ layer.W_in
            grad, new_traces[i] = self._merge(i, stages, traces[i], sweep, k.pre, recycle)
            if cross is not None:
                grad = ChunkGradient(grad.W + cross.W, grad.b + cross.b, grad.theta + cross.theta)
            grads[i] = grad
            kept[i] = k = None   # its pre and current are dead: freed before the layers below run (r_prevs
            #                      keeps r_prev for the guard)
            if i == top and self.readout_memory and i > 0 and layer.d > 0:
                readout = sweep
                signal = sweep.g @ layer.W_in                   # λ̃^τ: the chunk's errors through the readout's leak
                lanes = readout_lanes(signal, sweep.E, layer.W_in, self.shared_memory,
                                      getattr(self.stages[i - 1], "buffers", None))
            elif i > 0 and memory[i] is not None:
                signal = lanes[:, :signal.shape[1]]
            elif i > 0:
                signal = signal_gamma @ layer.W_in  # ∂l^τ/∂x^τ through same-step paths: [λ, B, n_in]
        if self.check_finite:
            self._check_chunk(r_prevs, new_state, y, loss, grads, t0)
        for layer, grad in zip(self.net.layers, grads):
            add_layer_grads(layer, grad.W, grad.b, grad.theta)
        if recycle:   # ε^0 is dead once the chunk is through: the next merge writes into it
            self._spare_eps = [None if stages.MERGES_IN_PLACE else t.eps
                               for t, stages in zip(traces, self.stages)]
        return y, loss, new_state, (new_traces, new_memory)

    def _check_chunk(self, r_prevs: list[torch.Tensor], new_state: list[LayerState], y, loss,
                     grads: list[ChunkGradient], t0: int) -> None:
        """The finiteness guard on one chunk (runtime/finite.py): every layer's state at every step, the
        readout's output, the loss and the chunk's gradients; one sum each, one sync."""
        named = [(i, name, g) for i, grad in enumerate(grads)
                 for name, g in zip(GRADIENT_NAMES, (grad.W, grad.b, grad.theta))]
        tensors = r_prevs + [r for s in new_state for r in s.r] + [y, loss] + [g for *_, g in named]
        if finite.all_finite(tensors):
            return
        span = f"the chunk at steps {t0}–{t0 + y.shape[1] - 1}"
        finite.raise_for_states(self.net, [finite.chunk_states(r_prev, s.r) for r_prev, s in zip(r_prevs, new_state)],
                                t0 - 1, span)
        finite.raise_for_values(self.net, y, loss, named, span)
        finite.raise_unlocated(span)
