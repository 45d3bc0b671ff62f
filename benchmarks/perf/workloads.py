"""What one benchmark configuration runs: the network, its data and one training sequence.

`Workload(config).run(T)` computes the gradient of one sequence of T steps into .grad (no optimizer
step: every repetition starts from the same weights) and returns the loss. The data are the same for
every method of a suite (same seeds):

- bernoulli: x ~ Bernoulli(0.1) on n_in channels and a uniformly random class at every step
  (per-step cross-entropy over all steps), generated piece by piece from per-piece seeds;
- cue: hyprgen.data.CueTask(group=5) (15 channels, 2 classes, recall at the end), delay T − 20.

HYPR reads the sequence through `HYPR.step_pieces`, one piece (about `config.piece` steps, a multiple
of λ) generated at a time, as a user streams a long recording: neither the input nor the outputs
are ever held whole, so its memory does not depend on T. BPTT, EProp and snnTorch take the whole
x [B, T, n_in] (BPTT must keep the whole graph anyway; EProp is measured at small T only).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

import hyprgen
from hyprgen.runtime import losses
from hyprgen.train.learners import make_learner, options_for

from .configs import Config

INPUT_RATE = 0.1


# -- data ----------------------------------------------------------------------------------------

def piece_length(config: Config) -> int:
    """Steps per input piece: a multiple of λ near config.piece (at least one chunk)."""
    lam = config.chunk or 1
    return lam * max(1, round(config.piece / lam))


def bernoulli_piece(config: Config, index: int, steps: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Piece `index` of the Bernoulli stream: (x [B, steps, n_in], target [B, steps]). Pieces of the
    same index and length are identical for every method on one kind of device (seeded by
    config.seed and index). Drawn where they are used: on a GPU, drawing them on the host and
    copying them over would be timed as part of the method."""
    gen = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + index)
    x = torch.bernoulli(torch.full((config.B, steps, config.n_in), INPUT_RATE, device=device), generator=gen)
    y = torch.randint(0, config.n_out, (config.B, steps), generator=gen, device=device)
    return x, y


def cue_sequence(config: Config, T: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    from hyprgen.data import CueTask

    task = CueTask(group=5, delay=max(T - 20, 1))
    x, y = task.batch(config.B, torch.Generator().manual_seed(config.seed))
    return x[:, :T].to(device), y[:, :T].to(device)


def pieces(config: Config, T: int, device):
    """The sequence of T steps as consecutive pieces (x, target)."""
    if config.task == "cue":
        x, y = cue_sequence(config, T, device)
        P = piece_length(config)
        for s in range(0, T, P):
            yield x[:, s:s + P], y[:, s:s + P]
        return
    P = piece_length(config)
    for k, s in enumerate(range(0, T, P)):
        yield bernoulli_piece(config, k, min(P, T - s), device)


def whole_sequence(config: Config, T: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    if config.task == "cue":
        return cue_sequence(config, T, device)
    xs, ys = zip(*pieces(config, T, device))
    return torch.cat(xs, 1), torch.cat(ys, 1)


# -- snnTorch's LIF network of the same size --------------------------------------------------------

class SnnTorchLIF(nn.Module):
    """snnTorch's recurrent LIF RSNN with the sizes of hyprgen's: Linear(n_in → n) into
    snn.RLeaky (all-to-all recurrent Linear(n → n), reset by subtraction, learnable β, fast-sigmoid
    surrogate), then Linear(n → n_out) into a non-spiking snn.Leaky readout (reset_mechanism="none")
    whose membrane is the output. The input projection of all steps is one GEMM, as in hyprgen."""

    def __init__(self, n_in: int, n: int, n_out: int, seed: int):
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        torch.manual_seed(seed)
        self.fc_in, self.fc_out = nn.Linear(n_in, n), nn.Linear(n, n_out)
        self.lif = snn.RLeaky(beta=torch.full((n,), 0.9), linear_features=n, learn_beta=True,
                              spike_grad=surrogate.fast_sigmoid(), reset_mechanism="subtract")
        self.readout = snn.Leaky(beta=torch.full((n_out,), 0.95), learn_beta=True, reset_mechanism="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, n_in] → readout membrane [B, T, n_out]."""
        B = x.shape[0]
        current = self.fc_in(x).unbind(1)
        spk = x.new_zeros(B, self.fc_in.out_features)
        mem = torch.zeros_like(spk)
        out = x.new_zeros(B, self.fc_out.out_features)
        outs = []
        for cur in current:
            spk, mem = self.lif(cur, spk, mem)
            _, out = self.readout(self.fc_out(spk), out)
            outs.append(out)
        return torch.stack(outs, 1)


# -- bytes held by the learner -----------------------------------------------------------------

class SavedTensorBytes:
    """Counts the bytes autograd saves for backward (distinct storages) while active: the memory a
    BPTT graph holds, independent of the allocator."""

    def __init__(self):
        self.bytes, self._seen = 0, set()

    def _pack(self, t: torch.Tensor):
        s = t.untyped_storage()
        key = (s.data_ptr(), s.nbytes())
        if key not in self._seen:
            self._seen.add(key)
            self.bytes += s.nbytes()
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)


# -- one configuration -------------------------------------------------------------------------------

class Workload:
    """The model, learner and data of one configuration; `run(T)` = one training sequence's gradient."""

    def __init__(self, config: Config):
        self.config, c = config, config
        self.device = torch.device(c.device)
        if c.method == "snntorch":
            self.model = SnnTorchLIF(c.n_in, c.n, c.n_out, c.seed).to(self.device)
            self.learner = None
        else:
            self.model = hyprgen.RSNN(c.n_in, c.n, c.n_out, neuron=c.neuron, readout="li", seed=c.seed,
                                      weight_scale=c.weight_scale).to(self.device)
            given = {"chunk": c.chunk, "backend": c.backend,   # the factory takes those of c.method
                     "readout_memory": c.readout_memory}
            self.learner = make_learner(c.method, self.model, **options_for(c.method, given))
        self.saved = None  # SavedTensorBytes of the last counted run (BPTT, snnTorch)

    def zero_grad(self) -> None:
        self.model.zero_grad(set_to_none=True)

    def run(self, T: int, count_saved: bool = False) -> float:
        c = self.config
        if c.method == "hypr":
            return float(self.learner.step_pieces(pieces(c, T, self.device)).loss)
        x, y = whole_sequence(c, T, self.device)
        if c.method == "eprop":
            return float(self.learner.step(x, y).loss)
        counter = SavedTensorBytes() if count_saved else None
        with counter.hooks() if counter else nullcontext():
            if c.method == "bptt":
                loss = self.learner.step(x, y).loss
            else:  # snnTorch: its forward, the same loss
                with torch.enable_grad():
                    out = self.model(x)
                    loss = losses.loss_sum("ce", out, y, None) / losses.default_normalizer("ce", y, None, c.n_out)
                    loss.backward()
        if counter:
            self.saved = counter
        return float(loss.detach())

    @torch.no_grad()
    def hidden_spike_rate(self, T: int) -> float | None:
        """Mean spike rate of the hidden layer on the first T steps (hyprgen networks only)."""
        if self.config.method == "snntorch":
            return None
        x, _ = whole_sequence(self.config, T, self.device)
        _, _, recorded = self.model(x, record=True)
        return float(recorded[0].float().mean())

    def learner_bytes(self) -> dict:
        """Bytes the learner's own tensors hold, by definition per method (docs/results/performance.md)."""
        c = self.config
        params = sum(p.numel() * p.element_size() for p in self.model.parameters())
        if c.method in ("hypr", "eprop"):
            # the configuration's rule: readout memory adds the traces G (R× ε), same-step does not
            carried = make_learner("hypr", self.model, chunk=c.chunk or 1, backend="torch",
                                   readout_memory=c.readout_memory).carried_bytes(c.B)
            return {"kind": "carried traces ε, ε_b, Θ and states (HYPR.carried_bytes)", "bytes": carried,
                    "params_bytes": params}
        if self.saved is None:
            return {"kind": "not counted", "bytes": None, "params_bytes": params}
        return {"kind": "tensors autograd saved for backward (distinct storages)", "bytes": self.saved.bytes,
                "params_bytes": params}
