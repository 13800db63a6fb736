# The two commands a newcomer needs: `make demo` (set up + classify the public-domain photos in examples/) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PHOTOS ?= examples

.PHONY: setup demo test lint bench serve verify-container

$(BIN)/wanwu: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[all,dev]"
	touch $@

setup: $(BIN)/wanwu

demo: setup
	$(BIN)/wanwu predict $(PHOTOS)/*.jpg --top-k 3

test: setup
	$(BIN)/python -m pytest -q

lint: setup
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
