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

test: $(VENV)/.installed
	$(BIN)/hyprgen build --check
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
