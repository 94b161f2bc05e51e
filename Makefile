# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv with the package on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

# 4 heads x 3 seeds on the embedded digits, 2 runs in parallel with 1 thread each; prints mean +- std and wall time.
demo: $(STAMP)
	$(PY) examples/ebjepa_cifar.py --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) bench/losses.py
	$(PY) bench/search.py

clean:
	rm -rf $(VENV) runs build dist *.egg-info
