# Two commands for a newcomer:  `make demo`  and  `make test`.  Each creates .venv if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo test browser lint bench clean

# TORCH_INDEX: a package index to take torch/torchvision from first, e.g. the CPU-only build:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

$(BIN)/medsynbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $@

setup: $(BIN)/medsynbench

## Run the demo suite (phantom chest X-rays, 4 generators) and print its leaderboard.
demo: setup
	$(BIN)/medsynbench run suites/demo.toml --out runs/demo
	$(BIN)/medsynbench leaderboard runs/demo/results.json --out runs/demo/site
	@echo "leaderboard site: runs/demo/site/index.html"

## Headless Chromium for the leaderboard browser test (Debian's package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

## Run the whole test suite (GPU tests skip without CUDA).
test: setup browser
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check benchmark plugins tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/metrics.py

clean:
	rm -rf runs .pytest_cache
