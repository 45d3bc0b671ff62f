"""The HYPR-vs-BPTT accuracy study of issue 5 (not in CI; results in docs/results/accuracy.md).

    python -m benchmarks.studies.accuracy SUBCOMMAND [options]

Every run is a `hyprgen train` run (hyprgen.train's Trainer, evaluation and checkpoints; runs.py
spells the study's settings as its options), in one CPU thread per process:

  ecg     BRF (or ALIF) RSNN, 36 recurrent hidden neurons, LI readout (--readout linear: non-leaky),
          on ECG-QTDB, with one or more methods: hypr (λ = --chunk, hyprgen's exact neuron-local
          spike paths and the readout's memory in the learning signal, docs/hypr.md §3a),
          hypr_same_step (the paper's same-step signal, §3: the "hypr" of runs before readout memory),
          hypr_drop (HYPR with drop_spike_paths=True, as in the HYPR authors' release), bptt and
          bptt_detach (BPTT without the paths through W_rec's input, a diagnostic); setup in ecg.py.
  cue     delayed cue task at the given delays: peak memory of one training step (HYPR vs BPTT,
          each measured in a fresh subprocess) and test accuracy after a training run per seed
          (--weight-scale, --param NAME LO HI and --lr-schedule make BRF-exp learn it); cue.py.
  report  tables (markdown, stdout and OUT/report.md) and plots (docs/img/results_ecg*.png per readout
          and budget, docs/img/results_alif.png, docs/img/results_cue.png) from the result files.
  align   gradient alignment on ECG: at a run's checkpoint (or at initialisation), each method's
          gradient on the same training batches against BPTT's (cosine and norm ratio per parameter).
  time    seconds per training batch of each ECG configuration (to plan the budget).

Results: benchmarks/results/accuracy_study/ ($ACCURACY_STUDY_OUT): one JSON per finished (config,
seed); an ECG run trains in the run directory OUT/NAME (config.toml, metrics.jsonl, checkpoint.pt
after every epoch), resumes from it when started again, and keeps it when finished (for `align`);
finished runs are skipped. Examples:

    python -m benchmarks.studies.accuracy ecg --neuron brf --methods hypr bptt --seeds 0 1 2 --epochs 25
    python -m benchmarks.studies.accuracy ecg --neuron alif --methods hypr hypr_drop --seeds 0 1 2 --epochs 10
    python -m benchmarks.studies.accuracy cue --delays 1000 10000
    python -m benchmarks.studies.accuracy cue --neuron brf_exp --weight-scale 200 --param b_offset -5.2983 -2.9957 \\
        --lr 0.005 --lr-schedule linear --train-steps 300 150 --test-samples 256 --seeds 0 1
    python -m benchmarks.studies.accuracy align --checkpoint benchmarks/results/accuracy_study/NAME --batches 8
    python -m benchmarks.studies.accuracy report
"""
