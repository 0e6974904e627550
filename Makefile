# Quick start: `make demo` and `make test` each create .venv and install gankit into it with pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/gankit train --preset digits --out runs/demo
	$(BIN)/gankit report runs/demo
	@echo "sample grid: runs/demo/samples/final.png"
	@echo "report:      runs/demo/report.html (open it in a browser)"

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
