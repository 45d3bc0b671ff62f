"""What the device check runs: the same steps on a GPU and in a dry run, at their own sizes.

A GPU run (CUDA): the ops tests' `cuda` cases (every shipped neuron's kernels compiled, against the
torch backend), `hyprgen build --verify` of two neurons, and the benchmark of issue 16: BRF, HYPR
backend="triton" vs backend="torch" vs BPTT, B ∈ {32, 128}, n ∈ {256, 1024}, T ∈ {1,024, 16,384},
λ ∈ {64, 128}. A dry run (CPU, Triton's interpreter): the same steps with the `cpu` cases of one
neuron and tiny sizes, so that CI runs every line of the script in about a minute.

The benchmark runs in order of value: first every configuration at the short T (each measures a time
per step that does not depend on T, and is the basis of the estimates for the long T), largest
layers first (the issue's targets are read at B = 128, n = 1024); then the long T: HYPR triton (its
memory must be flat in T), BPTT (its memory grows with T; may not fit), HYPR torch (the slowest).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..perf.configs import Config

NEURON = "brf"
WEIGHT_SCALE = 150.0    # the perf suite's BRF scale: the hidden layer fires on a few % of steps
VERIFY_NEURONS = ("brf", "adex")   # the benchmark's neuron, and one with exponentials and a cap


@dataclass(frozen=True)
class Sizes:
    B: tuple[int, ...]
    n: tuple[int, ...]
    T: tuple[int, int]          # the short T (measured first) and the long one
    chunk: tuple[int, ...]      # λ
    n_in: int
    n_out: int
    reps: int
    warmup_steps: int
    piece: int
    threads: int | None


@dataclass(frozen=True)
class Plan:
    mode: str                              # "gpu" | "dry-run"
    device: str                            # "cuda" | "cpu"
    budget_s: float                        # the default --budget-s
    tests: tuple[str, ...]                 # pytest arguments: what to collect and select
    steps: dict[str, tuple[float, float]]  # step → (estimate s, cap s)
    bench_prior_s: dict[str, float]        # a configuration's estimate before anything of its group ran
    sizes: Sizes

    def estimate(self, step: str) -> float:
        return self.steps[step][0]

    def cap(self, step: str) -> float:
        return self.steps[step][1]


GPU = Plan(
    mode="gpu", device="cuda", budget_s=480.0,
    tests=("tests/ops", "-k", "cuda"),
    steps={"runtime": (30, 90), "tests": (120, 200), "verify": (30, 90)},
    bench_prior_s={"triton": 30.0, "torch": 20.0, "bptt": 15.0},
    sizes=Sizes(B=(32, 128), n=(256, 1024), T=(1024, 16384), chunk=(64, 128), n_in=64, n_out=10, reps=3,
                warmup_steps=1024, piece=1024, threads=None),
)

DRY_RUN = Plan(
    mode="dry-run", device="cpu", budget_s=110.0,
    tests=("tests/ops", "-k", f"cpu and {NEURON}"),
    steps={"runtime": (10, 90), "tests": (20, 120), "verify": (15, 90)},   # caps for a busy CI machine
    bench_prior_s={"triton": 10.0, "torch": 5.0, "bptt": 5.0},
    sizes=Sizes(B=(2,), n=(8,), T=(8, 16), chunk=(4, 8), n_in=4, n_out=3, reps=1, warmup_steps=8, piece=8,
                threads=1),
)


def kind(config: Config) -> str:
    """"triton", "torch" (HYPR's backends) or "bptt"."""
    return config.backend if config.method == "hypr" else config.method


def bench_configs(plan: Plan) -> list[Config]:
    """The benchmark's configurations in the order they run (module docstring)."""
    s = plan.sizes
    common = dict(neuron=NEURON, n_in=s.n_in, n_out=s.n_out, weight_scale=WEIGHT_SCALE, reps=s.reps,
                  warmup_steps=s.warmup_steps, piece=s.piece, threads=s.threads, device=plan.device)
    layers = [(B, n) for B in sorted(s.B, reverse=True) for n in sorted(s.n, reverse=True)]
    chunks = sorted(s.chunk, reverse=True)

    # the suite names the layer: a configuration's name (and so its group, the basis of estimates
    # from a shorter T: benchmarks.perf.run.estimate) is then unique
    def hypr(backend, B, n, T, lam):
        return Config(f"device_B{B}_n{n}", "hypr", T=T, chunk=lam, backend=backend, B=B, n=n, **common)

    def bptt(B, n, T):
        return Config(f"device_B{B}_n{n}", "bptt", T=T, B=B, n=n, **common)

    short, long = s.T
    out = []
    for B, n in layers:
        out += [hypr(backend, B, n, short, lam) for lam in chunks for backend in ("triton", "torch")]
        out.append(bptt(B, n, short))
    out += [hypr("triton", B, n, long, lam) for B, n in layers for lam in chunks]
    out += [bptt(B, n, long) for B, n in layers]
    out += [hypr("torch", B, n, long, lam) for B, n in layers for lam in chunks]
    return out
