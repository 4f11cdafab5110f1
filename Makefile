# The two commands a learner needs: `make lab` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
# JupyterLab refuses to start as root without --allow-root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test lessons unit benchmarks bench-report mutation compat clean

setup:
	@bash scripts/setup.sh

## Set everything up and open the lessons in JupyterLab.
lab: setup
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/00_start_here.ipynb

## Set everything up and run every test (unit, notebooks in FAST mode, browser).
test: setup
	$(PY) -m pytest -n 2 --dist loadgroup -ra

## Only the fast unit tests.
unit: setup
	$(PY) -m pytest -n 2 -m "not notebooks and not browser" -ra

## Execute every lesson in full mode to HTML under build/lessons/.
lessons: setup
	$(PY) scripts/run_lessons.py

## Run every speed benchmark (long: includes every lesson in full mode), then rewrite benchmarks/README.md.
benchmarks: setup
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/time_to_accuracy.py
	$(PY) benchmarks/explorer_latency.py
	$(PY) benchmarks/lessons.py
	$(PY) benchmarks/report.py

## Only rewrite benchmarks/README.md from benchmarks/results/*.json.
bench-report:
	$(PY) benchmarks/report.py

## Mutation testing of the core modules (long: about an hour on 2 cores; not part of `make test`).
## Writes benchmarks/results/mutation.json and docs/MUTATION.md; MODULES="bn blocks" for some.
mutation: setup
	$(PY) -m pip install -q -r scripts/mutation-requirements.txt
	$(PY) scripts/mutation.py $(MODULES)

## Both ends of pyproject.toml's dependency ranges in fresh venvs (long: about an hour; several GB
## of downloads the first time; not part of `make test`). Writes docs/compat.json and docs/COMPAT.md.
compat:
	bash scripts/check_compat.sh $(ENDS)

clean:
	rm -rf build .pytest_cache
