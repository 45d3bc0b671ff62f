"""Tasks as torch Datasets and SHD from a tonic download: a DataLoader over `task.dataset` against the
task's own batches (the trainer's), DistributedSampler shards against the trainer's batches, and a
synthetic tonic download folder against the naive binning of the spikes written into it."""
import argparse

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from hyprgen.data import make_task
from hyprgen.data.offline import OfflineTask, sequence_accuracy
from hyprgen.errors import HyprgenError

from .test_data import SHD_SAMPLES, indexed_split, naive_binning, registry_tasks, shd_spikes, write_shd


def same_batches(a, b) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(xa.dtype == xb.dtype and torch.equal(xa, xb) and torch.equal(ya, yb)
                                    for (xa, ya), (xb, yb) in zip(a, b))


def test_a_dataloader_over_each_task_yields_the_trainers_batches(tmp_path):
    for task, _ in registry_tasks(tmp_path):
        ours, theirs = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        for _epoch in range(2):                         # the generator advances as train_batches advances it
            loader = DataLoader(task.dataset("train", 4, ours), batch_size=4)
            assert same_batches(loader, task.train_batches(4, theirs))
            assert torch.equal(ours.get_state(), theirs.get_state())
        assert same_batches(DataLoader(task.dataset("test", 16), batch_size=16), task.test_batches(16))
        if isinstance(task, OfflineTask):               # any sampler: the trainer's permutation given as one
            order = torch.randperm(len(task.train), generator=torch.Generator().manual_seed(8)).tolist()
            loader = DataLoader(task.dataset("train"), batch_size=3, sampler=order)
            assert same_batches(loader, task.train_batches(3, torch.Generator().manual_seed(8)))


def test_the_validation_split_and_the_cues_held_spikes(tmp_path):
    from hyprgen.data import iterate

    write_shd(tmp_path / "shd_train.h5", seed=0)
    write_shd(tmp_path / "shd_test.h5", seed=1)
    task = make_task("shd", directory=tmp_path, pool=10, val_fraction=0.3)
    assert same_batches(DataLoader(task.dataset("val"), batch_size=2), iterate(task.val, 2, None, shuffle=False))
    for split, message in [("val", "no validation split"), ("dev", "train, val and test")]:
        with pytest.raises(ValueError, match=message):
            make_task("shd", directory=tmp_path, pool=10).dataset(split)
    with pytest.raises(ValueError, match="only train is shuffled"):
        task.dataset("test", generator=torch.Generator())
    cue = make_task("cue", delay=30, epoch_batches=3, test_samples=10)
    held = cue.dataset("test", 4)
    assert held.x.dtype == torch.uint8 and set(held.x.unique().tolist()) <= {0, 1} and len(held) == 10
    for split, args, message in [("train", (4,), "give one"), ("train", (None, torch.Generator()), "give batch_size"),
                                 ("test", (4, torch.Generator()), "takes no generator"), ("val", (4,), "train and test")]:
        with pytest.raises(ValueError, match=message):
            cue.dataset(split, *args)


@pytest.mark.parametrize("which", ["cue", "offline"])
def test_distributed_sampler_deals_two_disjoint_halves_that_together_are_the_trainers_batches(which):
    if which == "cue":
        task = make_task("cue", delay=12, epoch_batches=5, test_samples=10)
    else:                                               # 24 samples whose x tells which they are
        task = OfflineTask(indexed_split(24), indexed_split(4), sequence_accuracy)
    batches = list(task.train_batches(4, torch.Generator().manual_seed(2)))
    data = task.dataset("train", 4, torch.Generator().manual_seed(2))
    ranks = [list(DataLoader(data, batch_size=2, sampler=DistributedSampler(data, num_replicas=2, rank=r, shuffle=False)))
             for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(batches)
    for (x, y), (x0, y0), (x1, y1) in zip(batches, *ranks):
        # rank r holds rows r, r + 2 of the trainer's batch: interleaved they are the batch itself
        assert torch.equal(torch.stack([x0, x1], 1).flatten(0, 1), x)
        assert torch.equal(torch.stack([y0, y1], 1).flatten(0, 1), y)
    for epoch in (0, 1):                                # shuffled: disjoint halves that cover the set
        shards = []
        for r in (0, 1):
            sampler = DistributedSampler(data, num_replicas=2, rank=r, shuffle=True, seed=3)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert not set(shards[0]) & set(shards[1]) and sorted(shards[0] + shards[1]) == list(range(len(data)))


# ---------------------------------------------------------------- SHD as tonic leaves it on disk

def write_tonic_download(save_to):
    """What `tonic.datasets.SHD(save_to, train=...)` leaves: save_to/SHD/ with the downloaded
    shd_{train,test}.h5.zip and the shd_{train,test}.h5 unpacked from them, which hold spikes/times,
    spikes/units, labels and an `extra` group (class names, speakers)."""
    h5py = pytest.importorskip("h5py")
    folder = save_to / "SHD"
    folder.mkdir(parents=True)
    written = {}
    for name, seed in (("shd_train.h5", 0), ("shd_test.h5", 1)):
        times, units, labels = shd_spikes(seed)
        (folder / (name + ".zip")).write_bytes(b"PK\x05\x06" + bytes(18))           # an empty zip archive
        with h5py.File(folder / name, "w") as f:
            f.create_dataset("spikes/times", (SHD_SAMPLES,), dtype=h5py.vlen_dtype(np.float16))[:] = times
            f.create_dataset("spikes/units", (SHD_SAMPLES,), dtype=h5py.vlen_dtype(np.uint16))[:] = units
            f.create_dataset("labels", data=labels)
            f.create_dataset("extra/keys", data=np.array([f"digit-{i}".encode() for i in range(20)]))
            f.create_dataset("extra/speaker", data=np.arange(SHD_SAMPLES, dtype=np.uint16) % 3)
        written[name] = times, units, labels
    return written


def test_shd_reads_a_tonic_download_folder_as_its_own(tmp_path, monkeypatch):
    written = write_tonic_download(tmp_path)
    task = make_task("shd", directory=tmp_path, pool=10)                 # tonic's save_to folder
    inner = make_task("shd", directory=tmp_path / "SHD", pool=10)         # the folder holding the files
    monkeypatch.setenv("HYPRGEN_SHD_DIR", str(tmp_path))
    from_env = make_task("shd", pool=10)
    for split, name in (("train", "shd_train.h5"), ("test", "shd_test.h5")):
        times, units, labels = written[name]
        expect = naive_binning(times, units, 0.004, 250, 10, 255)
        for t in (task, inner, from_env):
            got = getattr(t, split)
            assert torch.equal(got.x.long(), expect) and got.target[:, -1].tolist() == labels.tolist()


def test_train_data_dir_takes_a_tonic_download_folder(tmp_path):
    from hyprgen.train.options import add_arguments
    from hyprgen.train.trainer import prepare

    written = write_tonic_download(tmp_path)
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    trainer = prepare(ap.parse_args(["--task", "shd", "--data-dir", str(tmp_path), "--hidden", "4", "--quiet"]))
    times, units, _ = written["shd_test.h5"]
    assert torch.equal(trainer.task.test.x.long(), naive_binning(times, units, 0.004, 250, 5, 255))


def test_shd_folder_errors_say_what_is_there(tmp_path):
    pytest.importorskip("h5py")
    with pytest.raises(HyprgenError, match=f"{tmp_path}: neither it nor its SHD folder .*holds shd_train.h5 and "
                                           "shd_test.h5; get shd_train.h5.gz"):
        make_task("shd", directory=tmp_path)
    (tmp_path / "SHD").mkdir()
    for name in ("shd_train.h5.zip", "shd_test.h5.zip"):
        (tmp_path / "SHD" / name).write_bytes(b"")
    with pytest.raises(HyprgenError, match="SHD holds shd_test.h5.zip, shd_train.h5.zip but not .*: unpack them"):
        make_task("shd", directory=tmp_path)
    (tmp_path / "shd_train.h5").write_bytes(b"")
    (tmp_path / "SHD" / "shd_train.h5.zip").unlink()
    (tmp_path / "SHD" / "shd_test.h5.zip").unlink()
    with pytest.raises(HyprgenError, match=f"found only {tmp_path / 'shd_train.h5'}"):
        make_task("shd", directory=tmp_path)
