# seg_perception: the two commands of the quick start are `make demo` and `make test`.
# Each creates the virtual environment in .venv on first use.
# `make test-jazzy` runs the ROS tests on ROS 2 Jazzy in a second environment, .venv-jazzy.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
JAZZY_PYTHON ?= $(PYTHON)
JAZZY_VENV ?= .venv-jazzy
JAZZY_PY := $(JAZZY_VENV)/bin/python
JAZZY_STAMP := $(JAZZY_VENV)/.installed
# The ROS tests: test/ros and every other test module that imports a ROS package or rclpy.
ROS_PACKAGES := rclpy|sensor_msgs|std_msgs|diagnostic_msgs|vision_msgs|rcl_interfaces
ROS_IMPORT := ^\s*(import|from) ($(ROS_PACKAGES))\b|(importorskip|find_spec)[(].($(ROS_PACKAGES))
ROS_TESTS = test/ros $(sort $(filter-out test/ros/%,$(shell grep -rlE \
	"$(ROS_IMPORT)" test --include='test_*.py')))

.PHONY: demo test test-jazzy lint bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# ros-jazzy-* wheels exist for CPython 3.10-3.12 only.
$(JAZZY_STAMP): requirements-jazzy.txt setup.py
	@$(JAZZY_PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else f"make test-jazzy: {sys.executable} is Python {v[0]}.{v[1]}; the ros-jazzy-* wheels need 3.10-3.12 (set JAZZY_PYTHON)")'
	$(JAZZY_PYTHON) -m venv $(JAZZY_VENV)
	$(JAZZY_PY) -m pip install --quiet --upgrade pip
	$(JAZZY_PY) -m pip install --quiet -r requirements-jazzy.txt
	$(JAZZY_PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(JAZZY_STAMP)

demo: $(STAMP)
	$(PY) -m seg_perception.cli demo

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS) test

test-jazzy: $(JAZZY_STAMP)
	$(JAZZY_PY) -m pytest -q $(PYTEST_ARGS) $(ROS_TESTS)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m seg_perception.cli bench --model enet --backend onnxruntime --height 512 --width 1024

clean:
	rm -rf $(VENV) $(JAZZY_VENV) build install log .pytest_cache
