"""What the compiler, the generated modules and the runtime share, written once.

The compiler writes modules to this contract, the runtime reads them by it, and neither imports the
other for it (layers: cli → train → runtime → ops → contract; compiler → contract; generated modules
→ ops.libdevice, contract). A change to the generated module's API bumps IR_VERSION, which every
generated module records in META and the runtime checks on load.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

IR_VERSION = 2  # 2: P-stage `p_stage` (was chunk_sweep; θ terms per sample), kernels `<neuron>_<stage>_kernel`

# The carried component that holds the neuron's own previous spike z^{t-1} (docs/hypr.md §1).
PREV_SPIKE = "z"

# Targets of the cross-entropy loss with this value are not counted (torch's default ignore_index).
IGNORE_INDEX = -100

# The local Jacobian blocks of one step (docs/hypr.md §2), in the order the generated
# `step_with_jacobians` returns them: A ∂r^t/∂r^{t-1} [d, d], c ∂r^t/∂I^t [d], D ∂r^t/∂θ [d, p],
# a ∂o^t/∂r^{t-1} [d], gamma ∂o^t/∂I^t (scalar), delta ∂o^t/∂θ [p].
JACOBIAN_BLOCKS = ("A", "c", "D", "a", "gamma", "delta")
MATRIX_BLOCKS = ("A", "D")           # nested tuples (row per carried component)
VECTOR_BLOCKS = ("c", "a", "delta")  # tuples; gamma is a single entry

# The symbol of the surrogate derivative ψ = σ'(h) in the derived expressions.
SURROGATE_SYMBOL = "psi"

# What a generated torch module (generated/<name>.py) defines; the runtime refuses a module without.
#   init_state(batch, n, dtype, device) -> d tensors [B, n]
#   step(state, I, params) -> (next state, o)                      no graph: HYPR, EProp
#   step_autograd(state, I, params) -> (next state, o)             surrogate injected: BPTT
#   step_with_jacobians(state, I, params) -> (next state, o, {block: entries})
#   p_stage(r_prev, I, signal, params) -> (q0, g, signal·γ, E, Φ, θ terms per sample, Θ_in)  (ops/p_stage.py)
TORCH_MODULE_API = ("META", "init_state", "step", "step_autograd", "step_with_jacobians", "p_stage")

# The Triton kernels of a neuron sit in generated/<name><TRITON_SUFFIX>.py, one kernel per stage,
# named by `kernel_name` so that a profiler trace tells one neuron's kernels from another's.
TRITON_SUFFIX = "_triton"
KERNEL_STAGES = ("s_stage", "p_stage")

# The C kernels of a neuron (the cpu target) sit in generated/<name><CPU_SUFFIX>.c: per stage and
# precision one function <name>_<stage>_<f32|f64> (codegen/c_module.py), with the signatures below
# (ctypes: ops/cpu_kernels.py).
CPU_SUFFIX = "_cpu"
# merge_fused and route_merge: d > 0 only
CPU_STAGES = ("s_stage", "p_stage", "merge", "merge_fused", "merge_small", "route_merge")
CPU_SIGNATURES = {   # stage → (tensor arguments, int64 sizes); the thread count comes last
    "s_stage": (("cur", "states", "outs", "theta"), ("B", "n", "lam")),
    "p_stage": (("r_prev", "cur", "signal", "theta", "q0", "g", "sg", "E", "Phi", "theta_grad", "Theta_in"),
                ("B", "B_in", "B_E", "n", "lam")),
    "merge": (("eps", "q0", "Phi", "eps_out", "grad_W"), ("B", "n", "m")),
    "merge_fused": (("eps", "q0", "Phi", "E", "pre", "eps_out", "grad_W"), ("B", "n", "m", "lam")),
    "merge_small": (("eps_b", "Theta", "q0", "Phi", "E", "g", "theta_grad", "Theta_in", "eps_b_out", "Theta_out",
                     "grad_b", "grad_theta"), ("B", "n", "lam")),
    "route_merge": (("G", "eps", "q0w", "gw", "pre", "phi", "wq", "G_out", "grad_W"),
                    ("R", "B", "n", "m", "lam", "ld_gw")),
}
CPU_STATUS = ("merge_fused", "route_merge")   # kernels that return an int: 0, or 1 when an allocation inside failed
# The fingerprint of that interface, which every generated C file returns from <name>_abi(): a file
# written for other signatures is refused when loaded (ops/cpu_kernels.py) instead of being called
# with arguments it does not take (a crash, or memory written where it should not be).
CPU_ABI = hashlib.sha256(repr((sorted(CPU_SIGNATURES.items()), CPU_STATUS)).encode()).hexdigest()[:16]

TRITON_MODULE_API = ("NAME", "SPEC_HASH", "D", "P", "NOT_SPECIALIZED")


def spec_hash(source: str) -> str:
    """What META["spec_hash"] records: the sha256 of the spec file's text (a stale module differs)."""
    return hashlib.sha256(source.encode()).hexdigest()


# Every file the compiler writes opens with the sha256 of the rest of it (its body), so that the loader
# refuses a module edited, damaged or extended since (a checksum, not a signature: docs/reliability.md).
# The line is a comment of the file's language: `#` in Python, `//` in C.
CONTENT_HASH_PREFIX = "# content sha256 "
CONTENT_HASH_NOTE = " of the lines below: checked before import"


def seal(body: str, comment: str = "#") -> str:
    """A generated file's text: `body` under a first line that records its sha256 (deterministic:
    the same body, the same file)."""
    prefix = CONTENT_HASH_PREFIX.replace("#", comment, 1)
    return f"{prefix}{hashlib.sha256(body.encode()).hexdigest()}{CONTENT_HASH_NOTE}\n{body}"


def seal_problem(text: str) -> str | None:
    """Why a generated file's text is not what the compiler wrote (None when its first line's sha256 is
    that of the lines below it). One sha256 over the file: ~15 µs for a 10 KB module."""
    first, _, body = text.partition("\n")
    prefix = re.escape(CONTENT_HASH_PREFIX[1:])
    found = re.fullmatch(f"(?:#|//){prefix}([0-9a-f]{{64}}){re.escape(CONTENT_HASH_NOTE)}", first)
    if found is None:
        return "it has no content sha256 in its first line"
    if hashlib.sha256(body.encode()).hexdigest() != found.group(1):
        return "its content does not match the sha256 in its first line"
    return None


def kernel_name(neuron: str, stage: str) -> str:
    """The generated kernel of one stage: brf, "s_stage" → brf_s_stage_kernel."""
    if stage not in KERNEL_STAGES:
        raise ValueError(f"unknown stage {stage!r}; generated kernels: {', '.join(KERNEL_STAGES)}")
    return f"{neuron}_{stage}_kernel"


# Names a spec symbol may not take because the generated torch and Triton modules define or use them
# (imports, functions, arguments and locals of the step functions, the surrogate symbol). The
# compiler adds patterns of its own (t<digits>, reset<digits>, next_*, leading '_': hyprgen.spec).
TRITON_NAMES = frozenset({"tl", "triton", "libdevice", "float"})
GENERATED_NAMES = TRITON_NAMES | {
    "torch", "math", "META", "heaviside", "surrogate", "spike_with_surrogate", "init_state", "step",
    "step_autograd", "step_with_jacobians", "p_stage", "state", "params", SURROGATE_SYMBOL, "jacobians",
}


@dataclass(frozen=True)
class Init:
    """Initial distribution of a raw (trained) neuron parameter, as a spec declares it
    (hyprgen.spec.uniform / normal / constant) and as META records it (`to_dict`)."""

    dist: str  # "uniform" | "normal" | "constant"
    args: tuple[float, ...]

    def support(self) -> tuple[float, float]:
        if self.dist == "uniform":
            return self.args
        if self.dist == "constant":
            return (self.args[0], self.args[0])
        return (-math.inf, math.inf)

    def to_dict(self) -> dict:
        return {"dist": self.dist, "args": [float(a) for a in self.args]}
