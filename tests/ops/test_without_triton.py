"""Without Triton (macOS, Windows, a CPU-only install) hyprgen imports, builds and trains on the torch
backend, and asking for the Triton backend is one line that says how to get it. Run in a fresh
interpreter in which `import triton` fails, as it does where Triton is not installed."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NO_TRITON = """
import sys
sys.modules["triton"] = None   # `import triton` now raises ImportError, as without the package
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TRITON + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_the_torch_backend_trains_without_triton():
    proc = run("""
import torch, hyprgen
from hyprgen.ops.triton_support import AVAILABLE
assert not AVAILABLE
net = hyprgen.RSNN(3, 5, 2, seed=0)
x, y = torch.rand(2, 9, 3), torch.zeros(2, 9, dtype=torch.long)
for learner in (hyprgen.HYPR(net, chunk=4), hyprgen.BPTT(net), hyprgen.EProp(net)):
    learner.step(x, y, torch.optim.SGD(net.parameters(), lr=0.1))
print("trained", "triton" in sys.modules and sys.modules["triton"] is not None)
""")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "trained False"


def test_asking_for_the_triton_backend_without_triton_is_one_line():
    proc = run("""
import hyprgen
try:
    hyprgen.HYPR(hyprgen.RSNN(3, 5, 2), backend="triton")
except ValueError as e:
    print(e)
""")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().startswith("backend='triton' needs Triton, which is not installed here: "
                                          "pip install 'hyprgen[gpu]'")
    cli = run("from hyprgen.cli import main; sys.exit(main(['train', '--backend', 'triton', '--epochs', '1']))")
    assert cli.returncode == 2 and "pip install 'hyprgen[gpu]'" in cli.stderr and "Traceback" not in cli.stderr


def test_build_check_needs_no_triton():
    proc = run("from hyprgen.cli import main; sys.exit(main(['build', '--check']))")
    assert proc.returncode == 0, proc.stderr[-3000:]
