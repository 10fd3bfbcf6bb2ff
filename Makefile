# Two entry points (see README): `make demo` and `make test`. Each creates the virtual
# environment and installs everything itself, pinned by constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.secfl-installed
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: demo test lint test-slow test-integration bench vectors fresh-clone clean mutation

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip $(PIP_FLAGS) install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/secfl demo

lint: $(STAMP)
	$(BIN)/ruff check secfl tests benchmarks protocols/tools examples tools
	$(BIN)/ruff format --check secfl tests benchmarks protocols/tools examples tools
	$(BIN)/mypy secfl

# Vector checks and known-answer tests under every BLAS kernel / SIMD level this CPU runs
# (about 2.5 minutes), then the suite without the exhaustive runs (`-m slow`: make test-slow).
test: lint
	$(BIN)/python protocols/tools/check_kernels.py
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -m "not slow"

# Flower's deployment engine end to end, alone: a real SuperLink and SuperNodes on 127.0.0.1
# (about 7 minutes on 2 cores; see docs/flower.md). `make test` runs it too.
test-integration: $(STAMP)
	$(BIN)/pytest -q -m flower tests/integration/test_flower_e2e.py

test-slow: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/pytest -q -m slow

# Mutation testing of the security checks (docs/audit.md, "How strong is the audit?"): every
# mutant against `secfl audit --examples 200 --seed 1` and against the tests mapped to its
# module; prints both scores. Not part of `make test` (about 2 hours on 2 busy cores).
mutation: $(STAMP)
	$(BIN)/python -m tools.mutation run --examples 200 --seed 1 --jobs 2 --out docs/mutation-results.json

bench: $(STAMP)
	$(BIN)/python -m benchmarks --out docs/benchmarks

vectors: $(STAMP)
	$(BIN)/python protocols/tools/make_vectors.py
	$(BIN)/python protocols/tools/make_secagg_vectors.py
	$(BIN)/python protocols/tools/make_paillier_vectors.py
	$(BIN)/python protocols/tools/make_threshold_paillier_vectors.py
	$(BIN)/python protocols/tools/make_dp_vectors.py
	$(BIN)/python protocols/tools/make_seeded_vectors.py

# A clone of the committed HEAD in a temporary folder, with its own venv: make demo, make test.
fresh-clone:
	bash tools/fresh-clone.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
