"""Where the accuracy study reads and writes, and its fixed settings.

OUT   results: one JSON per finished run, run directories, report.md   ($ACCURACY_STUDY_OUT)
DOCS  the docs folder; the report's plots go to DOCS/img/                ($ACCURACY_STUDY_DOCS)
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(os.environ.get("ACCURACY_STUDY_OUT", ROOT / "benchmarks" / "results" / "accuracy_study"))
DOCS = Path(os.environ.get("ACCURACY_STUDY_DOCS", ROOT / "docs"))
IMG = DOCS / "img"
ECG_DIR = os.environ.get("HYPRGEN_ECG_DIR", str(ROOT.parent / "shared" / "data" / "ecg_qtdb"))
DEFAULT_LR = {"brf": 0.1, "alif": 0.05}  # the BRF repository's ecg_train.py and ecg_alif_train.py
ECG_WEIGHT_SCALE = 1.0  # RSNN's default: the initialisation of the runs in docs/results/accuracy.md
