"""Task presets: the options `hyprgen train --task X` starts from, so that every task learns out of the box.

The built-in defaults (options.py) are the cue demo's; the other tasks need other networks (a BRF
layer with the default weight scale stays silent on the 8-step digits and fires once on ECG). Each
entry is the configuration of a run that was measured to learn within a small budget; the comment
above it says which run (command, test accuracy, training time, date, load). benchmarks/presets.py
repeats those runs; docs/training.md ("Task presets") has the table.

Precedence (options.resolve): built-in default < the task's preset < the checkpoint's config (with
--resume) < --config FILE < command line. What a preset may hold is checked where it is read
(options.task_preset): run options of its own task, none whose default is None and none that only
some learners take (but the chunk, which every run carries), so that a preset can neither change
what a --resume reads as "unset" nor make `--method X` an error.

This module is data only (no imports): `hyprgen --help` reads it at start-up.
"""

PRESETS: dict[str, dict] = {
    # The built-in defaults: the README's demo `hyprgen train` (BRF, 32 hidden, λ = 64, 8 epochs × 40
    # batches of 32), test accuracy 1.000 in 23.5 s and 41.2 s of training in two fresh clones (README);
    # 68.4 s on 2026-12-02 beside other jobs (load average 0.6 → 1.2), as long as the code before presets.
    "cue": {},
    # The accuracy study's ECG setup (docs/results/accuracy.md: BRF paper's 36 BRF neurons, its
    # initialisation at hyprgen's scale 1, Adam lr 0.1 decayed linearly, batch 16) for 3 epochs instead
    # of 400; λ left at 64 (the study's 100 changes memory and speed only, and BPTT runs carry it too).
    # Measured: `HYPRGEN_ECG_DIR=../shared/data/ecg_qtdb hyprgen train --task ecg`, 2026-12-02, test
    # accuracy 0.762 per step (the most frequent class: 0.305), hidden rate 0.032, 292 s of training
    # (285 s CPU: 97 s per epoch), load average 1.7 → 2.8 on the 2 cores of docs/results/machine.md.
    "ecg": {"neuron": "brf", "hidden": [36], "weight_scale": 1.0, "lr": 0.1, "lr_schedule": "linear",
            "batch_size": 16, "epochs": 3},
    # NOT MEASURED (no SHD files on the machine where the presets were measured): the BRF repository's
    # experiments/SHD/shd_train.py: 128 BRF neurons, ω ~ U[5, 10], b' ~ U[2, 3], Adam lr 0.075 decayed
    # linearly over 20 epochs, batch 32. Weight scale 1.3: hyprgen's bound scale/√(140 + 128) equals
    # BRF's Xavier-uniform bound √(6/(828 + 128)) = 0.079 (pooling 5 channels per input keeps the
    # input current's variance). One step took 7.4 s (32 min an epoch) on synthetic input of SHD's
    # shape; that input (Bernoulli 0.05) left the layer silent, so whether it fires on SHD is open.
    "shd": {"neuron": "brf", "hidden": [128], "weight_scale": 1.3,
            "param_init": ["omega=uniform(5, 10)", "b_offset=uniform(2, 3)"], "lr": 0.075, "lr_schedule": "linear",
            "batch_size": 32, "epochs": 20},
    # BRF at the default scale is silent on the 8 steps of an image (its input enters as δ·I, δ = 0.01);
    # LIF at scale 30 fires from the first epoch. The linear readout: 4× faster than LI under HYPR (no
    # readout memory over 10 classes) and as good for a label on the last step (5-epoch trials of LIF,
    # ALIF and BRF at 64–128 neurons: 0.27–0.67; this one 0.68 after 5 of its 20 epochs).
    # Measured: `hyprgen train --task digits`, 2026-12-02, test accuracy 0.799 (chance 0.1), hidden
    # rate 0.179, 32.4 s of training (43 s wall), load average 1.4 → 1.7.
    "digits": {"neuron": "lif", "hidden": [128], "weight_scale": 30.0, "readout": "linear", "lr": 0.01,
               "lr_schedule": "linear", "batch_size": 16, "epochs": 20},
}
