# neuro_sae: `make demo` runs the whole chain, `make test` runs the test suite.
# Both create .venv when absent and install CPU PyTorch first, so pip never
# pulls a multi-GB CUDA build as a dependency.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU torch. On machines without a local CPU wheel, point pip at a CPU index:
#   make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=
OUT ?= derivatives/demo

.PHONY: demo test venv lint clean help

help:
	@echo "make demo   - install (.venv, extra 'demo') and run 'neuro-sae demo' (outputs in $(OUT))"
	@echo "make test   - install (.venv, extra 'dev') and run the test suite"
	@echo "make lint   - ruff"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	@touch $@

$(VENV)/.demo: pyproject.toml $(VENV)/.torch
	$(PIP) install --quiet -e ".[demo]"
	@touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.torch
	$(PIP) install --quiet -e ".[dev,demo]"
	@touch $@

venv: $(VENV)/.dev

demo: $(VENV)/.demo
	$(BIN)/neuro-sae demo --out $(OUT)

test: $(VENV)/.dev
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest tests -q $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check neuro_sae tests analyses figures benchmarks

clean:
	rm -rf $(VENV) derivatives .pytest_cache
