# One command to run the main job, one to run the tests; each sets itself up.
#   make demo   virtual environment + install + synthetic cases + all notebooks (smoke profile)
#   make test   virtual environment + install (+ PyTorch CPU, TORCH_SPEC) + the whole test suite
#   make lab    virtual environment + install + demo data if absent + JupyterLab on copies in lab/
#   make results-html   the notebooks on the real sample cases, rendered to docs/results/
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data/synthetic
CASES ?= 24
SEED ?= 0
# PyTorch for the test environment (the tests run every Keras backend): the CPU build, pinned so
# pip never pulls a CUDA build of several GB. Change it for a GPU runtime, or set it empty to
# skip PyTorch (its tests then skip): make setup TORCH_SPEC=
TORCH_SPEC ?= torch==2.13.0

REAL ?= ../shared/data/brats2018_sample
REAL_OUT ?= outputs/real16

.PHONY: setup git-filter demo lab results-html test test-quick lint format bench clean

setup: $(STAMP) git-filter

# nbstripout as a git filter (inside a git checkout only): notebooks are committed without
# outputs, counts or what opening them adds (language_info), keeping their cell ids; the
# filter is named in .gitattributes. tests/notebooks/test_git_filter.py runs this target.
NB_EXTRA_KEYS := $(foreach k,version codemirror_mode file_extension mimetype \
	nbconvert_exporter pygments_lexer,metadata.language_info.$(k))
git-filter:
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		$(BIN)/nbstripout --install --attributes .gitattributes && \
		git config filter.nbstripout.clean "'$(abspath $(BIN))/nbstripout' --keep-id" && \
		git config filter.nbstripout.extrakeys "$(NB_EXTRA_KEYS)"; fi

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_SPEC),$(BIN)/python -m pip install --quiet '$(TORCH_SPEC)')
	$(BIN)/python -m pip install --quiet -e '.[tensorflow,dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/brats synth --out $(DATA) --cases $(CASES) --seed $(SEED)
	$(BIN)/brats check $(DATA)
	$(BIN)/brats notebooks --profile smoke --data $(DATA) --out outputs/smoke

# The lesson runs on copies in lab/ (untracked; beside notebooks/, so their relative paths hold):
# notebooks/ stays as committed however the lesson goes. Each copy is made once; delete
# lab/NAME.ipynb to start that notebook afresh.
lab: setup
	@test -n "$$(ls -A $(DATA) 2>/dev/null)" || \
		$(BIN)/brats synth --out $(DATA) --cases $(CASES) --seed $(SEED)
	@mkdir -p lab && for nb in notebooks/*.ipynb; do \
		test -e "lab/$${nb##*/}" || cp "$$nb" lab/; done
	@# no "get notified about Jupyter news?" pop-up over the outputs (this venv only)
	@$(BIN)/jupyter labextension disable --level=sys_prefix \
		"@jupyterlab/apputils-extension:announcements" >/dev/null 2>&1
	$(BIN)/jupyter lab --notebook-dir=lab \
		--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# The notebooks on the real cases with the CPU (smoke) settings, rendered to docs/results/.
results-html: setup
	$(BIN)/python scripts/real_data_folder.py $(REAL) $(REAL_OUT)/data --counts 10,3,3
	$(BIN)/brats notebooks --profile smoke --data $(REAL_OUT)/data --out $(REAL_OUT) \
		--html docs/results --overwrite

# make test: every test (what CI runs), on TEST_WORKERS pytest-xdist workers, a test file per
# worker (its module fixtures made once). make test-quick: all but the slow tier (notebooks,
# training runs, the real cases, kill -9, the browser), in one process (a second worker did
# not pay for its start on 2 cores), for a contributor between edits.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-quick: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) outputs runs .pytest_cache
