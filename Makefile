# The two commands of the README: `make app` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: app test lint clean-venv

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

## Lint, then run the whole test suite (unit, AppTest, browser end-to-end).
test: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/pytest

clean-venv:
	rm -rf $(VENV)
