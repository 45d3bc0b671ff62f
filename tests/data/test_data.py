"""Datasets against independent references: the raw ECG .mat arrays, naive binning loops over a
synthetic SHD file, the raw scikit-learn images, and per-(b, t) loops for the accuracies."""
import importlib.util
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from hyprgen.data import CueTask, Split, TASKS, iterate, make_task
from hyprgen.data.ecg import load_ecg
from hyprgen.data.offline import hold_out, sequence_accuracy, step_accuracy
from hyprgen.errors import HyprgenError
from hyprgen.contract import IGNORE_INDEX

ECG_DIR = (Path(__file__).parents[2] / ".." / "shared" / "data" / "ecg_qtdb").resolve()
needs_ecg = pytest.mark.skipif(not ECG_DIR.is_dir(), reason=f"ECG-QTDB files not found at {ECG_DIR}")


# ---------------------------------------------------------------- ECG-QTDB

@pytest.fixture(scope="module")
def ecg():
    return load_ecg(ECG_DIR)


@pytest.fixture(scope="module")
def ecg_raw():
    import scipy.io
    return [scipy.io.loadmat(ECG_DIR / name) for name in ("QTDB_train.mat", "QTDB_test.mat")]


@needs_ecg
def test_ecg_shapes_classes_and_counts_match_the_files(ecg, ecg_raw):
    for split, raw in zip(ecg, ecg_raw):
        N = raw["x"].shape[0]
        assert split.x.shape == (N, 1300, 4) and split.x.dtype == torch.float32
        assert split.target.shape == (N, 1300) and split.target.dtype == torch.long
        assert (split.n_in, split.n_classes, split.seq_len, len(split)) == (4, 6, 1300, N)
        assert torch.isfinite(split.x).all()
        assert set(split.target.unique().tolist()) == set(range(6))         # every class present, nothing else
    assert (len(ecg[0]), len(ecg[1])) == (ecg_raw[0]["y"].shape[0], ecg_raw[1]["y"].shape[0])


@needs_ecg
def test_ecg_samples_equal_the_raw_arrays_after_the_brf_preprocessing(ecg, ecg_raw):
    # BRF (experiments/ecg/tools.py): drop the last step of x and y; class = first index of the max of y.
    for split, raw in zip(ecg, ecg_raw):
        for i in (0, 17, len(split) - 1):
            x_ref = torch.tensor(raw["x"][i, :1300].tolist(), dtype=torch.float32)
            rows = raw["y"][i, :1300].tolist()
            target_ref = torch.tensor([row.index(max(row)) for row in rows])
            assert torch.equal(split.x[i], x_ref)
            assert torch.equal(split.target[i], target_ref)


@needs_ecg
def test_ecg_loads_the_same_data_twice_and_from_the_environment(ecg, monkeypatch):
    monkeypatch.setenv("HYPRGEN_ECG_DIR", str(ECG_DIR))
    for again, first in zip(load_ecg(), ecg):
        assert torch.equal(again.x, first.x) and torch.equal(again.target, first.target)


def test_ecg_errors_name_the_path_and_how_to_get_the_files(tmp_path, monkeypatch):
    monkeypatch.delenv("HYPRGEN_ECG_DIR", raising=False)
    with pytest.raises(HyprgenError, match="HYPRGEN_ECG_DIR"):
        load_ecg()
    with pytest.raises(HyprgenError, match=f"{tmp_path / 'absent'}.*does not exist"):
        load_ecg(tmp_path / "absent")
    with pytest.raises(HyprgenError, match=f"{tmp_path / 'QTDB_train.mat'}: file missing.*brf-neurons"):
        load_ecg(tmp_path)
    (tmp_path / "QTDB_train.mat").write_text("not matlab")
    (tmp_path / "QTDB_test.mat").write_text("not matlab")
    with pytest.raises(HyprgenError, match="QTDB_train.mat: not a readable MATLAB file"):
        load_ecg(tmp_path)


# ---------------------------------------------------------------- batching and hold-out

def indexed_split(N: int, T: int = 3) -> Split:
    """x[n, :, 0] = n, so a batch tells which samples it holds."""
    x = torch.arange(N, dtype=torch.float32)[:, None, None].expand(N, T, 2).contiguous()
    return Split(x, torch.zeros(N, T, dtype=torch.long), 2)


def batch_ids(batches) -> list[list[int]]:
    return [x[:, 0, 0].long().tolist() for x, _ in batches]


def test_iterate_covers_every_sample_once_and_is_seeded():
    split = indexed_split(23)
    ids = batch_ids(iterate(split, 5, torch.Generator().manual_seed(3)))
    assert [len(b) for b in ids] == [5, 5, 5, 5, 3]                          # last partial batch kept
    assert sorted(sum(ids, [])) == list(range(23))
    assert ids == batch_ids(iterate(split, 5, torch.Generator().manual_seed(3)))
    assert batch_ids(iterate(split, 10, None, shuffle=False)) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]


def test_hold_out_partitions_deterministically():
    split = indexed_split(50)
    rest, held = hold_out(split, 0.3, seed=7)
    rest_ids, held_ids = rest.x[:, 0, 0].long().tolist(), held.x[:, 0, 0].long().tolist()
    assert len(held_ids) == int(50 * 0.3) and sorted(rest_ids + held_ids) == list(range(50))
    assert rest_ids == sorted(rest_ids) and held_ids == sorted(held_ids)
    assert torch.equal(hold_out(split, 0.3, seed=7)[1].x, held.x)


# ---------------------------------------------------------------- SHD (synthetic file, same layout)

SHD_SAMPLES = 7


def shd_spikes(seed: int):
    """Spike (times, units) per sample and labels, with edge cases: an empty sample, spikes on bin
    edges, at 0, just under and past 1 s, and in the first and last channel."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(SHD_SAMPLES):
        n = 0 if i == 2 else int(rng.integers(50, 400))
        t = rng.uniform(0.0, 1.2, n)
        u = rng.integers(0, 700, n)
        if i == 0:
            t = np.concatenate([t, [0.0, 0.004, 0.008, 0.996, 0.999, 1.0, 1.1, 0.5, 0.5, 0.5]])
            u = np.concatenate([u, [0, 699, 1, 4, 5, 699, 3, 10, 10, 11]])
        times.append(t.astype(np.float16))                                      # the published files use float16
        units.append(u.astype(np.uint16))
    return times, units, rng.integers(0, 20, SHD_SAMPLES).astype(np.uint16)


def write_shd(path: Path, seed: int):
    h5py = pytest.importorskip("h5py")
    times, units, labels = shd_spikes(seed)
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (SHD_SAMPLES,), dtype=h5py.vlen_dtype(np.float16))[:] = times
        f.create_dataset("spikes/units", (SHD_SAMPLES,), dtype=h5py.vlen_dtype(np.uint16))[:] = units
        f.create_dataset("labels", data=labels)
    return times, units, labels


def naive_binning(times, units, dt, T, pool, cap):
    C = math.ceil(700 / pool)
    x = [[[0] * C for _ in range(T)] for _ in times]
    for i, (ts, us) in enumerate(zip(times, units)):
        for t, u in zip(ts, us):
            step = math.floor(float(t) / dt)
            if step < T:
                x[i][step][int(u) // pool] += 1
    return torch.tensor(x).clamp(max=cap)


@pytest.fixture
def shd_dir(tmp_path):
    write_shd(tmp_path / "shd_train.h5", seed=0)
    write_shd(tmp_path / "shd_test.h5", seed=1)
    return tmp_path


@pytest.mark.parametrize("dt, duration, pool, max_count, T", [
    (0.004, 1.0, 5, None, 250), (0.01, 1.0, 7, 1, 100), (0.004, 0.5, 3, 2, 125)])
def test_shd_binning_and_pooling_match_a_naive_loop(tmp_path, dt, duration, pool, max_count, T):
    from hyprgen.data.shd import load_shd
    times, units, labels = write_shd(tmp_path / "s.h5", seed=0)
    split = load_shd(tmp_path / "s.h5", dt=dt, duration=duration, pool=pool, max_count=max_count)
    assert split.x.shape == (SHD_SAMPLES, T, math.ceil(700 / pool)) and split.n_classes == 20
    assert torch.equal(split.x.long(), naive_binning(times, units, dt, T, pool, max_count or 255))
    assert split.x[2].sum() == 0                                             # the empty sample


def test_shd_targets_label_all_or_the_last_steps(tmp_path):
    from hyprgen.data.shd import load_shd
    _, _, labels = write_shd(tmp_path / "s.h5", seed=0)
    every = load_shd(tmp_path / "s.h5").target
    last = load_shd(tmp_path / "s.h5", label_steps=3).target
    for i, label in enumerate(labels.tolist()):
        assert every[i].tolist() == [label] * 250
        assert last[i].tolist() == [IGNORE_INDEX] * 247 + [label] * 3


def test_shd_errors(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    from hyprgen.data.shd import load_shd
    with pytest.raises(HyprgenError, match=f"{tmp_path / 'absent.h5'}: SHD file missing.*zenkelab"):
        load_shd(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "partial.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(3, np.uint16))
    with pytest.raises(HyprgenError, match="partial.h5: no dataset 'spikes/times'"):
        load_shd(tmp_path / "partial.h5")
    monkeypatch.setitem(sys.modules, "h5py", None)                             # as if h5py were not installed
    with pytest.raises(HyprgenError, match="pip install h5py"):
        load_shd(tmp_path / "partial.h5")


def test_shd_task_holds_out_a_deterministic_validation_part(shd_dir):
    task = make_task("shd", directory=shd_dir, val_fraction=0.3, split_seed=4)
    again = make_task("shd", directory=shd_dir, val_fraction=0.3, split_seed=4)
    assert (len(task.train), len(task.val), len(task.test)) == (SHD_SAMPLES - 2, 2, SHD_SAMPLES)
    assert torch.equal(task.val.x, again.val.x) and torch.equal(task.train.x, again.train.x)
    whole = make_task("shd", directory=shd_dir).train
    parts = Counter(map(bytes, (s.numpy().tobytes() for s in torch.cat([task.train.x, task.val.x]))))
    assert parts == Counter(map(bytes, (s.numpy().tobytes() for s in whole.x)))


# ---------------------------------------------------------------- sequential digits

def test_digits_rows_and_pixels_reproduce_the_images():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from hyprgen.data.digits import load_digits
    raw = sklearn_datasets.load_digits()
    rows, _ = load_digits("rows", test_fraction=0.0)                        # no test part: original order
    pixels, _ = load_digits("pixels", test_fraction=0.0, label_steps=None)
    assert rows.x.shape == (1797, 8, 8) and pixels.x.shape == (1797, 64, 1)
    assert rows.x.min() == 0.0 and rows.x.max() == 1.0
    for n in (0, 5, 1796):
        for r in range(8):
            for c in range(8):
                assert rows.x[n, r, c] * 16 == raw.images[n][r][c]
                assert pixels.x[n, 8 * r + c, 0] * 16 == raw.images[n][r][c]
        assert rows.target[n].tolist() == [IGNORE_INDEX] * 7 + [raw.target[n]]
        assert pixels.target[n].tolist() == [raw.target[n]] * 64


def test_digits_split_is_a_seeded_partition():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from hyprgen.data.digits import load_digits
    train, test = load_digits(test_fraction=0.25, seed=3)
    assert (len(train), len(test)) == (1797 - int(1797 * 0.25), int(1797 * 0.25))
    assert torch.equal(load_digits(test_fraction=0.25, seed=3)[1].x, test.x)
    images = Counter(tuple(img.flatten().tolist()) for img in sklearn_datasets.load_digits().images / 16.0)
    ours = Counter(tuple(x.flatten().tolist()) for x in torch.cat([train.x, test.x]).double())
    assert ours == images


# ---------------------------------------------------------------- delayed cue at long delays

def test_cue_at_delay_16000_fires_only_in_its_windows():
    quiet = CueTask(delay=16_000, noise=0.0, rate=1.0)
    x, target = quiet.batch(2, torch.Generator().manual_seed(0))
    T, g = 16_020, quiet.group
    assert x.shape == (2, T, 12) and target.shape == (2, T) and quiet.seq_len == T
    labels = target[:, -1]
    for b in range(2):
        expect = torch.zeros(T, 12)
        expect[:10, labels[b] * g:(labels[b] + 1) * g] = 1                    # the cue group, cue window
        expect[T - 10:, 2 * g:] = 1                                            # the recall group
        assert torch.equal(x[b], expect)
        assert target[b].tolist() == [IGNORE_INDEX] * (T - 10) + [labels[b].item()] * 10
    noisy = CueTask(delay=16_000)
    x, target = noisy.batch(2, torch.Generator().manual_seed(1))
    assert (target[:, :-10] == IGNORE_INDEX).all() and (target[:, -10:] == target[:, -1:]).all()
    delay_spikes = x[:, 10:T - 10].sum().item()                                # only noise in the delay
    n = 2 * 16_000 * 12
    assert abs(delay_spikes - n * 0.01) < 6 * math.sqrt(n * 0.01 * 0.99)


# ---------------------------------------------------------------- the task registry

def naive_step_accuracy(outputs, target):
    hits = total = 0
    for b in range(target.shape[0]):
        for t in range(target.shape[1]):
            if target[b, t] != IGNORE_INDEX:
                total += 1
                hits += int(max(range(outputs.shape[2]), key=lambda c: outputs[b, t, c]) == target[b, t])
    return hits / total


def naive_sequence_accuracy(outputs, target):
    hits = 0
    for b in range(target.shape[0]):
        steps = [t for t in range(target.shape[1]) if target[b, t] != IGNORE_INDEX]
        scores = [sum(outputs[b, t, c].item() for t in steps) for c in range(outputs.shape[2])]
        hits += int(scores.index(max(scores)) == target[b, steps[0]])
    return hits / target.shape[0]


def test_accuracies_match_per_step_and_per_sequence_loops():
    gen = torch.Generator().manual_seed(0)
    outputs = torch.randn(6, 9, 4, generator=gen)
    target = torch.randint(0, 4, (6,), generator=gen)[:, None].repeat(1, 9)
    target[:, :5] = IGNORE_INDEX
    outputs[:, :5, 0] += 100.0                                                 # unlabelled steps must not count
    assert step_accuracy(outputs, target) == pytest.approx(naive_step_accuracy(outputs, target))
    assert sequence_accuracy(outputs, target) == pytest.approx(naive_sequence_accuracy(outputs, target))
    step_target = torch.randint(0, 4, (6, 9), generator=gen)                   # a class per step (ECG)
    assert step_accuracy(outputs, step_target) == pytest.approx(naive_step_accuracy(outputs, step_target))


def registry_tasks(tmp_path):
    """(task, the accuracy it must compute): ECG per step, the others per sequence; each task whose
    optional dependency or data is here."""
    yield make_task("cue", delay=30, epoch_batches=3, test_samples=10), naive_sequence_accuracy
    if importlib.util.find_spec("h5py"):
        write_shd(tmp_path / "shd_train.h5", seed=0)
        write_shd(tmp_path / "shd_test.h5", seed=1)
        yield make_task("shd", directory=tmp_path, pool=10), naive_sequence_accuracy
    if importlib.util.find_spec("sklearn"):
        yield make_task("digits", mode="pixels"), naive_sequence_accuracy
    if ECG_DIR.is_dir():
        yield make_task("ecg", directory=ECG_DIR), naive_step_accuracy


def test_every_task_yields_what_it_advertises(tmp_path):
    assert set(TASKS) == {"cue", "ecg", "shd", "digits"}
    for task, naive_accuracy in registry_tasks(tmp_path):
        assert task.loss == "ce"
        gen = torch.Generator().manual_seed(0)
        train = list(task.train_batches(4, gen))
        test = list(task.test_batches(16))
        expect_train = task.epoch_batches * 4 if hasattr(task, "epoch_batches") else len(task.train)
        expect_test = task.test_samples if hasattr(task, "test_samples") else len(task.test)
        assert sum(len(y) for _, y in train) == expect_train and sum(len(y) for _, y in test) == expect_test
        for x, y in train + test:
            assert x.shape == (len(y), task.seq_len, task.n_in) and x.dtype == torch.float32
            assert y.shape == (len(y), task.seq_len) and y.dtype == torch.long
            labelled = y[y != IGNORE_INDEX]
            assert labelled.numel() and labelled.min() >= 0 and labelled.max() < task.n_out
        assert [torch.equal(a[0], b[0]) for a, b in zip(test, task.test_batches(16))] == [True] * len(test)
        x, y = test[0]
        outputs = torch.randn(*y.shape, task.n_out, generator=gen)
        assert task.accuracy(outputs, y) == pytest.approx(naive_accuracy(outputs, y))


def test_make_task_rejects_unknown_names_and_options():
    with pytest.raises(HyprgenError, match="unknown task 'mnist'; choose one of cue, ecg, shd, digits"):
        make_task("mnist")
    with pytest.raises(HyprgenError, match="task 'digits'.*colour"):
        make_task("digits", colour=1)
    with pytest.raises(HyprgenError, match="task 'cue': unknown option.*delays"):
        make_task("cue", delays=5)


def test_task_names_load_without_torch_and_each_names_a_task_module():
    """`hyprgen build` and `list` read TASKS (through train.options) without importing torch."""
    import subprocess

    code = ("import sys, hyprgen.data as d\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(' '.join(d.TASKS))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == list(TASKS)
    for name in TASKS:
        assert callable(importlib.import_module(f"hyprgen.data.{name}").task)
