# seg_perception: the two commands of the quick start are `make demo` and `make test`.
# Each creates the virtual environment in .venv on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m seg_perception.cli demo

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS) test

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m seg_perception.cli bench --model enet --backend onnxruntime --height 512 --width 1024

clean:
	rm -rf $(VENV) build install log .pytest_cache
