# Two commands a newcomer needs: `make demo` and `make test`. Each creates .venv on first use and installs the
# extras it needs: `test` the [dev] extra (everything the suite imports), `demo` the [examples] extra.
# `make docs` builds the documentation site (the [dev] extra includes [docs]).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.installed-dev
EXAMPLES_STAMP := $(VENV)/.installed-examples

.PHONY: demo test lint docs bench m4 upstream-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev]'
	touch $(DEV_STAMP) $(EXAMPLES_STAMP)

$(EXAMPLES_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[examples]'
	touch $(EXAMPLES_STAMP)

# 4 heads x 3 seeds on the embedded digits, 2 runs in parallel with 1 thread each; prints mean +- std and wall time.
demo: $(EXAMPLES_STAMP)
	$(PY) examples/ebjepa_cifar.py --out runs/demo

# The suite runs after the lint: ruff (rules and format) and mypy on the package, configured in pyproject.toml.
test: lint
	$(PY) -m pytest -n 2 -q

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The documentation site, strict: a warning, a broken link or an unresolved reference to the package fails it.
# The test suite runs the same build (tests/docs/test_docs.py). Open build/docs/html/index.html.
docs: $(DEV_STAMP)
	$(PY) -m sphinx -W --keep-going -n -q -b html docs build/docs/html

# The integer head and a top-k search over 1k and 10k codes in flash on an emulated Cortex-M4 (QEMU mps2-an386);
# needs the Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm (.ci/run installs them).
m4: $(EXAMPLES_STAMP)
	$(PY) examples/deploy_m4.py --out runs/m4

bench: $(DEV_STAMP)
	$(PY) bench/losses.py
	$(PY) bench/search.py
	$(PY) bench/pq.py
	$(PY) bench/metrics.py

# Adapters inside real upstream checkouts: UPSTREAM=dir holding SupCon-Framework (torus and main
# branches), ProtoCLR and eb_jepa. Their own requirements must be installed (albumentations<1.4.4,
# torch-ema, torch-optimizer, tensorboard, torchaudio, einops, fire, opencv-python-headless, wandb,
# moviepy). Skipped with a message when the checkouts are absent.
upstream-check: $(DEV_STAMP)
	$(PY) tests/upstream_check.py --upstream "$(UPSTREAM)"

clean:
	rm -rf $(VENV) runs build dist *.egg-info
