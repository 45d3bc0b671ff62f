"""Shared helpers for runtime tests: active float64 networks, gradient comparison, subprocesses."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from hyprgen import verify


def active_network(neuron, **options):
    """A float64 RSNN and an input on which every spiking hidden layer fires at a moderate rate
    (hyprgen.verify.active_network, the same search `hyprgen build --verify` uses)."""
    net, x, _ = verify.active_network(neuron, **options)
    return net, x


def rel_rms(got, ref) -> float:
    """‖got − ref‖_RMS / ‖ref‖_RMS in float64 (the absolute RMS error of got when ref is all zero)."""
    ref64 = ref.double()
    scale = ref64.pow(2).mean().sqrt()
    return ((got.double() - ref64).pow(2).mean().sqrt() / scale).item() if scale > 0 else got.abs().max().item()


def assert_outputs_close(got: dict, ref: dict, tol: float, what: str = "") -> None:
    """Every output of ref has its shape and dtype in got, is finite (an element a kernel left unwritten
    is NaN under the nan_outputs fixture) and within `tol` relative RMS error."""
    for name, x_ref in ref.items():
        x = got[name]
        assert x.shape == x_ref.shape, f"{what}: {name}: shape {tuple(x.shape)} != {tuple(x_ref.shape)}"
        assert x.dtype == x_ref.dtype, f"{what}: {name}: dtype {x.dtype} != {x_ref.dtype}"
        if x.numel():
            assert torch.isfinite(x).all(), f"{what}: {name}: unwritten (NaN) or non-finite elements"
            err = rel_rms(x, x_ref)
            assert err <= tol, f"{what}: {name}: relative RMS error {err:.2e} > {tol:g}"


def cue_targets(B, T, n_out, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_out, (B, T), generator=gen)
    y[:, : T // 3] = -100  # ignored steps
    return y


def grads_of(net):
    return {k: p.grad.detach().clone() for k, p in net.named_parameters() if p.grad is not None}


def assert_grads_close(got, ref, rel=1e-10, what=""):
    """max|got − ref| ≤ rel·max|ref| for every parameter; every reference gradient is non-zero."""
    assert got.keys() == ref.keys(), f"{what}: parameters with gradients differ: {got.keys() ^ ref.keys()}"
    for k in ref:
        scale = ref[k].abs().max().item()
        assert scale > 0, f"{what}: reference gradient of {k} is zero; the test would be vacuous"
        err = (got[k] - ref[k]).abs().max().item()
        assert err <= rel * scale, f"{what}: {k}: max error {err:.3e} > {rel:g} × {scale:.3e}"


def run_with_triton_interpret(script: str, timeout: float = 300) -> None:
    """Run `script` in a fresh Python from the repository root with TRITON_INTERPRET=1 set before
    triton is imported (which fixes the form of every @triton.jit kernel); fails if it fails."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).resolve().parents[1], check=True,
                   timeout=timeout)


def flip_bytes_in_the_middle(path: Path, count: int = 64) -> str:
    """Invert `count` bytes in the middle of the zip archive at path (a torch.save file) in place, as bit-rot
    would; the name of the archive entry whose data they fall in, found from the archive's own directory
    (each entry's data follows its 30-byte local header, its name and its extra field)."""
    import struct
    import zipfile

    data = bytearray(path.read_bytes())
    start = len(data) // 2 - count // 2
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
    hit = None
    for info in entries:
        name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
        begin = info.header_offset + 30 + name_length + extra_length
        if begin <= start and start + count <= begin + info.compress_size:
            hit = info.filename
    assert hit is not None, f"the middle of {path} is not inside one entry's data: choose another place"
    data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
    path.write_bytes(bytes(data))
    return hit


def tiny_run_argv(epochs: int, batches: int) -> list[str]:
    """`hyprgen train` options of a run of a few seconds: the cue task at delay 10, 8 hidden neurons."""
    return ["--epochs", str(epochs), "--epoch-batches", str(batches), "--delay", "10", "--hidden", "8",
            "--batch-size", "4", "--test-samples", "8", "--chunk", "7", "--quiet", "--no-plots"]


def prepared_trainer(argv: list[str]):
    """The Trainer `hyprgen train ARGV` would run, begun (not run)."""
    import argparse

    from hyprgen.train.options import add_arguments
    from hyprgen.train.trainer import prepare

    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return prepare(ap.parse_args(argv))
