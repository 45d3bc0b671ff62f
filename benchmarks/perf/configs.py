"""The benchmark grid of issue 6: one `Config` per measured process.

Suites (docs/results/performance.md):
  brf   BRF RSNN, n = 256 recurrent hidden, n_in = 64, LI readout (10 classes), B = 32, Bernoulli
        input and a label at every step: HYPR at λ ∈ {1, 8, 32, 128, 512} (torch backend, and the cpu
        target; the triton backend instead on CUDA), BPTT and per-step EProp, T ∈ {256 … 65,536}.
  lif   the same network with LIF neurons: hyprgen's HYPR (λ = 128) and BPTT beside snnTorch's
        BPTT (RLeaky + Leaky readout, the same sizes).
  cue   the HYPR authors' cue-task setting: BRF-exp, 15 inputs, 256 recurrent hidden, LI readout,
        B = 32, T ∈ {256, 1024, 4096}, HYPR at λ ∈ {16, 64, 256} and BPTT.
`quick` shrinks every suite to seconds (to check the scripts; not a measurement).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

T_GRID = (256, 1024, 4096, 16384, 65536)
HYPR_CHUNKS = (1, 8, 32, 128, 512)
HEADLINE_CHUNK = 128  # the λ of the memory targets (measured at every T of the brf suite)
CUE_T = (256, 1024, 4096)
CUE_CHUNKS = (16, 64, 256)
SUITES = ("brf", "lif", "cue")


@dataclass(frozen=True)
class Config:
    suite: str
    method: str                # hypr | bptt | eprop | snntorch
    neuron: str
    T: int
    chunk: int | None = None   # λ (HYPR only)
    backend: str = "torch"     # HYPR's backend
    readout_memory: bool | None = None   # HYPR/EProp: None = the learner's default (docs/hypr.md §3a)
    n: int = 256
    n_in: int = 64
    n_out: int = 10
    B: int = 32
    task: str = "bernoulli"    # bernoulli (a label every step) | cue (the delayed cue task)
    weight_scale: float = 1.0
    seed: int = 0
    reps: int = 5
    warmup_steps: int = 1024   # HYPR/EProp warm up on min(T, this) steps; BPTT on the full T
    piece: int = 1024          # HYPR's input arrives in pieces of about this many steps (step_pieces)
    threads: int | None = None # torch intra-op threads (None: torch's default, one per core)
    device: str = "cpu"
    required: bool = False     # measured even when the time budget says skip

    @property
    def name(self) -> str:
        lam = f"_l{self.chunk}" if self.chunk else ""
        be = f"_{self.backend}" if self.method == "hypr" and self.backend != "torch" else ""
        memory = {None: "", True: "_mem", False: "_samestep"}[self.readout_memory] if self.method != "bptt" else ""
        return f"{self.suite}_{self.neuron}_{self.method}{lam}{be}{memory}_T{self.T}"

    @property
    def group(self) -> str:
        """Configurations that differ only in T (their time per step is comparable)."""
        return self.name.rsplit("_T", 1)[0]

    @property
    def label(self) -> str:
        if self.method == "hypr":
            memory = {None: "", True: ", readout memory", False: ", same-step"}[self.readout_memory]
            return f"HYPR λ={self.chunk}" + (f" ({self.backend}{memory})" if self.backend != "torch" or memory else "")
        return {"bptt": "BPTT", "eprop": "EProp (per step)", "snntorch": "snnTorch BPTT"}[self.method]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """From a saved run's "config" (keys this version does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def suite_configs(suite: str, quick: bool = False, cuda: bool = False, reps: int = 5,
                  threads: int | None = None) -> list[Config]:
    """Every configuration of one suite, grouped, T ascending within a group (the runner estimates
    a configuration's time and memory from the smaller T of its group)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    common = dict(reps=reps, threads=threads, device="cuda" if cuda else "cpu")
    if quick:
        common.update(n=16, n_in=8, B=4, warmup_steps=32, piece=64, reps=min(reps, 2))
    T_grid = (64, 256) if quick else T_GRID
    chunks = (1, 8, 32) if quick else HYPR_CHUNKS
    headline = 8 if quick else HEADLINE_CHUNK
    out: list[Config] = []

    # the targets of issue 6 read the brf suite's HYPR at the headline λ and its BPTT at every T:
    # those run whatever the time budget (memory can still rule them out)
    def hypr(neuron, lams, Ts, **kw):
        backends = ("torch", "triton") if cuda else ("torch", "cpu")   # the compiled target beside the reference
        for backend in backends:
            for lam in lams if backend == "torch" or not quick else lams[-1:]:   # quick: one λ of the others
                required = suite == "brf" and lam == headline and backend == "torch"
                out.extend(Config(suite, "hypr", neuron, T, chunk=lam, backend=backend, required=required,
                                  **{**common, **kw}) for T in Ts)

    def other(method, neuron, Ts, **kw):
        required = suite == "brf" and method == "bptt"
        out.extend(Config(suite, method, neuron, T, required=required, **{**common, **kw}) for T in Ts)

    # weight scales that make the hidden layer fire (a few % of steps; the rate is recorded): the
    # default initialization leaves these networks silent on this input. The work is dense either way.
    if suite == "brf":
        ws = dict(weight_scale=150.0)
        hypr("brf", chunks, T_grid, **ws)
        other("bptt", "brf", T_grid, **ws)
        other("eprop", "brf", T_grid, **ws)
    elif suite == "lif":
        ws = dict(weight_scale=30.0)
        hypr("lif", (headline,), T_grid, **ws)
        other("bptt", "lif", T_grid, **ws)
        other("snntorch", "lif", T_grid)  # snnTorch's own initialization (β = 0.9)
    else:
        cue = dict(task="cue", n_in=15, n_out=2, weight_scale=200.0)  # CueTask(group=5): (2 + 1) × 5 channels
        Ts = (64, 256) if quick else CUE_T
        hypr("brf_exp", (4, 16) if quick else CUE_CHUNKS, Ts, **cue)
        other("bptt", "brf_exp", Ts, **cue)
    return out
