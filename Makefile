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

.PHONY: demo test venv lint clean help sysdeps docs

help:
	@echo "make demo   - install (.venv, extra 'demo') and run 'neuro-sae demo' (outputs in $(OUT))"
	@echo "make test   - install (.venv, extra 'dev') and run the test suite"
	@echo "make lint   - ruff"
	@echo "make docs   - build the documentation with the gallery executed (docs/_build/html)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	@touch $@

# The release SAEs (load_sae("neuro-sae/whisper-base", layer=n)): a data package installed
# non-editable after neuro_sae, again whenever its release.json (rewritten with the weights by
# analyses/09b_release_saes.py) changes.
RELEASE_PKG := data_manifests/releases/neuro-sae-whisper-base
RELEASE_DEPS := $(RELEASE_PKG)/pyproject.toml $(RELEASE_PKG)/neuro_sae_whisper_base/release.json

$(VENV)/.demo: pyproject.toml $(RELEASE_DEPS) $(VENV)/.torch
	$(PIP) install --quiet -e ".[demo]"
	$(PIP) install --quiet --no-deps ./$(RELEASE_PKG)
	@touch $@

$(VENV)/.dev: pyproject.toml $(RELEASE_DEPS) $(VENV)/.torch
	$(PIP) install --quiet -e ".[dev,demo]"
	$(PIP) install --quiet --no-deps ./$(RELEASE_PKG)
	@touch $@

venv: $(VENV)/.dev

# Debian packages neuro_sae, its tools and its tests use: exactly the packages declared in
# neuro_sae/utils/_sysdeps.py (tests/test_sysdeps.py holds the two lists and dpkg's owners
# of every declared file to each other). Installed only when missing and only as root;
# otherwise the command to run is printed. Tests that need one skip with the package name,
# and fail instead under CI=true.
SYSDEPS := espeak-ng festival festvox-kallpc16k festvox-us-slt-hts fluidsynth \
	timgm6mb-soundfont fluid-soundfont-gm openttd-openmsx sound-theme-freedesktop \
	oxygen-sounds sound-icons asterisk-core-sounds-en-wav asterisk-core-sounds-en sox \
	procps chromium

sysdeps:
	@missing=""; for p in $(SYSDEPS); do \
		[ "$$(dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null)" = "installed" ] \
			|| missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "sysdeps: all Debian packages present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends $$missing; \
	else echo "sysdeps: missing Debian packages:$$missing"; \
		echo "  install them with: sudo apt-get install --no-install-recommends$$missing"; fi

demo: sysdeps $(VENV)/.demo
	$(BIN)/neuro-sae demo --out $(OUT)

test: sysdeps $(VENV)/.dev
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest tests -q $(PYTEST_ARGS)

# Warnings are errors and broken references fail (-W --keep-going -n); the gallery examples
# run on small offline data. SPHINXOPTS="-D plot_gallery=0" skips them.
SPHINXOPTS ?=
docs: $(VENV)/.dev
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m sphinx -b html \
		-W --keep-going -n $(SPHINXOPTS) docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

lint: $(VENV)/.dev
	$(BIN)/ruff check neuro_sae tests analyses figures benchmarks

clean:
	rm -rf $(VENV) derivatives .pytest_cache
