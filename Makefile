# Two commands on a fresh machine:
#   make demo   – create .venv, install textlab (core only), train a CharLSTM on tiny Shakespeare for
#                 3 minutes, sample, plot
#   make test   – create .venv (textlab with the test tools) and .venv-colab (Colab's versions), run
#                 every test: unit, notebooks with nbval, widgets on ipywidgets 8 and 7.7, the
#                 real-browser tests, the Colab-like stack, the notebooks' fingerprint check
# And for course authors:
#   make notebooks        – re-run the notebooks in default mode and save their outputs in place
#   make check-notebooks  – fail if a notebook's saved outputs were made by other textlab source

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch. On a laptop elsewhere you may prefer:
#   make TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.13.0
# Offline machines read the course texts from a mirror folder when one is beside the repo.
export TEXTLAB_MIRROR ?= $(if $(wildcard ../shared/data/MANIFEST.json),$(abspath ../shared/data),)
DEMO_MINUTES ?= 3

# The Colab-like environment: Colab's published versions (googlecolab/backend-info, pip-freeze.txt,
# 2026-08) of what the course touches, as far as they install here. textlab itself is NOT installed:
# the notebooks' set-up cell clones it, as in Colab (tests/test_colab.py). Not like Colab: Python is
# this machine's 3.11 (Colab: 3.13); torch is the local CPU wheel TORCH (Colab: 2.11, and any other
# torch pulls gigabytes of CUDA builds); setuptools stays unpinned (Colab: 75.2.0, torch 2.13 needs >= 77).
COLAB_VENV := .venv-colab
COLAB_PINS := ipywidgets==7.7.1 widgetsnbextension==3.6.10 ipython==7.34.0 ipykernel==6.17.1 notebook==6.5.7 \
              "tqdm>=4.67,<4.68" matplotlib==3.10.0 "transformers>=5,<6" "huggingface_hub>=1,<2" traitlets==5.7.1

.PHONY: demo test notebooks check-notebooks benchmarks clean

# textlab and its core dependencies: all that `make demo` runs.
$(BIN)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $@

# The test tools on top: pytest, nbval, JupyterLab, Playwright, transformers, and the serve extra.
$(BIN)/.installed: $(BIN)/.core
	$(BIN)/pip install -q -e ".[dev,serve]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

demo: $(BIN)/.core
	$(BIN)/python -m textlab train --corpus tiny_shakespeare --minutes $(DEMO_MINUTES) --out runs/demo --overwrite
	$(BIN)/python -m textlab sample runs/demo/model.pt --prime "ROMEO:" --temperature 0.5 --length 200 --seed 1
	$(BIN)/python -m textlab sample runs/demo/model.pt --prime "ROMEO:" --temperature 1.2 --length 200 --seed 1
	@echo "loss curve: runs/demo/loss.png"

# ipywidgets 7.7 (what Colab ships) shadowing 8.x, for the widget tests only.
$(VENV)/w7/.installed: $(BIN)/.installed
	$(BIN)/pip install -q --target $(VENV)/w7 --no-deps "ipywidgets==7.7.1" "ipython_genutils==0.2.0"
	touch $@

$(COLAB_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/pip install -q $(TORCH) $(COLAB_PINS) numpy nbval pytest
	touch $@

test: $(BIN)/.installed $(VENV)/w7/.installed $(COLAB_VENV)/.installed
	OMP_NUM_THREADS=1 TEXTLAB_QUICK=1 HF_HUB_OFFLINE=1 TEXTLAB_EXPECT_IPYWIDGETS=8 \
	TEXTLAB_COLAB_PYTHON=$(abspath $(COLAB_VENV))/bin/python $(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks \
	    --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
	TEXTLAB_EXPECT_IPYWIDGETS=7 PYTHONPATH=$(VENV)/w7 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_widgets.py

# Default mode (not QUICK): what a student sees. Takes about a quarter of an hour on 2 CPU cores.
notebooks: $(BIN)/.installed
	for nb in notebooks/[0-9]*.ipynb; do \
	    env -u TEXTLAB_QUICK $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	        --ExecutePreprocessor.timeout=3600 "$$nb" || exit 1; \
	done

check-notebooks: $(BIN)/.core
	$(BIN)/python -m textlab.notebook notebooks/[0-9]*.ipynb

benchmarks: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_sample.py
	$(BIN)/python benchmarks/bench_train.py --corpus tiny_shakespeare --seconds 200
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_slider.py

clean:
	rm -rf $(VENV) $(COLAB_VENV) runs .pytest_cache
