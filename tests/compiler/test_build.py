"""Building, staleness checks, the content-addressed cache, loading and the CLI (no GPU needed).

Everything that writes works on temporary copies: the shipped neurons/ and generated/ are only read.
"""
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hyprgen
from hyprgen.cli import main
from hyprgen.errors import HyprgenError, SpecError
from hyprgen.paths import generated_dir, neurons_dir

from ..conftest import SHIPPED

B = importlib.import_module("hyprgen.compiler.build")
L = importlib.import_module("hyprgen.loader")
P = importlib.import_module("hyprgen.paths")

LIF_THETA = 'neuron.const("theta", 1.0)'

USER_SPEC = """\
import sympy as sp
from hyprgen.spec import Neuron, uniform
from hyprgen.surrogates import fast_sigmoid

neuron = Neuron("mylif", doc="a user's LIF")
u = neuron.state("u")
tau = neuron.param("tau", init=uniform(5, 25), clamp=(1, None))
u_new = neuron.let("u_new", u * sp.exp(-1 / tau) + neuron.input - neuron.reset(neuron.prev_spike))
neuron.spike(u_new - THETA, surrogate=fast_sigmoid())
neuron.update(u, u_new)
"""


def user_spec(folder: Path, theta: float = 1.0, name: str = "mylif.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(USER_SPEC.replace("THETA", repr(theta)))
    return path


# ----------------------------------------------------------------------------------------------
# Determinism


def test_same_spec_twice_gives_identical_bytes():
    for name in ("lif", "brf"):
        ir1, text1 = B.generate(neurons_dir() / f"{name}.py")
        ir2, text2 = B.generate(neurons_dir() / f"{name}.py")
        assert text1 == text2
        assert ir1.to_json() == ir2.to_json()


_DIGEST_SCRIPT = """
import hashlib, json, sys
from hyprgen.compiler.build import generate
from hyprgen.paths import shipped_specs
out = {}
for spec in shipped_specs():
    ir, text = generate(spec)
    out[spec.stem] = [hashlib.sha256(text.encode()).hexdigest(), hashlib.sha256(ir.to_json().encode()).hexdigest()]
print(json.dumps(out))
"""


def test_identical_bytes_across_processes_with_different_hash_seeds():
    """Set iteration order, dict order of sympy internals etc. must not leak into the output."""
    procs = []
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        procs.append(subprocess.Popen([sys.executable, "-c", _DIGEST_SCRIPT], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0] == results[1] == results[2]
    here = {}
    for spec in B.shipped_specs():
        ir, text = B.generate(spec)
        here[spec.stem] = [hashlib.sha256(text.encode()).hexdigest(), hashlib.sha256(ir.to_json().encode()).hexdigest()]
    assert results[0] == here
    assert set(here) == set(SHIPPED)


def test_generated_module_header_names_the_spec_and_versions():
    import sympy

    ir, text = B.generate(neurons_dir() / "lif.py")
    spec_hash = hashlib.sha256((neurons_dir() / "lif.py").read_text().encode()).hexdigest()
    assert text.splitlines()[1] == f"# spec sha256 {spec_hash}"
    assert f"hyprgen {hyprgen.__version__}, sympy {sympy.__version__}" in text.splitlines()[2]


# ----------------------------------------------------------------------------------------------
# hyprgen build --check


def test_check_passes_on_the_current_tree(capsys):
    assert B.check() == []
    assert main(["build", "--check"]) == 0
    assert f"all {len(SHIPPED)} neurons' generated modules are current" in capsys.readouterr().out


@pytest.fixture
def tree_copy(tmp_path, monkeypatch):
    """Copies of neurons/{lif,brf}.py and their generated modules; hyprgen.compiler.build and hyprgen.loader use the copies."""
    neurons, generated = tmp_path / "neurons", tmp_path / "generated"
    neurons.mkdir()
    generated.mkdir()
    for name in ("lif", "brf"):
        shutil.copy(neurons_dir() / f"{name}.py", neurons / f"{name}.py")
        for module in (name, f"{name}_triton"):
            shutil.copy(generated_dir() / f"{module}.py", generated / f"{module}.py")
    (generated / "__init__.py").write_text("")
    for module in (P, L):      # where the specs are (paths.shipped_specs reads paths.neurons_dir)
        monkeypatch.setattr(module, "neurons_dir", lambda: neurons)
    for module in (P, B, L):   # the compiler writes the copies, the loader reads them
        monkeypatch.setattr(module, "generated_dir", lambda: generated)
    return neurons, generated


def test_check_fails_after_a_spec_edit_naming_the_module(tree_copy, capsys):
    neurons, generated = tree_copy
    assert B.check() == []
    spec = neurons / "lif.py"
    assert LIF_THETA in spec.read_text(), "neurons/lif.py changed: update LIF_THETA"
    spec.write_text(spec.read_text().replace(LIF_THETA, 'neuron.const("theta", 1.25)'))
    assert B.check() == ["stale: generated/lif.py (from neurons/lif.py)",
                         "stale: generated/lif_triton.py (from neurons/lif.py)"]
    assert main(["build", "--check"]) == 1
    err = capsys.readouterr().err
    assert "generated/lif.py" in err and "brf" not in err and "hyprgen build --all" in err
    # rebuilding makes it current again, and the written bytes are what generate() gives
    B.build_all()
    assert B.check() == []
    assert (generated / "lif.py").read_text() == B.generate(spec)[1]
    assert "1.25" in (generated / "lif.py").read_text()


def test_check_reports_a_comment_edit_missing_and_orphan_modules(tree_copy):
    neurons, generated = tree_copy
    with open(neurons / "brf.py", "a") as f:
        f.write("# a comment changes the spec hash in the header\n")
    (generated / "lif.py").unlink()
    (generated / "old_neuron.py").write_text("")
    assert B.check() == ["stale: generated/brf.py (from neurons/brf.py)",
                         "stale: generated/brf_triton.py (from neurons/brf.py)",
                         "missing: generated/lif.py (from neurons/lif.py)",
                         "orphan: generated/old_neuron.py has no spec in neurons/"]


def test_shipped_neuron_must_be_named_like_its_file(tree_copy):
    neurons, _ = tree_copy
    text = (neurons / "lif.py").read_text()
    (neurons / "lif.py").write_text(text.replace('Neuron("lif"', 'Neuron("lif2"'))
    with pytest.raises(SpecError, match=r"named like its file.*Neuron\('lif2'\) in lif.py"):
        B.check()


# ----------------------------------------------------------------------------------------------
# Cache and loading


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("HYPRGEN_CACHE", str(root))
    return root


def test_load_user_spec_builds_into_the_cache_and_reuses_it(tmp_path, cache, monkeypatch):
    import torch

    spec = user_spec(tmp_path / "specs")
    module = L.load(spec)
    assert module.META["name"] == "mylif"
    folders = list(cache.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("mylif-")
    path = folders[0] / "mylif.py"
    assert Path(module.__file__) == path and path.read_text() == B.generate(spec)[1]
    state = module.init_state(2, 3, dtype=torch.float64)
    nxt, z = module.step(state, torch.full((2, 3), 5.0, dtype=torch.float64), (torch.full((3,), 10.0, dtype=torch.float64),))
    # from rest (u = z = 0) with I = 5: u_new = 0·e^{−1/τ} + 5 − 0 = 5 > θ = 1, so every neuron spikes
    assert torch.equal(nxt[0], torch.full((2, 3), 5.0, dtype=torch.float64)) and bool((z == 1).all())
    # same process: the same module object
    assert L.load(spec) is module
    # a new process (simulated): nothing is rebuilt, the file on disk is imported
    for name in [n for n in sys.modules if n.startswith("hyprgen_cache_")]:
        monkeypatch.delitem(sys.modules, name)
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(B, "build", lambda *a, **k: pytest.fail("the cache was not reused"))
    again = L.load(spec)
    assert again is not module and again.META == module.META
    assert path.stat().st_mtime_ns == mtime


def test_editing_the_spec_gives_a_new_module(tmp_path, cache):
    spec = user_spec(tmp_path / "specs", theta=0.75)  # content no other test loads (modules are keyed by it)
    first = L.load(spec)
    text = spec.read_text()
    spec.write_text(text.replace("u_new - 0.75", "u_new - 0.5"))
    second = L.load(spec)
    assert second is not first
    assert second.META["spec_hash"] != first.META["spec_hash"]
    assert second.META["spec_hash"] == hashlib.sha256(spec.read_text().encode()).hexdigest()
    assert first.META["spec_hash"] == hashlib.sha256(text.encode()).hexdigest()
    folders = sorted(cache.iterdir())
    assert len(folders) == 2 and {Path(first.__file__).parent, Path(second.__file__).parent} == set(folders)


def test_cache_key_covers_spec_and_versions(tmp_path, monkeypatch):
    spec = user_spec(tmp_path)
    key = B.cache_key(spec)
    assert B.cache_key(spec) == key
    monkeypatch.setattr(B, "__version__", "999")
    assert B.cache_key(spec) != key
    monkeypatch.undo()
    monkeypatch.setattr(B, "_templates_hash", lambda: "other templates")
    assert B.cache_key(spec) != key


def test_load_shipped_name_returns_the_shipped_module(cache):
    module = L.load("brf")
    assert module.__name__ == "hyprgen.generated.brf"
    assert Path(module.__file__).resolve() == (generated_dir() / "brf.py").resolve()
    assert hyprgen.load("brf") is module
    assert not cache.exists() or not any(cache.iterdir())


def test_load_unknown_name_is_a_clear_error():
    with pytest.raises(HyprgenError, match=r"no shipped neuron named 'no_such_neuron' \(shipped: .*lif.*\)"):
        L.load("no_such_neuron")
    with pytest.raises(SpecError, match="spec file not found"):
        L.load("missing_spec.py")


def test_load_of_a_bad_spec_leaves_nothing_in_the_cache(tmp_path, cache):
    spec = user_spec(tmp_path / "specs")
    spec.write_text(spec.read_text().replace("neuron.update(u, u_new)\n", ""))
    with pytest.raises(SpecError, match="mylif.py:6: symbol 'u': state is read but never updated"):
        L.load(spec)
    assert not cache.exists() or not any(cache.rglob("*.py"))


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path, monkeypatch):
    target = tmp_path / "out" / "mod.py"
    B.write_atomic(target, "first\n")
    assert target.read_text() == "first\n"
    assert (target.stat().st_mode & 0o777) == 0o644
    B.write_atomic(target, "second\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["mod.py"]

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(B.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        B.write_atomic(target, "third, never visible\n")
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["mod.py"]


def test_top_level_build_and_load(tmp_path):
    path = hyprgen.build(user_spec(tmp_path), tmp_path / "out")
    assert path == tmp_path / "out" / "mylif.py" and path.is_file()


# ----------------------------------------------------------------------------------------------
# CLI


def test_cli_list(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == SHIPPED
    by_name = {line.split()[0]: line for line in lines}
    for line in lines:
        assert "states:" in line and "params:" in line and "output:" in line
    assert "states: u, z " in by_name["lif"] and "params: tau_u " in by_name["lif"]
    assert by_name["lif"].rstrip().endswith("output: spike")
    assert "states: u, v, q " in by_name["brf"] and "params: omega, b_offset " in by_name["brf"]


def test_cli_show_lif(capsys):
    assert main(["show", "lif"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lif: leaky integrate-and-fire")
    assert "carried state r = (u, z), d = 2; parameters θ = (tau_u), p = 1; output: spike" in out
    for entry in ("A[u,u] =", "A[u,z] =", "A[z,u] =", "A[z,z] =", "c[u] =", "c[z] =", "D[u,tau_u] =",
                  "D[z,tau_u] =", "a[u] =", "a[z] =", "gamma =", "delta[tau_u] ="):
        assert f"\n  {entry}" in out, entry
    sparsity = out.split("sparsity (X nonzero, . structural zero):\n")[1].splitlines()
    assert [line.split()[0] for line in sparsity] == ["A", "c", "D", "a", "gamma", "delta"]
    assert sparsity[0].split(None, 1)[1] == "XX | XX"
    assert sparsity[2].split(None, 1)[1] == "X | X"


def test_cli_show_brf_sparsity_has_a_structural_zero(capsys):
    assert main(["show", "brf"]) == 0
    out = capsys.readouterr().out
    assert "  c     X.X\n" in out and "c[v]" not in out


def test_cli_build_spec_out_dir(tmp_path, capsys):
    spec = user_spec(tmp_path / "specs")
    out = tmp_path / "out"
    assert main(["build", str(spec), "--out", str(out)]) == 0
    path = out / "mylif.py"
    assert capsys.readouterr().out.strip() == f"built {path} and mylif_triton.py beside it"
    assert path.read_text() == B.generate(spec)[1]
    assert (out / "mylif_triton.py").read_text() == B.generate_modules(spec)[1]["mylif_triton.py"]
    module = L.import_file(path, "hyprgen_test_cli_build_mylif")
    assert module.META["name"] == "mylif" and module.META["carried"] == ["u", "z"]
    assert L.load_kernels(module).SPEC_HASH == module.META["spec_hash"]


@pytest.mark.parametrize("target, written", [("torch", ["mylif.py"]), ("triton", ["mylif_triton.py"])])
def test_cli_build_one_target(tmp_path, capsys, target, written):
    spec = user_spec(tmp_path / "specs")
    assert main(["build", str(spec), "--out", str(tmp_path / "out"), "--target", target]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == written
    assert capsys.readouterr().out.strip() == f"built {tmp_path / 'out' / written[0]}"


def test_triton_module_of_another_spec_version_is_refused(tmp_path):
    spec = user_spec(tmp_path / "specs")
    out = tmp_path / "out"
    B.build(spec, out)
    module = L.import_file(out / "mylif.py", "hyprgen_test_refused_mylif")
    text = (out / "mylif_triton.py").read_text()
    (out / "mylif_triton.py").write_text(text.replace(module.META["spec_hash"], "0" * 64))
    with pytest.raises(HyprgenError, match="another version of the spec"):
        L.load_kernels(module)
    (out / "mylif_triton.py").unlink()
    with pytest.raises(HyprgenError, match="has no Triton kernels.*hyprgen build"):
        L.load_kernels(module)


def test_triton_module_without_the_contracts_kernels_is_refused(tmp_path):
    """A kernels module from before the kernels carried the neuron's name (fwd_kernel, chunk_kernel)
    is refused with what it lacks, not left to fail at the first launch."""
    spec = user_spec(tmp_path / "specs")
    out = tmp_path / "out"
    B.build(spec, out)
    module = L.import_file(out / "mylif.py", "hyprgen_test_old_kernels_mylif")
    text = (out / "mylif_triton.py").read_text()
    (out / "mylif_triton.py").write_text(text.replace("def mylif_s_stage_kernel(", "def fwd_kernel("))
    with pytest.raises(HyprgenError, match="lacks mylif_s_stage_kernel.*rebuild with `hyprgen build`"):
        L.load_kernels(module)


def test_cli_build_needs_an_argument(capsys):
    assert main(["build"]) == 2
    assert "give SPEC files, --all, --check, --aot or --verify" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Packaging (a non-editable `pip install .` was verified by hand; this guards its package list)


def test_pyproject_installs_every_subpackage_and_the_data_folders():
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {"hyprgen." + ".".join(p.parent.relative_to(root / "hyprgen").parts) if p.parent != root / "hyprgen"
               else "hyprgen" for p in (root / "hyprgen").rglob("__init__.py")}
    assert on_disk <= listed, f"not installed by `pip install .`: {sorted(on_disk - listed)}"
    mapped = config["package-dir"]
    assert {k: mapped[k] for k in ("hyprgen.templates", "hyprgen.neurons", "hyprgen.generated")} == {
        "hyprgen.templates": "templates", "hyprgen.neurons": "neurons", "hyprgen.generated": "generated"}
    for folder in ("templates", "neurons", "generated"):
        assert (root / folder / "__init__.py").is_file(), f"{folder}/ must be a package to be installed"
    patterns = config["package-data"]["hyprgen.templates"]
    templates = [p.relative_to(root / "templates") for p in (root / "templates").rglob("*.j2")]
    assert templates and all(any(t.match(pat) for pat in patterns) for t in templates)


def test_build_out_that_is_an_existing_file_is_one_line(tmp_path, capsys):
    """Issue 17, item 10: `--out FILE` gave a raw '[Errno 17] File exists'."""
    blocker = tmp_path / "taken"
    blocker.write_text("")
    assert main(["build", str(neurons_dir() / "lif.py"), "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hyprgen: error: --out {blocker}") and err.count("\n") == 1, err
    assert "is a file" in err and "Errno" not in err
