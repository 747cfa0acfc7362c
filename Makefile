# The two set-up commands of the README. Both create .venv and install on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test lint bench clean kafka

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make up: the main job on the embedded default (local broker, keys, the real Verra sample feed)
up: $(STAMP)
	$(BIN)/crg up $(ARGS)

## make test: the full test suite (the same command .ci/run calls), on tansu and on
## Apache Kafka (fetched with Maven into ~/.cache/crg on first use)
test: $(STAMP) kafka
	$(BIN)/python -m pytest $(ARGS)

kafka:
	ops/kafka/fetch

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/deptry .

bench: $(STAMP)
	$(BIN)/crg bench contract $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
