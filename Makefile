# The two set-up commands of the README. Each creates .venv, installs torch==2.13.0 first (so that
# nothing pulls a CUDA build), then the project, then runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/hyprgen train

# The suite (which runs the device check's dry run: tests/benchmarks/test_device_check.py), then the
# Triton tests on Triton 3.6.0, the GPU machines' release (benchmarks/triton_compat.sh; cached in ~/.cache).
test: $(VENV)/.installed
	$(BIN)/hyprgen build --check
	$(BIN)/python -m pytest -q
	PYTHON=$(BIN)/python bash benchmarks/triton_compat.sh 3.6.0

clean:
	rm -rf $(VENV) build *.egg-info
