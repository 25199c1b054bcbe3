# Two entry points: `make demo` and `make test`. Both build the environment themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench mutation clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/run_all.py

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Mutation testing of the reporting layer (cosmic-ray; slow, not part of CI): see tests/MUTATION.md
mutation: $(STAMP)
	nice -n 10 $(PY) tests/mutation/run.py

# Every performance target, measured and written to benchmarks/results.md (not part of CI)
bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) results/tables results/figures results/posteriors results/report.md
