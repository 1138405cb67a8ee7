# zhtopics: `make run` models data/raw/ with DVC, `make test` runs the test suite, `make bench`
# times the whole pipeline against a plain script. They create .venv from requirements.lock first
# if it is missing or out of date.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install run test bench lint format lock clean-venv notebooks clear-notebooks

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
		|| { echo "zhtopics needs Python 3.10 or newer; set PYTHON=python3.x"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest

# The whole pipeline against a plain jieba + gensim script on the benchmark corpus (minutes).
# Other corpus or options: make bench BENCH_CORPUS=path BENCH_ARGS="--doubled --skip dvc"
BENCH_CORPUS ?= ../shared/corpora/bench
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/zhtopics bench pipeline --corpus $(BENCH_CORPUS) $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# JupyterLab in the project's environment, opened on notebooks/ (its kernel is this .venv).
# Extra options: make notebooks LAB_ARGS="--no-browser --port 8899"
LAB_ARGS ?=
notebooks: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Notebooks are committed without outputs (tests/test_notebooks.py checks): clear them first.
clear-notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

# Re-resolve requirements.lock after changing dependencies in pyproject.toml (needs uv).
lock:
	uv pip compile pyproject.toml --extra dev --extra spark --universal --python-version 3.10 -o requirements.lock

clean-venv:
	rm -rf $(VENV)
