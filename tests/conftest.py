import os

import pytest
import torch

from hyprgen.paths import shipped_specs

SHIPPED = [p.stem for p in shipped_specs()]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Where an ops test runs: the CPU (Triton kernels interpreted) and, when present, a GPU (compiled)."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """One torch intra-op thread for the whole suite: the test networks are tiny, and on a busy machine
    (CI beside other jobs) a second thread stalls them far more than it helps (docs/training.md,
    --threads). Tests that need the count restored afterwards use `one_thread`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """User builds go to a fresh cache so tests never read a developer's cache."""
    os.environ["HYPRGEN_CACHE"] = str(tmp_path_factory.mktemp("hyprgen-cache"))


@pytest.fixture
def nan_outputs(monkeypatch):
    """Every kernel launcher's outputs (hyprgen.ops.dispatch.output) start NaN-filled, so an element a
    kernel leaves unwritten fails the comparison instead of passing with whatever memory held."""
    from hyprgen.ops import dispatch

    monkeypatch.setattr(dispatch, "output", lambda *shape, like, dtype=torch.float32:
                        torch.full(shape, float("nan"), dtype=dtype, device=like.device))


@pytest.fixture
def one_thread():
    """One torch intra-op thread during the test, the previous count restored after: what `hyprgen
    train` sets (--threads 1) when run in-process, and what its subprocess runs use; tiny networks run
    much faster so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
