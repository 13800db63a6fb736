# The two commands a newcomer needs: `make demo` (set up + classify the public-domain photos in examples/) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?= examples

.PHONY: setup int8 demo test lint bench serve verify-container

$(BIN)/wanwu: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[all,dev]"
	touch $@

# The bundled model's ready INT8 version, calibrated once on the shipped photos (each with its mirror image and
# random crops); its agreement with fp32 is measured on the labelled samples where ../shared has them, else on
# the calibration views. Re-running reuses it. `--precision auto` (the default) picks it where it is faster.
SAMPLES ?= ../shared/data/imagenet-samples
int8: $(BIN)/wanwu
	$(BIN)/wanwu quantize efficientnet_lite0 $(if $(wildcard $(SAMPLES)),--eval $(SAMPLES))

setup: $(BIN)/wanwu int8

demo: setup
	$(BIN)/wanwu predict $(PHOTOS)/*.jpg --top-k 3

test: $(BIN)/wanwu
	$(BIN)/python -m pytest -q

lint: $(BIN)/wanwu
	$(BIN)/ruff check src tests bench

# Every part of the benchmark in one run (~35 min; needs ../shared): engines, preprocessing, HTTP vs the seed
# and the LitServe + ONNX Runtime peer, cold start. bench/ is not installed: it runs from this checkout.
bench: setup
	$(BIN)/python bench/all.py --json-out bench-results.json

serve: setup
	$(BIN)/wanwu serve

# Builds the container image with buildah, runs it with podman, checks it, removes what it made (~2-4 min).
verify-container:
	bash deploy/verify.sh
